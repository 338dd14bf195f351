"""`kill -9` of the whole `snakemake results/table1.csv` during collection, training and
evaluation, then the same command again: the same artifacts, bit for bit, as one
uninterrupted run on one core, and no finished job redone; the same for `dvc repro` and for
a `dvc exp run --queue` worker, whose artifacts equal Snakemake's (issue 17, parts 2 and 3)."""

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_workflow import ran_stages
from workflow_helpers import copy_repo, dvc_repo, env, run

CONFIG = dict(scale="smoke", obs="lowdim", seeds=[0], tasks=["mini_square_hook"])
CONFIG["methods"] = ["BC", "RISE", "SQIL"]  # a policy, a critic + policy, an actor-critic
ARTIFACTS = ("data", "features", "augment", "models", "eval", "results")
TABLE = ["snakemake", "results/table1.csv"]


def artifacts(root: Path) -> dict[str, str]:
    """sha256 of every file the workflow wrote (GIF videos and DVC's .gitignore files aside)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for d in ARTIFACTS
        for p in sorted((root / d).rglob("*"))
        if p.is_file() and p.suffix != ".gif" and not p.name.startswith(".")
    }


def kill_when(cmd: list[str], root: Path, started: str, timeout: float = 600) -> None:
    """Run `cmd`, wait for a file matching the glob `started` (a job of that family has
    begun), kill -9 the whole run (the driver and its jobs) some moments later."""
    proc = subprocess.Popen(cmd, cwd=root, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not any(root.glob(started)):
        assert proc.poll() is None, f"the run ended before {started} appeared"
        assert time.monotonic() < deadline, f"no {started} in {timeout} s"
        time.sleep(0.02)
    time.sleep(1.5)  # into the job: past its imports, within its work
    assert proc.poll() is None, f"the run ended before it was killed at {started}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The artifacts of one uninterrupted run on one core."""
    root = copy_repo(tmp_path_factory.mktemp("reference"), **CONFIG)
    run(TABLE + ["--cores", "1"], root)
    return artifacts(root)


def same_artifacts(root: Path, reference: dict) -> None:
    assert not [p for d in ARTIFACTS for p in (root / d).rglob("*.resume")]
    ours = artifacts(root)
    assert ours.keys() == reference.keys()
    assert [k for k in ours if ours[k] != reference[k]] == []


def test_kill_9_snakemake_anywhere_then_the_same_command(tmp_path, reference):
    root = copy_repo(tmp_path, **CONFIG)
    for family in ("collect", "policy", "evaluate"):
        kill_when(TABLE + ["--cores", "2"], root, f"logs/{family}/*.log")
    finished = {p: p.stat().st_mtime_ns for p in (root / "data").rglob("*.hdf5")}
    assert finished, "no dataset was finished before the last kill"
    out = run(TABLE, root)  # the profile's --cores all: two jobs at a time
    assert "removed the lock of a snakemake run that was killed" in out
    assert "Nothing to be done" in run(TABLE, root)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # not redone
    same_artifacts(root, reference)


def test_kill_9_dvc_repro_then_the_same_command_gives_snakemakes_artifacts(tmp_path, reference):
    root = dvc_repo(copy_repo(tmp_path, **CONFIG))
    kill_when(["dvc", "repro", "table1"], root, "models/*/*/*/seed0")
    run(["dvc", "repro", "table1"], root)
    same_artifacts(root, reference)


def queue_workers(root: Path) -> set[int]:
    """Process groups of this repository's DVC queue workers: `dvc queue start` starts each
    in a session of its own, with the experiment it runs and that run's stages."""
    groups = set()
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if b"queue-worker" in cmdline and os.readlink(proc / "cwd") == str(root):
                groups.add(os.getpgid(int(proc.name)))
        except (OSError, ValueError):  # not a process, or one that just ended
            continue
    return groups


def queue(root: Path) -> dict[str, str]:
    """Task id -> status, from `dvc queue status`."""
    rows = re.findall(r"^([0-9a-f]{7}) .* (\w+)$", run(["dvc", "queue", "status"], root), re.M)
    return dict(rows)


def restorable_stage_runs(root: Path) -> list[Path]:
    """DVC's run-cache entries whose outputs all reached the cache: the stage runs a later run
    can reuse. DVC writes a stage's entry before it commits the stage's outputs, so a kill
    between the two leaves an entry whose outputs are missing (and a kill within the write,
    a hidden temporary file); neither is reusable."""
    cache = root / ".dvc/cache/files/md5"

    def cached(md5: str) -> bool:
        path = cache / md5[:2] / md5[2:]
        if not path.is_file():
            return False
        if not md5.endswith(".dir"):
            return True
        return all(cached(entry["md5"]) for entry in json.loads(path.read_text()))

    entries = [p for p in root.glob(".dvc/cache/runs/*/*/*") if not p.name.startswith(".")]
    return [p for p in entries if all(cached(out["md5"]) for out in
                                      yaml.safe_load(p.read_text()).get("outs", []))]  # fmt: skip


def start_worker(root: Path) -> None:
    """`dvc queue start`, which returns once its worker runs in the background (the worker
    keeps the standard streams it inherits, so they must not be pipes we wait on)."""
    subprocess.run(["dvc", "queue", "start", "-j", "1"], cwd=root, env=env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # fmt: skip


def test_kill_9_dvc_queue_worker_then_the_same_command(tmp_path, reference):
    """A queued experiment whose worker is killed mid-run: queued again, the stages that had
    finished come from DVC's run cache, only the others run, and the result is Snakemake's."""
    root = dvc_repo(copy_repo(tmp_path, **CONFIG))
    enqueue = ["dvc", "exp", "run", "--queue", "-n", "table", "table1"]
    run(enqueue, root)
    start_worker(root)
    deadline = time.monotonic() + 600
    while not list(root.glob(".dvc/tmp/exps/tmp*/models/*/*/*/seed0/policy.pt")):
        assert time.monotonic() < deadline and queue(root), "no policy trained in 600 s"
        time.sleep(0.1)
    time.sleep(1.5)  # into the next stage
    workers = queue_workers(root)
    assert workers, "no queue worker of this repository is running"
    for group in workers:
        os.killpg(group, signal.SIGKILL)
    (killed,) = queue(root)  # its status stays "Running": DVC cannot know it died
    finished = restorable_stage_runs(root)  # one run-cache entry per finished stage run

    run(enqueue, root)  # the same command again
    start_worker(root)
    while (status := queue(root)) and any(s in ("Queued", "Running") for t, s in
                                          status.items() if t != killed):  # fmt: skip
        assert time.monotonic() < deadline + 600, f"the queued run did not end: {status}"
        time.sleep(2)
    (task,) = [t for t, s in status.items() if t != killed]
    assert status[task] == "Success", status
    log = run(["dvc", "queue", "logs", task], root)
    cached = [line for line in log.splitlines() if "is cached - skipping run" in line]
    ran = ran_stages(log)
    assert len(cached) == len(finished) > 0 and ran, log[-3000:]
    print(f"worker killed after {len(finished)} stages: {len(cached)} reused, {len(ran)} ran")
    run(["dvc", "queue", "kill", killed], root)  # the stale task now reads Failed
    assert queue(root)[killed] == "Failed"
    # the experiment's table1 outputs in the workspace (`dvc exp apply` wants every stage's)
    for cmd in (["dvc", "exp", "branch", "table", "table"], ["git", "checkout", "-q", "table"],
                ["dvc", "checkout", "--with-deps", "table1"]):  # fmt: skip
        run(cmd, root)
    same_artifacts(root, reference)


def test_only_the_lock_of_a_killed_run_on_this_host_is_removed(tmp_path, monkeypatch):
    from rise import snakemake_lock as lock

    monkeypatch.chdir(tmp_path)
    lock.LOCKS.mkdir(parents=True)
    lock.record_owner()  # this process: alive
    (lock.LOCKS / "0.output.lock").write_text("models/x.pt\n")
    assert not lock.clear_stale_lock() and any(lock.LOCKS.iterdir())
    owner = json.loads(lock.OWNER.read_text())
    lock.OWNER.write_text(json.dumps({**owner, "host": "elsewhere", "pid": 2**22 + 1}))
    assert not lock.clear_stale_lock()  # another host's run: not ours to judge
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.OWNER.write_text(json.dumps({**owner, "pid": dead.pid}))
    assert lock.clear_stale_lock() and not any(lock.LOCKS.iterdir())
    lock.OWNER.write_text(json.dumps({**owner, "started": "1"}))  # a reused pid: ours
    (lock.LOCKS / "0.output.lock").write_text("models/x.pt\n")
    assert lock.clear_stale_lock()
