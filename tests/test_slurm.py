"""The workflow on a real Slurm cluster: Debian's slurm-wlm + munge started here as a
one-node cluster on loopback (munged, slurmctld, slurmd by hand, no systemd), one task's
smoke DAG submitted through `--profile profiles/slurm`, each job checked in `sacct` (slurmdbd
on a MariaDB server started here too) with its rule's CPUs and memory, and the table compared
with a local run's bit for bit, one job failing once on the way (a lost node) and retried
by the profile. Also: the GPU request (Slurm's --gpus) comes with `scale: paper` only."""

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
# A short first status check: the plugin's default waits 40 s, made for a busy real cluster.
FIRST_CHECK = ["--slurm-init-seconds-before-status-checks", "2"]
TOOLS = ("munged", "slurmctld", "slurmd", "slurmdbd", "sbatch", "squeue", "sinfo", "srun",
         "scancel", "sacct", "sacctmgr", "mariadb-install-db", "mariadbd", "mariadb")  # fmt: skip
ACCOUNT = "rise-lab"

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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={dbd_port}
AccountingStoragePass={dir}/munge.sock
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
# slurmdbd reads slurmdbd.conf next to $SLURM_CONF; its database is a MariaDB server on a
# loopback port with a data folder of its own.
SLURMDBD_CONF = """AuthType=auth/munge
AuthInfo=socket={dir}/munge.sock
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser=root
PidFile={dir}/slurmdbd.pid
LogFile={dir}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=slurm
StoragePass=rise
StorageLoc=slurm_acct_db
"""


def tail(path: Path) -> str:
    return f"--- {path.name}:\n{path.read_text()[-2000:]}" if path.exists() else ""


def wait_for(what: str, ready, procs, logs, seconds: float = 60) -> None:
    """Poll `ready()` until true; fail naming `what`, the exited daemons and their logs."""
    deadline = time.monotonic() + seconds
    while not ready():
        dead = [p.args[0] for p in procs if p.poll() is not None]
        assert not dead and time.monotonic() < deadline, (
            f"{what} did not come up in {seconds:.0f} s (exited: {dead})\n"
            + "\n".join(tail(p) for p in logs)
        )
        time.sleep(0.5)


def quiet(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Slurm cluster with accounting (partition `main`, this machine's CPUs and
    memory): munged, MariaDB, slurmdbd, slurmctld and slurmd with their own sockets, ports
    and folders, an account for the user; every daemon stopped at the end, always."""
    exe = {d: shutil.which(d, path="/usr/sbin:/usr/bin") or shutil.which(d) for d in TOOLS}
    missing = [d for d, path in exe.items() if not path]
    assert not missing, (
        f"{missing} not found: install Debian's slurm-wlm, slurmdbd, mariadb-server and munge "
        "(.ci/run does)"
    )
    assert os.geteuid() == 0, "slurmd starts jobs as their user and must run as root"
    tmp = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (tmp / sub).mkdir()
    key = tmp / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    # slurmd -C: this node as Slurm sees it, e.g. "NodeName=vm CPUs=2 ... RealMemory=24105"
    node = dict(re.findall(r"(\w+)=(\S+)", run([exe["slurmd"], "-C"], tmp)))
    ctld_port, slurmd_port, dbd_port, db_port = free_ports(4)
    # where each daemon lives: the folder and the loopback ports both config files name
    places = dict(dir=tmp, ctld_port=ctld_port, slurmd_port=slurmd_port, dbd_port=dbd_port,
                 db_port=db_port)  # fmt: skip
    conf = tmp / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=node["NodeName"], cpus=node["CPUs"],
                                      mem=node["RealMemory"], **places))  # fmt: skip
    (tmp / "slurmdbd.conf").write_text(SLURMDBD_CONF.format(**places))
    (tmp / "slurmdbd.conf").chmod(0o600)  # slurmdbd refuses a readable one (a password)
    run([exe["mariadb-install-db"], "--no-defaults", f"--datadir={tmp}/db", "--user=root",
         "--auth-root-authentication-method=normal", "--skip-test-db"], tmp)  # fmt: skip
    # The jobstep plugin drops SLURM_* (SLURM_CONF too) before its srun inside each job, so
    # an srun first on PATH brings the config back (a real cluster's is at the default path)
    (tmp / "bin").mkdir()
    srun = tmp / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {exe["srun"]} "$@"\n')
    srun.chmod(0o755)
    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PATH")}
    os.environ["SLURM_CONF"] = str(conf)  # for sbatch, squeue, sacct (jobs export it too)
    os.environ["PATH"] = f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}"
    logs = [tmp / n for n in ("munged.log", "mariadb.err", "slurmdbd.log", "slurmctld.log",
                              "slurmd.log", "daemons.out")]  # fmt: skip
    out = open(tmp / "daemons.out", "w")
    procs = []

    def start(cmd: list[str]) -> None:
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))

    sql = [exe["mariadb"], "--no-defaults", f"--socket={tmp}/db.sock", "-uroot", "-e"]
    try:
        start([exe["munged"], "-F", "--force", f"--socket={tmp}/munge.sock",
               f"--key-file={key}", f"--pid-file={tmp}/munged.pid",
               f"--log-file={tmp}/munged.log", f"--seed-file={tmp}/munge.seed"])  # fmt: skip
        start([exe["mariadbd"], "--no-defaults", f"--datadir={tmp}/db", "--user=root",
               f"--socket={tmp}/db.sock", f"--port={db_port}", "--bind-address=127.0.0.1",
               f"--pid-file={tmp}/mariadb.pid", f"--log-error={tmp}/mariadb.err"])  # fmt: skip
        wait_for("MariaDB", lambda: quiet([*sql, "SELECT 1"]).returncode == 0, procs, logs)
        run([*sql, "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'rise'; "
                   "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"], tmp)  # fmt: skip
        start([exe["slurmdbd"], "-D"])
        mgr = [exe["sacctmgr"], "-i"]
        wait_for("slurmdbd", lambda: quiet([*mgr, "show", "cluster"]).returncode == 0,
                 procs, logs)  # fmt: skip
        run([*mgr, "add", "cluster", "rise-test"], tmp)
        run([*mgr, "add", "account", ACCOUNT], tmp)
        run([*mgr, "add", "user", getpass.getuser(), f"account={ACCOUNT}"], tmp)
        run([*mgr, "modify", "user", getpass.getuser(), "set", f"defaultaccount={ACCOUNT}"], tmp)
        start([exe["slurmctld"], "-D", "-f", str(conf)])
        time.sleep(0.5)  # slurmctld before slurmd
        start([exe["slurmd"], "-D", "-f", str(conf)])
        idle = lambda: quiet([exe["sinfo"], "-h", "-o", "%T"]).stdout.strip() == "idle"  # noqa: E731
        wait_for("the Slurm cluster", idle, procs, logs)
        yield {"dir": tmp, "sacct": exe["sacct"], "logs": logs}
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


def completed_jobs(sacct: str) -> dict[str, dict]:
    """Every job of the cluster as `sacct` reports it (slurmdbd): Slurm job id -> fields."""
    fields = ["JobID", "State", "Partition", "Account", "AllocCPUS", "ReqMem", "Start", "End"]
    out = quiet([sacct, "-X", "-a", "-P", "-n", "-o", ",".join(fields)])
    assert out.returncode == 0, out.stderr
    return {row[0]: dict(zip(fields, row, strict=True))
            for row in (line.split("|") for line in out.stdout.splitlines() if line)}  # fmt: skip


def slurm_logs(root: Path) -> dict[str, tuple[str, str]]:
    """Slurm job id -> (rule, wildcards folder), from logs/slurm/rule_<rule>/<wc>/<id>.log."""
    found = {}
    for log in (root / "logs/slurm").glob("rule_*/**/*.log"):
        rule = log.relative_to(root / "logs/slurm").parts[0].removeprefix("rule_")
        found[log.stem] = (rule, log.parent.name)
    return found


def node_lost_once(tmp_path: Path) -> dict:
    """The workflow's environment with a `rise` first on PATH that fails the first `rise
    evaluate` of the run (as a job on a lost node does) and runs the real one otherwise:
    sbatch exports PATH to the jobs, so the profile's `retries: 1` is what finishes the run."""
    wrapper = tmp_path / "node-lost" / "rise"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = evaluate ] && mkdir "{tmp_path}/node-lost/failed" 2>/dev/null; then\n'
        '  echo "the node of this job was lost (tests/test_slurm.py)" >&2; exit 1\n'
        "fi\n"
        f'exec "{shutil.which("rise", path=env()["PATH"])}" "$@"\n'
    )
    wrapper.chmod(0o755)
    e = env()
    e["PATH"] = f"{wrapper.parent}{os.pathsep}{e['PATH']}"
    return e


def test_smoke_dag_on_slurm_matches_the_local_run(cluster, tmp_path):
    for sub in ("local", "slurm"):
        (tmp_path / sub).mkdir()
    local = copy_repo(tmp_path / "local", **SMOKE)
    start = time.monotonic()
    run(["snakemake", TARGET], local)
    local_s = time.monotonic() - start

    root = copy_repo(tmp_path / "slurm", **SMOKE)
    profile = ["--profile", "profiles/slurm", *FIRST_CHECK]  # status from sacct, as on a lab's
    plan = planned(run(["snakemake", TARGET, "-n", *profile], root))
    start = time.monotonic()
    out = subprocess.run(["snakemake", TARGET, *profile], cwd=root, env=node_lost_once(tmp_path),
                         text=True, capture_output=True, timeout=1200)  # fmt: skip
    slurm_s = time.monotonic() - start
    assert out.returncode == 0, (
        f"snakemake --profile profiles/slurm failed:\n{out.stderr[-4000:]}\n"
        + "\n".join(tail(p) for p in cluster["logs"])
        + "\n".join(tail(p) for p in sorted((root / "logs/slurm").glob("**/*.log"))[:3])
    )

    # every planned job is in sacct, completed, with its rule's CPUs and memory and the
    # user's account; the evaluation that failed was submitted once more (`retries: 1`)
    done, logs = completed_jobs(cluster["sacct"]), slurm_logs(root)
    attempts: dict[tuple[str, str], list[str]] = {}
    for job_id, key in sorted(logs.items(), key=lambda item: int(item[0])):
        attempts.setdefault(key, []).append(job_id)
    assert len(attempts) == len(plan) == 10, (sorted(attempts), sorted(plan))
    assert sorted(r for r, _ in attempts) == sorted(r for r, _ in plan)
    elapsed, retried = [], []
    for (rule, wc), ids in attempts.items():
        assert len(ids) <= 2, (rule, wc, ids)
        for job_id in ids[:-1]:
            assert done[job_id]["State"] == "FAILED", done[job_id]
            retried.append((rule, wc, job_id))
        job = done[ids[-1]]
        want = next(res for (r, _), res in plan.items() if r == rule)  # same per rule here
        assert job["State"] == "COMPLETED" and job["Partition"] == "main", job
        assert job["Account"] == ACCOUNT, job
        assert int(job["AllocCPUS"]) == want["threads"], (rule, job, want)
        assert job["ReqMem"] == f"{want['mem_mb']}M", (rule, job, want)
        elapsed.append((rule, time_of(job["End"]) - time_of(job["Start"])))
    assert [(rule, done[i]["State"]) for rule, _, i in retried] == [("evaluate", "FAILED")]
    embed = [done[ids[-1]] for (r, _), ids in attempts.items() if r == "embed"]
    assert [e["AllocCPUS"] for e in embed] == ["2"]  # embed's threads: 2 -> --cpus-per-task=2
    print(
        f"local {local_s:.0f} s, Slurm {slurm_s:.0f} s for {len(attempts)} jobs; "
        f"Slurm elapsed per job: {sorted(elapsed)}; failed once and retried: {retried}"
    )

    for name in ("table1.csv", "table1.json", "table1.md"):
        assert (root / "results" / name).read_bytes() == (local / "results" / name).read_bytes()


def time_of(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
