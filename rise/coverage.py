"""Stage `coverage`: where a task's data starts, and where it is evaluated (paper Fig 2/9).

One PNG per task, top view of the table: the initial object position of every episode of
every dataset (expert and each non-expert kind), the evaluation starts (the very states
`evaluate` uses: episode i of seed s starts from rng([s, i])), and a few object
trajectories per dataset. It shows at a glance whether the non-expert data covers the gap
between the expert region and the evaluation region, which is what RISE needs.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rise.atomic import atomic_path  # noqa: E402
from rise.data import read_dataset  # noqa: E402
from rise.envs import make_env  # noqa: E402
from rise.tasks import get  # noqa: E402

OBJECT_KEY = "object"  # its first two values are the object's table position (x, y)
COLORS = {"expert": "tab:blue", "eval": "tab:red"}
OTHER_COLORS = ("tab:green", "tab:orange", "tab:purple", "tab:brown")


def eval_starts(task: str, seeds: list[int], episodes: int) -> np.ndarray:
    """Object (x, y) at the start of every evaluation episode."""
    spec = get(task)
    env = make_env(spec.env)
    xy = [
        env.reset(spec.eval_region, np.random.default_rng([seed, i]))[OBJECT_KEY][:2]
        for seed in seeds
        for i in range(episodes)
    ]
    env.close()
    return np.array(xy)


def coverage(
    *, task: str, files: dict[str, str], seeds: list[int], episodes: int, out: str, paths: int = 3
) -> dict:
    spec = get(task)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    counts = {}
    others = iter(OTHER_COLORS)
    for source, path in files.items():
        ds = read_dataset(path, (OBJECT_KEY,))
        obj = ds.obs[OBJECT_KEY][:, :2]
        color = COLORS.get(source) or next(others)
        starts = obj[ds.starts]
        counts[source] = len(starts)
        for s, n in list(zip(ds.starts, ds.lengths, strict=True))[:paths]:
            ax.plot(*obj[s : s + n].T, color=color, lw=0.8, alpha=0.6)
        ax.scatter(*starts.T, s=10, color=color, label=f"{source} starts ({len(starts)})")
    ev = eval_starts(task, seeds, episodes)
    counts["eval"] = len(ev)
    ax.scatter(*ev.T, s=14, marker="x", color=COLORS["eval"], label=f"eval starts ({len(ev)})")
    ax.set(
        xlim=(-0.3, 0.3),
        ylim=(-0.3, 0.3),
        aspect="equal",
        xlabel="x (m)",
        ylabel="y (m)",
        title=f"{task} ({spec.data_type}): object start positions",
    )
    ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    ax.text(
        0.99, 0.01, f"lines: {paths} object paths per dataset", transform=ax.transAxes,
        ha="right", va="bottom", fontsize=7,
    )  # fmt: skip
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return {"task": task, "starts": counts, "out": out}
