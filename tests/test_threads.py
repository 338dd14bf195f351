"""Every process pins its threads (rise.threads): one per job unless told otherwise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rise import threads

ROOT = Path(__file__).resolve().parents[1]
STAGE = """
import json, os, sys
import torch
import rise.cli as cli
cli.cmd_augment = lambda args: {"torch": torch.get_num_threads(),
                                "omp": os.environ["OMP_NUM_THREADS"], "args": args.threads}
sys.exit(cli.main(["augment", "--features", "f", "--epsilon", "0.1", "--out", "o",
                   "--stats", "s", *sys.argv[1:]]))
"""


def run_stage(*flags, **env_vars):
    env = {k: v for k, v in os.environ.items() if k not in (threads.ENV, *threads.LIBRARY_VARS)}
    env.update(env_vars)
    out = subprocess.run([sys.executable, "-c", STAGE, *flags], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    return out.returncode, out.stdout, out.stderr


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="torch's own default is 1 thread here")
def test_a_stage_without_threads_runs_one_thread_even_with_torch_already_loaded():
    """torch's default is one thread per core; a stage given no --threads runs one."""
    code, out, err = run_stage()
    assert code == 0, err
    assert json.loads(out) == {"torch": 1, "omp": "1", "args": 1}


def test_threads_flag_then_environment_decide():
    code, out, err = run_stage("--threads", "2", RISE_THREADS="3")
    assert code == 0, err
    assert json.loads(out)["torch"] == 2
    code, out, err = run_stage(RISE_THREADS="3")
    assert code == 0, err
    assert json.loads(out) == {"torch": 3, "omp": "3", "args": 3}


def test_bad_thread_counts_are_refused_by_name():
    code, _, err = run_stage(RISE_THREADS="lots")
    assert code == 2 and "RISE_THREADS='lots': must be a positive number" in err
    code, _, err = run_stage("--threads", "-2")
    assert code == 2 and "--threads -2: must be a positive number" in err
