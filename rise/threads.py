"""How many threads a process's torch, OpenMP (faiss) and BLAS may use: one place decides.

Torch's default intra-op count is the number of cores. When another process is busy on the
same cores (a second Snakemake job, a DVC queue worker, a user's editor), its OpenMP team
waits on a descheduled thread at every op: on 2 cores next to a busy process a smoke-scale
training job of 300 steps took 20 s with two threads against 10 s with one
(bench/bench_threads.py; 135 s against 1.6 s next to another torch job, issue 17). So every
entry point pins its threads
before it loads a model, and the default is one thread per process: the right choice when
jobs share a machine, which a workflow's jobs always do. Snakemake passes each rule's
`threads`; a by-hand or DVC call may set `--threads N` or the RISE_THREADS variable.
"""

from __future__ import annotations

import os
import sys

ENV = "RISE_THREADS"
DEFAULT = 1
# Read by OpenMP, MKL and OpenBLAS when they load: set before torch or faiss is imported.
LIBRARY_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def resolve(threads: int | None = None) -> int:
    """`threads` when positive, else $RISE_THREADS, else 1; a bad value names its source."""
    if threads:
        if threads < 0:
            raise ValueError(f"--threads {threads}: must be a positive number of threads")
        return int(threads)
    value = os.environ.get(ENV, str(DEFAULT))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV}={value!r}: must be a positive number of threads")
    return int(value)


def pin(threads: int | None = None) -> int:
    """Pin this process (and the processes it starts) to `resolve(threads)` threads."""
    n = resolve(threads)
    for var in LIBRARY_VARS:
        os.environ[var] = str(n)
    os.environ[ENV] = str(n)
    if "torch" in sys.modules:  # already loaded: its OpenMP team read the variables before
        sys.modules["torch"].set_num_threads(n)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(n)
    return n
