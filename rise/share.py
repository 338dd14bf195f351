"""Share artifacts between users through a DVC remote (S3, SSH, ...) without recomputing them.

`dvc push` / `dvc pull` move the files, but Snakemake decides on modification times and its
own records in `.snakemake/`, which a fresh clone lacks: after a plain `dvc pull` the files
come back in arbitrary order of time and `snakemake -n` plans to rebuild them. `pull` therefore
pulls (a target always with everything upstream of it, so Snakemake can trust it), asks DVC
which stages now match `dvc.lock` exactly, and marks only those stages' outputs up to date
with `snakemake --touch` (times in DAG order plus Snakemake's records). Anything missing,
changed or never pushed is left as it is, so Snakemake reruns exactly that part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from rise.config import ConfigError


def _run(cmd: list[str], what: str) -> str:
    """Run a dvc / snakemake command; on failure raise with its own message (it names files)."""
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        text = (out.stderr.strip() or out.stdout.strip())[-4000:]
        raise ConfigError(f"{what} failed (`{' '.join(cmd)}`):\n{text}")
    return out.stdout


def _remote(remote: str | None) -> list[str]:
    return ["--remote", remote] if remote else []


def push(targets: list[str], remote: str | None = None, jobs: int | None = None) -> dict:
    """Record what Snakemake built in dvc.lock (`dvc commit`: hashes only, nothing reruns),
    then upload it. Targets are DVC stages or files and come with everything upstream."""
    deps = ["--with-deps"] if targets else []
    _run(["dvc", "commit", "--force", *deps, *targets], "dvc commit")
    j = ["--jobs", str(jobs)] if jobs else []
    out = _run(["dvc", "push", *deps, *_remote(remote), *j, *targets], "dvc push")
    return {"pushed": out.strip().splitlines()[-1:] or [""], "lock": "dvc.lock"}


def _locked(lock: str = "dvc.lock") -> dict:
    """The stages dvc.lock records (the ones somebody built and pushed), by name."""
    if not os.path.exists(lock):
        raise ConfigError(f"{lock}: not found; the pushing side runs `rise push` and commits it")
    with open(lock) as f:
        return (yaml.safe_load(f) or {}).get("stages", {})


def clean_outputs() -> list[str]:
    """Outputs of every locked stage that DVC finds unchanged (deps, params and outs)."""
    stages = _locked()
    changed = json.loads(_run(["dvc", "status", "--json"], "dvc status") or "{}")
    files = []
    for name, stage in stages.items():
        outs = [o["path"] for o in stage.get("outs", [])]
        if name not in changed and outs and all(os.path.exists(p) for p in outs):
            files += outs
    return files


def _check_verify(remote: str | None) -> None:
    """Refuse a remote that does not hash what it downloads: DVC would otherwise check out a
    corrupted object under a good file's name, and its status would call it clean."""
    name = remote or subprocess.run(["dvc", "config", "core.remote"], capture_output=True,
                                    text=True).stdout.strip()  # fmt: skip
    if not name:
        raise ConfigError("no DVC remote given and no default: `dvc remote add -d NAME URL`")
    verify = subprocess.run(["dvc", "config", f"remote.{name}.verify"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    if verify.lower() != "true":
        raise ConfigError(
            f"remote {name!r} does not verify downloads: run `dvc remote modify {name} verify "
            "true` (and commit .dvc/config), so a corrupted object is refused by name"
        )


def pull(targets: list[str], remote: str | None = None, jobs: int | None = None) -> dict:
    """`dvc pull` of the targets with their upstream stages (default: every stage dvc.lock
    records), then mark what DVC vouches for as up to date for Snakemake. A failed pull raises
    before any file is marked."""
    targets = targets or sorted(_locked())
    _check_verify(remote)
    j = ["--jobs", str(jobs)] if jobs else []
    try:
        _run(["dvc", "pull", "--with-deps", *_remote(remote), *j, *targets], "dvc pull")
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}\nThe files named above are missing from the remote or failed their md5 check"
            " and were not written; nothing was marked up to date for Snakemake."
        ) from None
    files = clean_outputs()
    if files:
        _run(["snakemake", *files, "--touch", "--cores", "1"], "snakemake --touch")
    print(f"rise pull: {len(files)} file(s) marked up to date for Snakemake", file=sys.stderr)
    return {"up_to_date": len(files)}
