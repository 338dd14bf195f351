"""Successes of several methods on several rows at once: one `bench_train.py` cell per
(task, method, training seed), run as parallel one-thread processes, then a table.

    python bench/bench_rows.py --tasks mini_square_peg mini_threading --methods BC RISE \
        --regions valid expert --jobs 2 --out /tmp/rows -- --steps 3000 --lam 0 \
        --set policy.denoiser=mlp

Everything after `--` goes to every `bench/bench_train.py` call (sizes, `--set`
overrides). Each cell keeps its files in OUT/<task>/<method>/seed<s>/ (its log is
`log.txt` there); a cell whose metrics are already there is not run again, so a sweep can
be extended. Use it to choose settings on a task's `valid` region; never on `eval`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cell(cell: Path, task: str, method: str, seed: int, regions: list[str], extra: list[str]):
    """One bench_train.py process pinned to one thread; returns its wall seconds."""
    cell.mkdir(parents=True, exist_ok=True)
    if all((cell / f"m_{r}.json").is_file() for r in regions):
        return 0.0
    cmd = [sys.executable, str(ROOT / "bench/bench_train.py"), "--task", task, "--method", method]
    cmd += ["--seed", str(seed), "--keep", str(cell), "--region", *regions, *extra]
    start = time.perf_counter()
    with open(cell / "log.txt", "w") as log:
        env = {**os.environ, "RISE_THREADS": "1"}
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        print(f"{cell}: exit code {done.returncode}, see {cell / 'log.txt'}", flush=True)
    return time.perf_counter() - start


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--regions", nargs="+", default=["valid"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--out", required=True, help="folder of the cells")
    args = parser.parse_args(own)

    cells = [
        (Path(args.out, t, m, f"seed{s}"), t, m, s)
        for t in args.tasks
        for m in args.methods
        for s in args.seeds
    ]
    print(f"{len(cells)} cells on {args.jobs} processes; bench_train.py {' '.join(extra)}")
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {c[0]: pool.submit(run_cell, *c, args.regions, extra) for c in cells}
        seconds = {cell: f.result() for cell, f in futures.items()}

    print("task method seed region successes episodes seconds")
    for cell, t, m, s in cells:
        for r in args.regions:
            path = cell / f"m_{r}.json"
            if not path.is_file():
                print(t, m, s, r, "failed", "-", f"{seconds[cell]:.0f}")
                continue
            metrics = json.loads(path.read_text())
            print(t, m, s, r, metrics["successes"], metrics["episodes"], f"{seconds[cell]:.0f}")


if __name__ == "__main__":
    main()
