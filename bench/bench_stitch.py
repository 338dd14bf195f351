"""Stitchability of each coverage row's data, measured before any training (issue 21, lever 1).

    python bench/bench_stitch.py [--tasks T ...] [--scale cpu] [--starts 50] [--radius 0.02]

For each task, collects its datasets with the real `collect` stage (data seed 0) and asks,
for `--starts` start states of each non-expert region (the evaluation region, and the
`valid` region where the env has one): does some non-expert episode pass near this start
(the object within `--radius` metres of where it starts) and, later in the same episode,
reach a state with an expert neighbour within the task's epsilon (the augmentation's test:
low-dim features on the unit sphere, same gripper state)? That fraction is the share of
starts from which the data holds a path play -> expert, i.e. what RISE can stitch at best.
Also printed: the share of non-expert states with an expert neighbour within epsilon, and
of non-expert episodes that reach one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise import tasks as T  # noqa: E402
from rise.augment import find_pairs  # noqa: E402
from rise.collect import collect  # noqa: E402
from rise.config import load, section, task_epsilon  # noqa: E402
from rise.data import read_dataset  # noqa: E402
from rise.embed import embed  # noqa: E402
from rise.envs import make_env  # noqa: E402
from rise.threads import pin as pin_threads  # noqa: E402

OBJECT_KEY = "object"


def later_reach(hit: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """reach[t]: some row at or after t in t's episode has `hit` (rows in episode order)."""
    reach = np.zeros(len(hit), bool)
    for ep in np.unique(episode):
        rows = np.flatnonzero(episode == ep)
        reach[rows] = np.logical_or.accumulate(hit[rows][::-1])[::-1]
    return reach


def stitchability(name: str, files: dict[str, str], eps: float, starts: int, radius: float):
    """The row's numbers, from the real `embed` stage's low-dim features and the
    augmentation's own nearest-expert search (rise.augment.find_pairs)."""
    task = T.get(name)
    features = f"{Path(files[T.EXPERT]).parent}/f.npz"
    embed(
        task=name, obs="lowdim", files=files, weights="random", dim=0, batch_size=1, out=features
    )  # fmt: skip (low-dim features use neither weights nor sizes)
    with np.load(features) as z:
        sources = [str(s) for s in z["sources"]]
        arrays = {k: {s: z[f"{s}{k}"] for s in sources} for k in ("", "_gripper", "_episode")}
        steps = {s: z[f"{s}_step"] for s in sources}
    found = find_pairs(arrays[""], arrays["_gripper"], arrays["_episode"], steps, epsilon=eps,
                       k=1, play_to_play=False, skip_play=0, skip_expert=0)  # fmt: skip
    near_expert = found["nearest_expert"] <= eps  # every non-expert row, sources in order
    other = [s for s in sources if s != T.EXPERT]
    sets = {s: read_dataset(files[s], (OBJECT_KEY,)) for s in other}
    obj = np.concatenate([sets[s].obs[OBJECT_KEY][:, :2] for s in other])
    offset = np.cumsum([0] + [int(sets[s].episode.max()) + 1 for s in other])
    episode = np.concatenate([sets[s].episode + offset[i] for i, s in enumerate(other)])
    reach = later_reach(near_expert, episode)
    env = make_env(task.env)
    row = {
        "task": name,
        "epsilon": eps,
        "states_near_expert": near_expert.mean(),
        "episodes_reaching": np.mean([reach[episode == e][0] for e in np.unique(episode)]),
    }
    for region in [r for r in (task.eval_region, "valid") if r in env.regions]:
        xy = np.array(
            [
                env.reset(region, np.random.default_rng([7, i]))[OBJECT_KEY][:2]
                for i in range(starts)
            ]
        )
        near = np.linalg.norm(obj[None] - xy[:, None], axis=-1) <= radius  # (starts, rows)
        row[f"{region}_covered"] = near.any(1).mean()
        row[f"{region}_stitchable"] = (near & reach[None]).any(1).mean()
    env.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    coverage_rows = [n for n, t in T.TASKS.items() if t.data_type == "coverage"]
    parser.add_argument("--tasks", nargs="+", default=coverage_rows, choices=list(T.TASKS))
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--starts", type=int, default=50, help="start states per region")
    parser.add_argument("--radius", type=float, default=0.02, help="metres: 'near the start'")
    args = parser.parse_args()
    pin_threads(1)
    params = load(args.params)
    hp = section(params, args.scale, "collect")
    rows = []
    for name in args.tasks:
        task = T.get(name)
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for d in task.data:
                files[d.source] = f"{tmp}/{d.source}.hdf5"
                n = T.scaled_episodes(d.episodes, hp["episodes_scale"], hp["min_episodes"])
                collect(
                    task=d.owner or name, env_name=task.env, source=d.source, episodes=n,
                    seed=0, cameras=False, out=files[d.source],
                )  # fmt: skip
            eps = task_epsilon(params, name)
            rows.append(stitchability(name, files, eps, args.starts, args.radius))
        print(
            "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in rows[-1].items()),
            flush=True,
        )  # fmt: skip


if __name__ == "__main__":
    main()
