"""Where failed rollouts left the object: what a policy did instead of the task.

    python bench/bench_rollouts.py eval/mini_square_peg/lowdim/*/seed0/episodes.json

Reads the evaluation's per-episode records (`episodes.json`: the object's pose at the start
and at the end of each episode) and counts, per file: successes; failures that left the
object untouched (moved under 1 cm and not lifted), lifted (2 cm above its start when the
episode ended), or moved and set down, by the task's initial-state region it ended in
(`to expert`, `to eval`; `elsewhere` otherwise). A policy that never touches the object failed
before any stitching could matter; one that carries it into the expert region did the
non-expert part and failed the expert's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise import tasks as T  # noqa: E402
from rise.envs import ENVS  # noqa: E402

OUTCOMES = ("success", "untouched", "lifted", "to expert", "to eval", "elsewhere")


def outcome(record: dict, regions: dict) -> str:
    """One episode's outcome, from its record and the env's region boxes (x, y first)."""
    if record["success"]:
        return "success"
    start, end = np.asarray(record["init_object"][:3]), np.asarray(record["final_object"][:3])
    if end[2] > start[2] + 0.02:
        return "lifted"
    if np.linalg.norm(end[:2] - start[:2]) < 0.01:
        return "untouched"
    for name in ("expert", "eval"):
        low, high = regions[name]
        if np.all(end[:2] >= low[:2]) and np.all(end[:2] <= high[:2]):
            return f"to {name}"
    return "elsewhere"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("episodes", nargs="+", help="episodes.json files of one task")
    parser.add_argument("--task", default="mini_square_peg", choices=list(T.TASKS))
    args = parser.parse_args()
    regions = ENVS[T.get(args.task).env].REGIONS
    print(" ".join(f"{o:>10s}" for o in OUTCOMES), " file")
    for path in args.episodes:
        records = json.loads(Path(path).read_text())
        if records and "final_object" not in records[0]:
            parser.error(f"{path}: no final_object (written before evaluate recorded it)")
        counts = {o: 0 for o in OUTCOMES}
        for record in records:
            counts[outcome(record, regions)] += 1
        print(" ".join(f"{counts[o]:10d}" for o in OUTCOMES), "", path)


if __name__ == "__main__":
    main()
