"""Copy the repository into a temporary folder and run the workflow there."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e['PATH']}"  # the `rise` and `snakemake` of this Python
    e.setdefault("MUJOCO_GL", "egl")
    e["DVC_NO_ANALYTICS"] = "1"  # tests stay offline
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        e.setdefault(key, "rise-tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        e.setdefault(key, "rise-tests@localhost")
    return e


def copy_repo(dest: Path, **params) -> Path:
    """The repository's tracked and unignored files in `dest`, with params.yaml edited."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)
    cfg = yaml.safe_load((dest / "params.yaml").read_text())
    cfg.update(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout + out.stderr


def dvc_repo(root: Path) -> Path:
    """`root` as a git + DVC repository with the generated dvc.yaml committed."""
    for cmd in (["rise", "dvc-yaml"], ["git", "init", "-q"], ["dvc", "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):  # fmt: skip
        run(cmd, root)
    return root
