"""The workflow on a real Slurm cluster: Debian's slurm-wlm + munge started here as a
one-node cluster on loopback (munged, slurmctld, slurmd by hand, no systemd), one task's
smoke DAG submitted through `--profile profiles/slurm`, each job checked as a Slurm job with
its rule's CPUs and memory, and the table compared with a local run's bit for bit. Also: the
GPU request (Slurm's --gpus) comes with `scale: paper` only."""

import getpass
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_share import free_ports, stop
from workflow_helpers import copy_repo, env, run

TASK = "mini_square_peg"
SMOKE = dict(scale="smoke", obs="lowdim", seeds=[0], tasks=[TASK], methods=["BC", "RISE"])
TARGET = "results/table1.csv"
# What a cluster without slurmdbd needs (commented in profiles/slurm/config.yaml), and a
# short first status check: the plugin's default waits 40 s, made for a busy real cluster.
NO_ACCOUNTING = ["--slurm-status-command", "squeue", "--slurm-no-account",
                 "--slurm-init-seconds-before-status-checks", "2"]  # fmt: skip
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "srun", "scancel")

SLURM_CONF = """ClusterName=rise-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge.sock
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={dir}/jobcomp.log
MinJobAge=3600
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def tail(path: Path) -> str:
    return f"--- {path.name}:\n{path.read_text()[-2000:]}" if path.exists() else ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Slurm cluster (partition `main`, this machine's CPUs and memory), its
    own munge socket, ports and state folder; every daemon stopped at the end, always.
    No accounting daemon: jobs are checked in slurmctld's job-completion log."""
    exe = {d: shutil.which(d, path="/usr/sbin:/usr/bin") or shutil.which(d) for d in TOOLS}
    missing = [d for d, path in exe.items() if not path]
    assert not missing, f"{missing} not found: install Debian's slurm-wlm and munge (.ci/run does)"
    assert os.geteuid() == 0, "slurmd starts jobs as their user and must run as root"
    tmp = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (tmp / sub).mkdir()
    key = tmp / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    # slurmd -C: this node as Slurm sees it, e.g. "NodeName=vm CPUs=2 ... RealMemory=24105"
    node = dict(re.findall(r"(\w+)=(\S+)", run([exe["slurmd"], "-C"], tmp)))
    ctld_port, slurmd_port = free_ports(2)
    conf = tmp / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=node["NodeName"], cpus=node["CPUs"],
                                      mem=node["RealMemory"], dir=tmp, ctld_port=ctld_port,
                                      slurmd_port=slurmd_port))  # fmt: skip
    # The jobstep plugin drops SLURM_* (SLURM_CONF too) before its srun inside each job, so
    # an srun first on PATH brings the config back (a real cluster's is at the default path)
    (tmp / "bin").mkdir()
    srun = tmp / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {exe["srun"]} "$@"\n')
    srun.chmod(0o755)
    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PATH")}
    os.environ["SLURM_CONF"] = str(conf)  # for sbatch, squeue (jobs export it too)
    os.environ["PATH"] = f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}"
    logs = [tmp / "munged.log", tmp / "slurmctld.log", tmp / "slurmd.log", tmp / "daemons.out"]
    out = open(tmp / "daemons.out", "w")
    procs = []
    try:
        for cmd in (
            [exe["munged"], "-F", "--force", f"--socket={tmp}/munge.sock", f"--key-file={key}",
             f"--pid-file={tmp}/munged.pid", f"--log-file={tmp}/munged.log",
             f"--seed-file={tmp}/munge.seed"],
            [exe["slurmctld"], "-D", "-f", str(conf)],
            [exe["slurmd"], "-D", "-f", str(conf)],
        ):  # fmt: skip
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
            time.sleep(0.5)  # munged's socket before slurmctld, slurmctld before slurmd
        deadline = time.monotonic() + 60
        while True:
            dead = [p.args[0] for p in procs if p.poll() is not None]
            state = subprocess.run([exe["sinfo"], "-h", "-o", "%T"],
                                   capture_output=True, text=True)  # fmt: skip
            if not dead and state.stdout.strip() == "idle":
                break
            assert not dead and time.monotonic() < deadline, (
                f"the Slurm cluster did not come up in 60 s (exited: {dead}; sinfo: "
                f"{state.stdout.strip()!r} {state.stderr.strip()!r})\n"
                + "\n".join(tail(p) for p in logs)
            )
            time.sleep(0.5)
        yield {"dir": tmp, "jobcomp": tmp / "jobcomp.log", "logs": logs}
    finally:
        # no job outlives its cluster
        subprocess.run([exe["scancel"], "--full", "--user", getpass.getuser()],
                       capture_output=True)  # fmt: skip
        for proc in reversed(procs):
            stop(proc)
        out.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def planned(dry_run: str) -> dict[str, dict]:
    """Job (rule + wildcards) -> its threads and resources, from `snakemake -n`'s job blocks."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if not rule:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        key = (rule[1], wc[1] if wc else "")
        jobs[key] = dict(re.findall(r"(\w+)=([^,]+)", res[1]) if res else [])
        jobs[key]["threads"] = int(threads[1]) if threads else 1
    return jobs


def test_gpu_requested_at_paper_scale_only(tmp_path):
    """The torch stages ask Slurm for a GPU at `scale: paper`, and for none at smoke / cpu
    (read from the dry run through the Slurm profile: what sbatch would get)."""
    root = copy_repo(tmp_path, **SMOKE)
    torch_rules = {"embed", "train_critic", "train_policy", "evaluate"}
    for scale, gpus in (("smoke", "0"), ("cpu", "0"), ("paper", "1")):
        out = run(["snakemake", "--profile", "profiles/slurm", TARGET, "-n", "-F",
                   "--config", f"scale={scale}"], root)  # fmt: skip
        jobs = planned(out)
        assert {r for r, _ in jobs} >= torch_rules, out[-2000:]
        for (rule, wc), res in jobs.items():
            if rule in torch_rules:
                assert res["gpu"] == gpus, (scale, rule, wc, res)
                assert res["slurm_partition"] == "main" and int(res["runtime"]) >= 240, res
            else:
                assert res.get("gpu", "0") == "0", (scale, rule, res)


def completed_jobs(jobcomp: Path) -> dict[str, dict]:
    """slurmctld's job-completion log (jobcomp/filetxt): Slurm job id -> its fields."""
    jobs = {}
    for line in jobcomp.read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        jobs[fields["JobId"]] = fields
    return jobs


def slurm_logs(root: Path) -> dict[str, tuple[str, str]]:
    """Slurm job id -> (rule, wildcards folder), from logs/slurm/rule_<rule>/<wc>/<id>.log."""
    found = {}
    for log in (root / "logs/slurm").glob("rule_*/**/*.log"):
        rule = log.relative_to(root / "logs/slurm").parts[0].removeprefix("rule_")
        found[log.stem] = (rule, log.parent.name)
    return found


def test_smoke_dag_on_slurm_matches_the_local_run(cluster, tmp_path):
    for sub in ("local", "slurm"):
        (tmp_path / sub).mkdir()
    local = copy_repo(tmp_path / "local", **SMOKE)
    start = time.monotonic()
    run(["snakemake", TARGET], local)
    local_s = time.monotonic() - start

    root = copy_repo(tmp_path / "slurm", **SMOKE)
    profile = ["--profile", "profiles/slurm", *NO_ACCOUNTING]
    plan = planned(run(["snakemake", TARGET, "-n", *profile], root))
    start = time.monotonic()
    out = subprocess.run(["snakemake", TARGET, *profile], cwd=root, env=env(), text=True,
                         capture_output=True, timeout=1200)  # fmt: skip
    slurm_s = time.monotonic() - start
    assert out.returncode == 0, (
        f"snakemake --profile profiles/slurm failed:\n{out.stderr[-4000:]}\n"
        + "\n".join(tail(p) for p in cluster["logs"])
        + "\n".join(tail(p) for p in sorted((root / "logs/slurm").glob("**/*.log"))[:3])
    )

    # every planned job ran as a Slurm job and completed, with its rule's CPUs and memory;
    # a failed attempt is allowed once (the profile's `retries: 1`) and reported
    done, logs = completed_jobs(cluster["jobcomp"]), slurm_logs(root)
    attempts: dict[tuple[str, str], list[str]] = {}
    for job_id, key in sorted(logs.items(), key=lambda item: int(item[0])):
        attempts.setdefault(key, []).append(job_id)
    assert len(attempts) == len(plan) == 10, (sorted(attempts), sorted(plan))
    assert sorted(r for r, _ in attempts) == sorted(r for r, _ in plan)
    elapsed, retried = [], []
    for (rule, wc), ids in attempts.items():
        assert len(ids) <= 2, (rule, wc, ids)
        for job_id in ids[:-1]:
            assert done[job_id]["JobState"] == "FAILED", done[job_id]
            retried.append((rule, wc, job_id))
        job = done[ids[-1]]
        want = next(res for (r, _), res in plan.items() if r == rule)  # same per rule here
        tres = dict(re.findall(r"(\w+)=([^,]+)", job["Tres"]))
        assert job["JobState"] == "COMPLETED" and job["Partition"] == "main", job
        assert int(job["ProcCnt"]) == want["threads"], (rule, job["ProcCnt"], want)
        assert tres["mem"] == f"{want['mem_mb']}M", (rule, tres, want)
        elapsed.append((rule, time_of(job["EndTime"]) - time_of(job["StartTime"])))
    embed = [done[ids[-1]] for (r, _), ids in attempts.items() if r == "embed"]
    assert [e["ProcCnt"] for e in embed] == ["2"]  # embed's threads: 2 -> --cpus-per-task=2
    print(
        f"local {local_s:.0f} s, Slurm {slurm_s:.0f} s for {len(attempts)} jobs; "
        f"Slurm elapsed per job: {sorted(elapsed)}; failed once and retried: {retried}"
    )

    for name in ("table1.csv", "table1.json", "table1.md"):
        assert (root / "results" / name).read_bytes() == (local / "results" / name).read_bytes()


def time_of(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
