"""The paper's ablation and sensitivity figures (Fig 5b, 6, 7, 8) as targets.

Each figure is a set of points (series, x) -> evaluation metrics of every seed. A point is
an ordinary Table I cell at other knob values: its variant tag carries them
(`rise_lam0.01_eps0.08`), so a sweep reuses every upstream artifact that does not depend on
the swept value (datasets, features, critics for lambda sweeps) and never overwrites
another value's files. `points` is shared by Snakemake and the `figure` stage; the stage
writes `results/<name>.csv` (series, x, mean, std over seeds, per-seed rates, rollouts) and a
PNG (bars for the ablation, lines with std error bars for the sweeps).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from rise import paths as P  # noqa: E402
from rise.atomic import atomic_path, write_text  # noqa: E402
from rise.config import resolve  # noqa: E402
from rise.methods import variant  # noqa: E402
from rise.tables import cell_stats  # noqa: E402

FIGURES = {
    # name: (title, x label, series label, kind)
    "fig5b_ablation": ("Ablation", "method", "", "bar"),
    "fig6_lambda": ("Sensitivity to lambda", "lambda", "non-expert data", "line"),
    "fig6_epsilon": ("Sensitivity to epsilon", "epsilon", "non-expert data", "line"),
    "fig7_lambda_epsilon": ("lambda x epsilon", "epsilon", "lambda", "line"),
    "fig8_epsilon": ("Sensitivity to epsilon", "epsilon", "non-expert data", "line"),
}
# Fig 5b's steps: (label, method); each adds one piece to the one before
ABLATION = (
    ("BC", "BC"),
    ("offline RL (IDQL)", "IDQL"),
    ("+ spectral norm", "IDQLSN"),
    ("+ spectral norm + augmentation", "RISE"),
)


def _s(value) -> str:
    """A knob value as written in paths (str of the YAML value)."""
    return str(value)


def points(cfg: dict, name: str, obs: str) -> list[tuple[str, str, str, list[str]]]:
    """(series, x, task, metrics files of every seed) of figure `name` under params `cfg`."""
    fig, seeds = resolve(cfg, cfg["scale"])["figures"], cfg["seeds"]

    def cell(task, method, lam, eps, amount=1.0):
        ne = None if amount >= 1.0 else _s(amount)  # all the data: the Table I cell itself
        tag = variant(method, _s(lam), _s(eps), ne)
        return [P.eval_metrics(task, obs, tag, s) for s in seeds]

    def knob(key, task):
        return cfg[f"{key}_per_task"].get(task, cfg[key])

    def pct(amount):
        return f"{100 * amount:g}%"

    full = pct(1.0)
    if name == "fig5b_ablation":
        t = fig["ablation_task"]
        lam, eps = knob("lambda", t), knob("epsilon", t)
        return [("", label, t, cell(t, m, lam, eps)) for label, m in ABLATION]
    if name == "fig6_lambda":
        t = fig["sensitivity_task"]
        eps = knob("epsilon", t)
        return [
            (pct(a), _s(v), t, cell(t, "RISE", v, eps, a))
            for a in fig["amounts"]
            for v in fig["lambdas"]
        ]
    if name == "fig6_epsilon":
        t = fig["sensitivity_task"]
        lam = knob("lambda", t)
        return [
            (pct(a), _s(v), t, cell(t, "RISE", lam, v, a))
            for a in fig["amounts"]
            for v in fig["epsilons"]
        ]
    if name == "fig7_lambda_epsilon":
        t = fig["sensitivity_task"]
        return [
            (_s(lam), _s(eps), t, cell(t, "RISE", lam, eps))
            for lam in fig["lambdas"]
            for eps in fig["epsilons"]
        ]
    if name == "fig8_epsilon":
        t = fig["epsilon_task"]
        lam = knob("lambda", t)
        return [(full, _s(v), t, cell(t, "RISE", lam, v)) for v in fig["epsilons_mug"]]
    raise ValueError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")


def figure(
    *, name: str, points: list[tuple[str, str, list[str]]], task: str, out_csv: str, out_png: str
) -> pd.DataFrame:
    """`points`: (series, x, metric files). Writes the CSV and the PNG of figure `name`."""
    title, xlabel, series_label, kind = FIGURES[name]
    rows = []
    for series, x, files in points:
        stats = cell_stats(files)
        rows.append(
            {
                "series": series,
                "x": x,
                **{k: stats[k] for k in ("mean", "std", "seeds", "rollouts")},
                "per_seed": " ".join(f"{r:.4f}" for r in stats["per_seed"]),
            }
        )
    df = pd.DataFrame(rows)
    write_text(out_csv, df.to_csv(index=False))
    fig, ax = plt.subplots(figsize=(6, 4))
    if kind == "bar":
        ax.bar(df["x"], 100 * df["mean"], yerr=100 * df["std"], capsize=4, color="tab:blue")
        ax.tick_params(axis="x", labelrotation=15)
    else:
        for series, part in df.groupby("series", sort=False):
            ax.errorbar(
                part["x"].astype(float),
                100 * part["mean"],
                yerr=100 * part["std"],
                marker="o",
                capsize=3,
                label=f"{series_label} {series}".strip(),
            )
        ax.legend(fontsize=8)
        ax.set_xlabel(xlabel)
    ax.set(ylabel="success rate (%)", ylim=(0, 100), title=f"{title} ({task})")
    _save(fig, out_png)
    return df


def _save(fig, out_png: str) -> None:
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def rounds_png(df: pd.DataFrame, out_png: str) -> None:
    """Table II as a picture: success per relabeling round, std over seeds as error bars."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(df["round"], 100 * df["mean"], yerr=100 * df["std"], marker="o", capsize=3)
    ax.set_xticks(list(df["round"]))
    ax.set(xlabel="relabeling round", ylabel="success rate (%)", ylim=(0, 100),
           title=f"Rounds of relabeling ({df['task'][0]}, {df['variant'][0]})")  # fmt: skip
    _save(fig, out_png)
