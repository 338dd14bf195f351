"""Stage `table`: evaluation metrics of every (task, method, seed) -> Table I files.

`table1.csv`: one row per task (coverage rows first, then suboptimal, as in the paper), its
data type; per method its mean success rate over seeds (`<M>`) and
the standard deviation over seeds (`<M>_std`, sample std; 0 with one seed), plus the
rollouts behind each cell. `table1.md` renders it as the paper does (percent, mean ± std).
`table1.json` holds the same numbers for `dvc metrics` / `dvc exp show`, and the variant
(method + lambda/epsilon) that produced each cell. `table1.md` ends with which of the
paper's Table I claims hold on these numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from rise.atomic import write_json, write_text
from rise.tasks import get


def _variant(metrics: str) -> str:
    """The variant tag in eval/<task>/<obs>/<variant>/[round<r>/]seed<s>/metrics.json."""
    parts = Path(metrics).parts
    return parts[-4] if re.fullmatch(r"round\d+", parts[-3]) else parts[-3]


def cell_stats(metric_files: list[str]) -> dict:
    if not metric_files:  # a real-robot cell whose recordings are all still missing
        return {"mean": float("nan"), "std": float("nan"), "seeds": 0, "rollouts": 0,
                "variant": "", "per_seed": []}  # fmt: skip
    rates, rollouts = [], 0
    for path in metric_files:
        with open(path) as f:
            m = json.load(f)
        rates.append(m["success_rate"])
        rollouts += m["episodes"]
    std = float(np.std(rates, ddof=1)) if len(rates) > 1 else 0.0
    return {
        "mean": float(np.mean(rates)),
        "std": std,
        "seeds": len(rates),
        "rollouts": rollouts,
        "variant": ",".join(sorted({_variant(p) for p in metric_files})),
        "per_seed": rates,
    }


# Table I's claims in the paper: (row type, method, baseline, least gap in points, strict, words)
CLAIMS = (
    ("coverage", "RISE", "BC", 30.0, False, "RISE at least 30 points above BC"),
    ("coverage", "RISE", "BCU", 0.0, True, "RISE above BCU"),
    ("coverage", "RISE", "IDQL", 0.0, True, "RISE above IDQL"),
    ("suboptimal", "BC", "BCU", 0.0, True, "BCU below BC"),
    ("suboptimal", "RISE", "BC", 0.0, False, "RISE at or above BC"),
)


def claims(df: pd.DataFrame) -> list[dict]:
    """The paper's Table I claims checked on this table's numbers: for each claim whose
    methods and rows are here, the mean gap (points) over the rows of its type and each
    row's gap. Rows with a missing cell are left out."""
    out = []
    for data_type, method, base, least, strict, words in CLAIMS:
        if method not in df or base not in df:
            continue
        rows = df[(df["data_type"] == data_type) & df[method].notna() & df[base].notna()]
        if rows.empty:
            continue
        gaps = 100 * (rows[method] - rows[base])
        mean = float(gaps.mean())
        out.append({
            "claim": f"{data_type} rows: {words} on average",
            "holds": bool(mean > least if strict else mean >= least),
            "mean_gap": round(mean, 1),
            "gaps": {t: round(float(g), 1) for t, g in zip(rows["task"], gaps, strict=True)},
        })  # fmt: skip
    return out


def table1(
    cells: dict[tuple[str, str], list[str]],
    out_csv: str,
    out_md: str,
    out_json: str,
    missing: dict[tuple[str, str], list[str]] | None = None,
) -> pd.DataFrame:
    """`cells`: (task, method) -> metric files (one per seed). `missing`: (task, method) ->
    the recorded rollouts a real-robot cell still needs; such seeds are left out of the
    cell (empty when none is there) and every file is named under the table."""
    missing = {key: files for key, files in (missing or {}).items() if files}
    for key in missing:
        cells.setdefault(key, [])
    tasks = list(dict.fromkeys(t for t, _ in cells))
    tasks.sort(key=lambda t: get(t).data_type != "coverage")  # stable: keeps the given order
    methods = list(dict.fromkeys(m for _, m in cells))
    stats = {key: cell_stats(files) for key, files in cells.items()}
    rows = []
    for task in tasks:
        row = {"task": task, "data_type": get(task).data_type}
        for m in methods:
            s = stats[(task, m)]
            row[m], row[f"{m}_std"] = round(s["mean"], 4), round(s["std"], 4)
        row["rollouts_per_cell"] = max(stats[(task, m)]["rollouts"] for m in methods)
        row["seeds"] = max(stats[(task, m)]["seeds"] for m in methods)
        rows.append(row)
    df = pd.DataFrame(rows)
    write_text(out_csv, df.to_csv(index=False))
    header = "| data | task | " + " | ".join(methods) + " |"
    lines = [header, "|---" * (len(methods) + 2) + "|"]
    for row in rows:
        cells_md = [
            "missing" if stats[(row["task"], m)]["seeds"] == 0
            else f"{100 * row[m]:.1f} ± {100 * row[f'{m}_std']:.1f}"
            for m in methods
        ]  # fmt: skip
        lines.append(f"| {row['data_type']} | {row['task']} | " + " | ".join(cells_md) + " |")
    n = max(r["rollouts_per_cell"] // max(r["seeds"], 1) for r in rows)
    lines += [
        "",
        f"Success rate (%) on each task's evaluation region, mean ± std over "
        f"{rows[0]['seeds']} seed(s), {n} rollouts per seed. Variants (method, lambda, "
        "epsilon): "
        + "; ".join(f"{t}: " + ", ".join(stats[(t, m)]["variant"] for m in methods) for t in tasks)
        + ".",
    ]
    checked = claims(df)
    if checked:
        lines += ["", "The paper's claims on these numbers (gap in points, method minus baseline):"]
        lines += [
            f"- {c['claim']}: {'holds' if c['holds'] else 'does NOT hold'} (mean gap "
            f"{c['mean_gap']:+.1f}; " + ", ".join(f"{t} {g:+.1f}" for t, g in c["gaps"].items())
            + ")"
            for c in checked
        ]  # fmt: skip
    if missing:
        lines += ["", "Still needed (recorded rollouts, the layout of `rise rollout`):"]
        lines += [f"- {t} {m}: " + ", ".join(files) for (t, m), files in missing.items()]
    write_text(out_md, "\n".join(lines) + "\n")
    summary = {
        task: {m: {k: v for k, v in stats[(task, m)].items() if k != "per_seed"} for m in methods}
        for task in tasks
    }
    for (task, m), files in missing.items():
        summary[task][m]["missing"] = files
    write_json(out_json, summary)
    return df


def table2(
    rounds: dict[int, list[str]], task: str, variant: str, out_csv: str, out_md: str, out_json: str
) -> pd.DataFrame:
    """Table II: success of each relabeling round's policy on its recorded rollouts, mean ±
    std over seeds. `rounds`: round -> metrics files (one per seed)."""
    rows = []
    for r, files in sorted(rounds.items()):
        s = cell_stats(files)
        rows.append({"task": task, "round": r, "variant": variant,
                     "mean": round(s["mean"], 4), "std": round(s["std"], 4),
                     "seeds": s["seeds"], "rollouts": s["rollouts"],
                     "per_seed": " ".join(f"{x:.4f}" for x in s["per_seed"])})  # fmt: skip
    df = pd.DataFrame(rows)
    write_text(out_csv, df.to_csv(index=False))
    cols = [f"round {row['round']}" for row in rows]
    cells = [f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f}" for row in rows]
    lines = [
        "| task | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
        f"| {task} | " + " | ".join(cells) + " |",
        "",
        f"Success rate (%) of each round's policy ({variant}) on its recorded "
        f"rollouts, mean ± std over {rows[0]['seeds']} seed(s), "
        f"{rows[0]['rollouts'] // max(rows[0]['seeds'], 1)} rollouts per seed and round; "
        "round r + 1 retrains on round r's data plus its rollouts (successes as expert data, "
        "failures as non-expert data).",
    ]
    write_text(out_md, "\n".join(lines) + "\n")
    metrics = {f"round{row['round']}": {k: row[k] for k in ("mean", "std", "seeds", "rollouts")}
               for row in rows}  # fmt: skip
    write_json(out_json, {task: metrics})
    return df
