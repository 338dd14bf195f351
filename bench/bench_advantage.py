"""How well a trained IQL critic separates expert from non-expert actions.

    python bench/bench_train.py --method RISE --keep /tmp/cell ...   # writes the cell's files
    python bench/bench_advantage.py /tmp/cell --task mini_square_peg

Per data source: V(s) and A(s, a) = min Q(s, a) - V(s) over every row, and the mean policy
weight exp(A / beta) clipped at 100 that RISE's advantage-weighted loss gives that source's
actions; plus V at the starts of the expert episodes (its fixed point is the discounted
number of expert steps that follow, e.g. ~42 for 54 steps at discount 0.99), each source's
share of the weighted loss, and the effective size of a weighted batch of 64.

With the cell's augmentation pairs (p.npz), also: whether value flows back from the stitch
points into the non-expert data. A stitch point is a non-expert row with an expert neighbour
(it gets the expert's action and reward 1); per bin of steps until the episode next reaches
one, the mean V. If the critic propagates value, V falls off like discount^steps from the
stitch points; if it is flat, nothing steers a policy from far states towards them. And at
the stitch points, how often the critic ranks the expert neighbour's action above play's own
action (same state, same next state: Q differs by exactly the reward, 1, at convergence).

With the cell's policy (p.pt), also: at `--states` random expert states, how far the
policy's `--samples` candidate chunks are from the expert's own chunk (mean squared error in
normalised action units) for a random candidate, the one the critic picks (what evaluation
executes) and the closest one; i.e. whether the policy still proposes the expert's action
and whether extraction finds it; and the mean executed action of the candidates, the picks
and the expert per action dimension, where a critic's extrapolation shows as a bias.

With any diffusion policy (p.pt; the critic is optional): how much its chunk at the expert's
starts moves when only the object moves 5 cm, i.e. whether it sees where the object is.

For a coverage task, also whether the data connects the evaluation region to the stitch
points at all: the non-expert episodes that hold the object in that region, how many of them
later reach a stitch point, and V at fresh starts of the evaluation and expert regions.
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
from rise.config import load, section  # noqa: E402
from rise.envs import make_env  # noqa: E402
from rise.evaluate import Planner  # noqa: E402
from rise.pool import augmented_rows, load_pool, obs_keys  # noqa: E402
from rise.threads import pin as pin_threads  # noqa: E402
from rise.train import effective_batch_size, load_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cell", help="folder written by bench_train.py --keep")
    parser.add_argument("--task", default="mini_square_peg", choices=list(T.TASKS))
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=16, help="candidate chunks per state")
    parser.add_argument("--states", type=int, default=256, help="expert states to probe")
    parser.add_argument("--scale", default="cpu", help="whose policy sampler to use")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = parser.parse_args()
    pin_threads()

    cell = Path(args.cell)
    files = {d.source: str(cell / f"{d.source}.hdf5") for d in T.get(args.task).data}
    pool = load_pool(files, args.task, "lowdim")
    pol = section(load(args.params), args.scale, "policy")
    sampler = (pol["inference_scheduler"], pol["inference_steps"])
    column = object_column(args.task)
    if (cell / "c.pt").exists():
        critic, _, norm = load_checkpoint(str(cell / "c.pt"), "critic")
        value = advantages(pool, critic, norm, args.beta)
        if (cell / "p.npz").exists():
            steps = stitching(pool, critic, norm, value, str(cell / "p.npz"))
            if T.get(args.task).eval_region != T.EXPERT:
                connectivity(args.task, pool, critic, norm, steps, column)
    if (cell / "p.pt").exists():
        sensitivity(cell, pool, args.states, sampler, column)
        if (cell / "c.pt").exists():
            extraction(cell, pool, args.samples, args.states, sampler)


@torch.no_grad()
def advantages(pool, critic, norm, beta: float) -> np.ndarray:
    """Prints V, A and RISE's weight exp(A / beta) per source; returns V of every row."""
    feat = critic.encoder(norm.obs(pool.lowdim).float(), {})
    value = critic.value(feat)
    scored = norm.act(scored_actions(pool, critic)).float()
    adv = (critic.q_lower(feat, scored) - value).numpy().ravel()
    value = value.numpy().ravel()
    weight = np.minimum(np.exp(adv / beta), 100.0)
    print(
        f"{'source':12s} {'rows':>7s} {'V mean':>7s} {'A p10':>7s} {'A p50':>7s} "
        f"{'A p90':>7s} {'weight':>7s} {'loss share (unweighted)':>24s}"
    )
    for name, first in pool.offsets.items():
        rows = slice(first, first + pool.sizes[name])
        p10, p50, p90 = np.percentile(adv[rows], [10, 50, 90])
        share, plain = weight[rows].sum() / weight.sum(), pool.sizes[name] / len(pool)
        print(
            f"{name:12s} {pool.sizes[name]:7d} {value[rows].mean():7.1f} {p10:7.2f} "
            f"{p50:7.2f} {p90:7.2f} {weight[rows].mean():7.2f} {share:17.0%} ({plain:4.0%})"
        )
    print(f"V at expert episode starts: {value[expert_starts(pool)].mean():.1f}")
    batches = np.random.default_rng(0).choice(weight, (2000, 64))
    effective = np.mean(effective_batch_size(batches))
    print(f"effective size of a weighted batch of 64: {effective:.0f} (mean of 2,000)")
    return value


def scored_actions(pool, critic) -> np.ndarray:
    """(N, critic.chunk, A): the actions the critic scores from every row."""
    return pool.actions[pool.chunk_index(critic.chunk)]


def expert_starts(pool) -> np.ndarray:
    first = pool.offsets[T.EXPERT]
    return pool.starts[(pool.starts >= first) & (pool.starts < first + pool.sizes[T.EXPERT])]


def object_column(task: str) -> int:
    """Column of the object's x in the task's low-dim vector (its y is the next one)."""
    env = make_env(T.get(task).env)
    obs = env.reset(T.EXPERT, np.random.default_rng(0))
    env.close()
    keys = obs_keys(task, "lowdim")[0]
    return sum(np.size(obs[k]) for k in keys[: keys.index("object")])


def steps_to_next(rows: np.ndarray, pool) -> np.ndarray:
    """Per row: steps until its episode next reaches one of `rows` (inf if it never does)."""
    hit = np.zeros(len(pool), bool)
    hit[rows] = True
    steps = np.full(len(pool), np.inf)
    for start, length in zip(pool.starts, pool.lengths, strict=True):
        nxt = np.inf
        for r in range(start + length - 1, start - 1, -1):
            nxt = 0 if hit[r] else nxt + 1
            steps[r] = nxt
    return steps


@torch.no_grad()
def stitching(pool, critic, norm, value: np.ndarray, pairs: str) -> np.ndarray:
    """Prints the stitch-pair gaps and V by distance; returns each row's steps to the next
    stitch point."""
    states, actions = augmented_rows(pool, pairs)
    first = pool.offsets[T.EXPERT]
    expert_action = (actions >= first) & (actions < first + pool.sizes[T.EXPERT])
    states, actions = states[expert_action], actions[expert_action]
    if not len(states):  # e.g. epsilon 0 (the suboptimal rows): nothing to stitch
        print("0 stitch pairs with an expert action: no stitch points to measure")
        return np.full(len(pool), np.inf)
    feat = critic.encoder(norm.obs(pool.lowdim[states]).float(), {})
    chunks = norm.act(scored_actions(pool, critic)).float()
    gap = (critic.q_lower(feat, chunks[actions]) - critic.q_lower(feat, chunks[states])).numpy()
    apart = np.linalg.norm((chunks[actions] - chunks[states]).flatten(1).numpy(), axis=1)
    print(f"{len(gap)} stitch pairs: Q(expert's action) - Q(play's own action), converged: 1.00")
    for lo, hi in ((0, 0.25), (0.25, 1), (1, np.inf)):  # near-equal actions cannot be told apart
        sel = (apart >= lo) & (apart < hi)
        print(
            f"  actions {lo}-{hi} apart: {sel.sum():5d} pairs, gap {gap[sel].mean():5.2f}, "
            f"right sign in {(gap[sel] > 0).mean():.0%}"
        )
    steps = steps_to_next(np.unique(states), pool)
    nonexpert = np.ones(len(pool), bool)
    nonexpert[first : first + pool.sizes[T.EXPERT]] = False
    print("V of non-expert rows by steps to the next stitch point:")
    for lo, hi in ((0, 1), (1, 10), (10, 30), (30, 100), (100, np.inf), (np.inf, np.inf)):
        sel = nonexpert & ((steps == lo) if lo == hi else (steps >= lo) & (steps < hi))
        label = (
            "never" if lo == np.inf else f"{lo}-{hi - 1} steps" if hi - lo > 1 else f"{lo} steps"
        )
        mean = f"{value[sel].mean():7.1f}" if sel.any() else "      -"
        print(f"  {label:>14s}: {sel.sum():6d} rows, V {mean}")
    return steps


@torch.no_grad()
def connectivity(
    task: str, pool, critic, norm, steps: np.ndarray, column: int, starts: int = 32
) -> None:
    """Whether the data connects the evaluation region to the stitch points: non-expert
    episodes with the object inside the region's (x, y) box at some step, how many of them
    reach a stitch point afterwards and how far; and V at fresh starts of each region."""
    env = make_env(T.get(task).env)
    keys = obs_keys(task, "lowdim")[0]
    obs = {r: [env.reset(r, np.random.default_rng([0, i])) for i in range(starts)]
           for r in (T.EXPERT, T.get(task).eval_region)}  # fmt: skip
    env.close()
    region = T.get(task).eval_region
    (x0, y0), (x1, y1) = (bound[:2] for bound in env.REGIONS[region])
    x, y = pool.lowdim[:, column], pool.lowdim[:, column + 1]
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    visits, reach, lags = 0, 0, []
    for start, length in zip(pool.starts, pool.lengths, strict=True):
        if pool.reward[start] or not inside[start : start + length].any():
            continue  # expert episode, or the object never in the region
        visits += 1
        enter = start + int(np.argmax(inside[start : start + length]))
        if np.isfinite(steps[enter]):
            reach += 1
            lags.append(steps[enter])
    lag = f", median {np.median(lags):.0f} steps later" if lags else ""
    print(
        f"non-expert episodes with the object in the {region} region: {visits}; "
        f"reaching a stitch point afterwards: {reach}{lag}"
    )
    for name, resets in obs.items():
        low = np.stack([np.concatenate([o[k].ravel() for k in keys]) for o in resets])
        v = critic.value(critic.encoder(norm.obs(low).float(), {})).mean()
        print(f"V at {len(resets)} fresh starts of the {name} region: {v:.1f}")


@torch.no_grad()
def sensitivity(cell: Path, pool, states: int, sampler: tuple[str, int], column: int) -> None:
    """How much the policy's chunk moves when only the object moves (same noise), at expert
    episode starts: a policy that cannot see where the object is cannot reach it. The
    spectral-norm penalty acts on the last layer of the head that the whole conditioning
    passes through, so its largest singular value is printed alongside."""
    planner = Planner(str(cell / "p.pt"), None, 1, *sampler, 0, "cpu")
    if planner.actor_critic:
        return
    rows = expert_starts(pool)[:states]
    low = pool.lowdim[pool.history_index(planner.meta["n_obs_steps"])[rows]]
    moved = low.copy()
    moved[..., column + 1] += 0.05
    chunks = []
    for lowdim in (low, moved):
        planner.gen.manual_seed(0)
        chunks.append(planner.norm.act(planner.propose(lowdim, {})[:, 0]))
    change = (chunks[1] - chunks[0]).abs().mean()
    sigma = planner.policy.spectral_penalty()  # what lambda multiplies
    print(
        f"policy at {len(rows)} expert starts: its chunk moves {change:.3f} (mean absolute, "
        f"normalised) when the object moves 5 cm in y; sigma_max of the Lipschitz head's "
        f"last layer {sigma:.3f}"
    )


@torch.no_grad()
def extraction(cell: Path, pool, samples: int, states: int, sampler: tuple[str, int]) -> None:
    """Candidate chunks at expert states against the expert's chunk: random, picked, closest.
    Proposals and scores come from the evaluation's own Planner (rise.evaluate)."""
    planner = Planner(str(cell / "p.pt"), str(cell / "c.pt"), samples, *sampler, 0, "cpu")
    first = pool.offsets[T.EXPERT]
    rng = np.random.default_rng(0)
    rows = first + rng.choice(pool.sizes[T.EXPERT], min(states, pool.sizes[T.EXPERT]), False)
    hist = pool.history_index(planner.meta["n_obs_steps"])[rows]
    chunks = planner.propose(pool.lowdim[hist], {})
    q = planner.score(pool.lowdim[rows], {}, chunks)
    expert = pool.actions[pool.chunk_index(planner.meta["horizon"])[rows]]
    act = planner.norm.act  # errors in the policy's normalised units, as its loss sees them
    candidates, expert = act(chunks), act(expert)
    pick = torch.arange(len(rows)), q.argmax(1)  # each state's chosen candidate
    picked_chunks = candidates[pick]
    sq = (candidates - expert[:, None]) ** 2  # (states, samples, horizon, action)
    print(
        f"{samples} candidates ({sampler[0]}, {sampler[1]} steps) at {len(rows)} expert "
        f"states, MSE to the expert's actions (Q spread across candidates {q.std(1).mean():.2f}):"
    )
    for label, n in (("first action", 1), ("executed", planner.meta["n_action_steps"]),
                     ("whole chunk", planner.meta["horizon"])):  # fmt: skip
        err = sq[:, :, :n].mean((2, 3))
        picked = err[pick].mean()
        print(
            f"  {label:>12s}: random {err.mean():.3f}, critic's pick {picked:.3f}, "
            f"closest {err.min(1).values.mean():.3f}"
        )
    # A critic that extrapolates favours some direction whatever the state: the pick's mean
    # executed action drifts away from the candidates' and the expert's.
    ex = planner.meta["n_action_steps"]
    means = {"candidates": candidates[:, :, :ex].mean((0, 1, 2)),
             "critic's pick": picked_chunks[:, :ex].mean((0, 1)),
             "expert's": expert[:, :ex].mean((0, 1))}  # fmt: skip
    print("  mean executed action per dimension (normalised):")
    for label, mean in means.items():
        print(f"  {label:>14s}: " + " ".join(f"{v:6.3f}" for v in mean.tolist()))


if __name__ == "__main__":
    main()
