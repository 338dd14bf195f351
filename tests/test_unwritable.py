"""An output that cannot be written (a read-only folder, a full disk) stops the job with a
message that names it, and leaves no file that looks finished (issue 17, part 2)."""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--params", str(ROOT / "params.yaml"), "--scale", "smoke", "--task", "mini_square_peg",
         "--obs", "lowdim"]  # fmt: skip


def rise(*args, preexec_fn=None):
    return subprocess.run([sys.executable, "-m", "rise", *args], capture_output=True, text=True,
                          preexec_fn=preexec_fn)  # fmt: skip


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "expert.hdf5"
    assert rise("collect", *SMOKE, "--source", "expert", "--out", str(out)).returncode == 0
    return out


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write in: chmod for a user, the immutable attribute for root."""
    folder = tmp_path / "out"
    folder.mkdir()
    root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(folder)], check=True) if root else folder.chmod(0o555)
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True) if root else folder.chmod(0o755)


def critic_job(expert, out: Path) -> list[str]:
    return ["train-critic", *SMOKE, "--data", f"expert={expert}", "--seed", "0",
            "--out", str(out), "--curve", str(out.with_suffix(".csv"))]  # fmt: skip


@pytest.mark.parametrize("stage", ["collect", "train-critic"])
def test_a_read_only_output_folder_is_named(expert, read_only, stage):
    out = read_only / ("expert.hdf5" if stage == "collect" else "critic.pt")
    args = ["collect", *SMOKE, "--source", "expert", "--out", str(out)]
    done = rise(*(args if stage == "collect" else critic_job(expert, out)))
    assert done.returncode == 1, done.stderr
    assert f"rise {stage}: error: cannot write {out}" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("stage", ["collect", "train-critic"])  # an HDF5 and a torch output
def test_a_full_disk_is_named_and_leaves_no_output(expert, tmp_path, stage):
    """The file size limit stands in for a full disk: writes past it fail (EFBIG). HDF5's
    own writer used to crash the process (SIGSEGV) and leave its temporary file."""

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    if stage == "collect":
        out = tmp_path / "expert.hdf5"
        done = rise("collect", *SMOKE, "--source", "expert", "--out", str(out),
                    preexec_fn=small_files)  # fmt: skip
    else:
        out = tmp_path / "critic.pt"
        done = rise(*critic_job(expert, out), preexec_fn=small_files)
    assert done.returncode == 1, done.stderr
    assert f"error: cannot write {out}" in done.stderr  # or its resume file, <out>.resume
    assert "File too large" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == []
