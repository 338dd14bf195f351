"""Snakemake's directory lock outlives a `kill -9` of the run that holds it, and the next
`snakemake` then refuses to start until someone runs `--unlock`. Snakemake cannot tell a
killed run's lock from a live one's; we can: the Snakefile records the running driver (host,
pid and the pid's start time, so a reused pid is not mistaken for it) when it starts, and at
the next start a lock whose recorded owner is no longer running on this host is removed, so
the same command simply goes on (jobs that were cut off are redone). A lock of a live run, of
another host (a shared file system) or of an unknown owner is left alone."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

OWNER = Path(".snakemake/rise_lock_owner.json")
LOCKS = Path(".snakemake/locks")


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in () may hold spaces


def _running(pid: int, started: str | None) -> bool:
    if started is not None:
        return _started(pid) == started
    try:  # no /proc here: whether some process has that pid
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_owner() -> None:
    """Called once the run holds the lock (Snakefile `onstart`)."""
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid())}
    OWNER.write_text(json.dumps(owner))


def clear_stale_lock() -> bool:
    """Remove the locks of a run that was killed on this host; True if it did."""
    if not LOCKS.is_dir() or not any(LOCKS.iterdir()) or not OWNER.is_file():
        return False
    try:
        owner = json.loads(OWNER.read_text())
        pid, host, started = int(owner["pid"]), owner["host"], owner["started"]
    except (ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or _running(pid, started):
        return False
    for lock in LOCKS.iterdir():
        lock.unlink(missing_ok=True)
    OWNER.unlink(missing_ok=True)
    print(f"rise: removed the lock of a snakemake run that was killed (pid {pid}); going on")
    return True
