"""How well a trained IQL critic separates expert from non-expert actions.

    python bench/bench_train.py --method RISE --keep /tmp/cell ...   # writes the cell's files
    python bench/bench_advantage.py /tmp/cell --task mini_square_peg

Per data source: V(s) and A(s, a) = min Q(s, a) - V(s) over every row, and the mean policy
weight exp(A / beta) clipped at 100 that RISE's advantage-weighted loss gives that source's
actions; plus V at the starts of the expert episodes (its fixed point is the discounted
number of expert steps that follow, e.g. ~42 for 54 steps at discount 0.99).

With the cell's policy (p.pt), also: at `--states` random expert states, how far the
policy's `--samples` candidate chunks are from the expert's own chunk (mean squared error in
normalised action units) for a random candidate, the one the critic picks (what evaluation
executes) and the closest one; i.e. whether the policy still proposes the expert's action
and whether extraction finds it.
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
    parser.add_argument("--samples", type=int, default=16, help="candidate chunks per state")
    parser.add_argument("--states", type=int, default=256, help="expert states to probe")
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
    if (cell / "p.pt").exists():
        extraction(cell, pool, critic, norm, args.samples, args.states)


@torch.no_grad()
def extraction(cell: Path, pool, critic, critic_norm, samples: int, states: int) -> None:
    """Candidate chunks at expert states against the expert's chunk: random, picked, closest."""
    policy, meta, norm = load_checkpoint(str(cell / "p.pt"), "policy")
    first = pool.offsets[T.EXPERT]
    rng = np.random.default_rng(0)
    rows = first + rng.choice(pool.sizes[T.EXPERT], min(states, pool.sizes[T.EXPERT]), False)
    hist = pool.history_index(meta["n_obs_steps"])[rows]
    cond = policy.condition(norm.obs(pool.lowdim[hist]).float(), {})
    sched = policy.sampler("ddim", 10)
    gen = torch.Generator().manual_seed(0)
    chunks = policy.sample(cond.repeat_interleave(samples, 0), sched, gen)
    chunks = chunks.reshape(len(rows), samples, *chunks.shape[1:])
    expert = norm.act(pool.actions[pool.chunk_index(meta["horizon"])[rows]]).float()
    err = ((chunks - expert[:, None]) ** 2).mean((2, 3))  # (states, samples)
    feat = critic.encoder(critic_norm.obs(pool.lowdim[rows]).float(), {})
    first_actions = critic_norm.act(norm.unact(chunks[:, :, 0]).reshape(-1, chunks.shape[-1]))
    q = critic.q_min(feat.repeat_interleave(samples, 0), first_actions.float())
    picked = err[torch.arange(len(rows)), q.reshape(len(rows), samples).argmax(1)]
    print(
        f"{samples} candidates at {len(rows)} expert states, chunk MSE to the expert's: "
        f"random {err.mean():.3f}, critic's pick {picked.mean():.3f}, "
        f"closest {err.min(1).values.mean():.3f}"
    )


if __name__ == "__main__":
    main()
