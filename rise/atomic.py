"""Atomic outputs: write under a temporary name, rename when complete.

An interrupted job never leaves a file that looks finished to Snakemake or DVC; a full disk
or a read-only folder is an OutputError that names the output, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path

# What a full disk, a quota or a read-only folder raise while an output is written.
NOT_WRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


class OutputError(OSError):
    """An output that could not be written, named, with the system's reason."""


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling path; on success rename it to `path`, on error delete it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # a folder output replaces the old one whole
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE:
            raise
        raise OutputError(exc.errno, f"cannot write {path}: {exc.strerror}") from exc
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def check_writable(path: str | Path) -> None:
    """Fail now, naming `path`, if the folder it goes in (or the nearest existing one above
    it) takes no file: called on a job's outputs before its work starts; creates nothing."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    probe = folder / f".{path.name}.probe-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputError(exc.errno, f"cannot write {path}: {exc.strerror}") from exc


@contextlib.contextmanager
def atomic_hdf5(path: str | Path):
    """Yield an h5py.File to fill, written atomically to `path`. HDF5 writes through a Python
    file object, so a full disk is an OutputError naming the file (HDF5's own writer crashes
    the process on one and leaves its temporary file)."""
    import h5py

    with atomic_path(path) as tmp, open(tmp, "w+b") as fobj, h5py.File(fobj, "w") as f:
        yield f


def save_torch(path: str | Path, obj) -> None:
    """torch.save, atomically. Serialised in memory and written by Python, so that a full disk
    is an OSError naming the file (torch's own writer raises a bare RuntimeError)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def write_json(path: str | Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
