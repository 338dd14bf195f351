"""`kill -9` of the whole `snakemake results/table1.csv` during collection, training and
evaluation, then the same command again: the same artifacts, bit for bit, as one
uninterrupted run on one core, and no finished job redone; the same for `dvc repro`, whose
artifacts equal Snakemake's (issue 17, parts 2 and 3)."""

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from workflow_helpers import copy_repo, env, run

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
    assert not list(root.rglob("*.resume"))
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
    root = copy_repo(tmp_path, **CONFIG)
    run(["rise", "dvc-yaml"], root)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "init"]):  # fmt: skip
        run(cmd, root)
    kill_when(["dvc", "repro", "table1"], root, "models/*/*/*/seed0")
    run(["dvc", "repro", "table1"], root)
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
