"""How well a trained IQL critic separates expert from non-expert actions.

    python bench/bench_train.py --method RISE --keep /tmp/cell ...   # writes the cell's files
    python bench/bench_advantage.py /tmp/cell --task mini_square_peg

Per data source: V(s) and A(s, a) = min Q(s, a) - V(s) over every row, and the mean policy
weight exp(A / beta) clipped at 100 that RISE's advantage-weighted loss gives that source's
actions; plus V at the starts of the expert episodes (its fixed point is the discounted
number of expert steps that follow, e.g. ~42 for 54 steps at discount 0.99).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise import tasks as T  # noqa: E402
from rise.pool import load_pool  # noqa: E402
from rise.train import load_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cell", help="folder written by bench_train.py --keep")
    parser.add_argument("--task", default="mini_square_peg", choices=list(T.TASKS))
    parser.add_argument("--beta", type=float, default=1.0)
    args = parser.parse_args()

    cell = Path(args.cell)
    critic, _, norm = load_checkpoint(str(cell / "c.pt"), "critic")
    files = {d.source: str(cell / f"{d.source}.hdf5") for d in T.get(args.task).data}
    pool = load_pool(files, args.task, "lowdim")
    with torch.no_grad():
        feat = critic.encoder(norm.obs(pool.lowdim).float(), {})
        value = critic.value(feat)
        adv = (critic.q_min(feat, norm.act(pool.actions).float()) - value).numpy().ravel()
    value = value.numpy().ravel()
    weight = np.minimum(np.exp(adv / args.beta), 100.0)
    print(
        f"{'source':12s} {'rows':>7s} {'V mean':>7s} {'A p10':>7s} {'A p50':>7s} "
        f"{'A p90':>7s} {'weight':>7s}"
    )
    for name, first in pool.offsets.items():
        rows = slice(first, first + pool.sizes[name])
        p10, p50, p90 = np.percentile(adv[rows], [10, 50, 90])
        print(
            f"{name:12s} {pool.sizes[name]:7d} {value[rows].mean():7.1f} {p10:7.2f} "
            f"{p50:7.2f} {p90:7.2f} {weight[rows].mean():7.2f}"
        )
    first = pool.offsets[T.EXPERT]
    in_expert = (pool.starts >= first) & (pool.starts < first + pool.sizes[T.EXPERT])
    print(f"V at expert episode starts: {value[pool.starts[in_expert]].mean():.1f}")


if __name__ == "__main__":
    main()
