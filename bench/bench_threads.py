"""One training job's wall time under each driver (plain CLI, Snakemake job, DVC stage),
on an idle machine and next to a competing busy process, at the default thread count (one
per job, rise.threads) and at torch's own default (as many as cores, what jobs used before).

A smoke-scale BC policy of one task, with `--steps` training steps, in a copy of the
repository; the busy process is a Python loop that never sleeps.

    python bench/bench_threads.py [--task mini_square_peg] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from workflow_helpers import copy_repo, env, run  # noqa: E402

from rise import paths as P  # noqa: E402


def timed(cmd: list[str], cwd: Path, extra_env: dict) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env={**env(), **extra_env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mini_square_peg")
    ap.add_argument("--steps", type=int, default=20, help="training steps of the job")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    root = copy_repo(Path(tempfile.mkdtemp(prefix="bench_threads_")), scale="smoke",
                     tasks=[args.task], methods=["BC"], seeds=[0])  # fmt: skip
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    cfg["scales"]["smoke"]["policy"]["steps"] = args.steps
    (root / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    run(["rise", "dvc-yaml"], root)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "bench"]):  # fmt: skip
        run(cmd, root)
    expert = P.dataset(args.task, "lowdim", "expert")
    run(["snakemake", "--cores", "2", expert], root)
    ckpt = P.policy(args.task, "lowdim", "bc", 0)
    stage = f"policy_{args.task}_BC@0"
    drivers = {
        "plain CLI": lambda threads: ["rise", "train-policy", "--scale", "smoke", "--task",
                                      args.task, "--obs", "lowdim", "--method", "BC", "--data",
                                      f"expert={expert}", "--seed", "0", "--out", ckpt,
                                      "--curve", "models/bench_curve.csv"],
        "Snakemake job": lambda threads: ["snakemake", ckpt, "--cores", "2", "--forcerun",
                                          "train_policy", "--set-threads",
                                          f"train_policy={threads}"],
        "DVC stage": lambda threads: ["dvc", "repro", "--force", "--single-item", stage],
    }  # fmt: skip
    print(f"{args.task}, smoke-scale BC policy, {args.steps} steps, {cores} cores")
    print(f"{'driver':<15} {'machine':<24} {'threads':<22} {'wall s':>8}")
    for load in ("idle", "one busy process"):
        busy = None
        if load != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for name, command in drivers.items():
                for label, threads in (("1 (default)", 1), (f"{cores} (torch's own)", cores)):
                    seconds = timed(command(threads), root, {"RISE_THREADS": str(threads)})
                    print(f"{name:<15} {load:<24} {label:<22} {seconds:8.1f}", flush=True)
        finally:
            if busy is not None:
                busy.kill()


if __name__ == "__main__":
    main()
