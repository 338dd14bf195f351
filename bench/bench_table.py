"""Where a table's time went: the Snakemake `benchmark` files of its jobs, by job family.

    snakemake results/table1.csv --cores 2 && python bench/bench_table.py

Every collect, embed, augment, critic, policy and evaluation job writes
`benchmarks/<rule>/<job>.tsv` (Snakemake's wall seconds `s` and CPU seconds of the job);
this prints, per family (a policy's or evaluation's method from its variant tag), the
number of jobs, their seconds in all and on average, and the share of the total.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def family(rule: str, name: str) -> str:
    """'policy/mini_square_peg_lowdim_rise_lam0.001_eps0.05_seed0' -> 'policy rise'."""
    if rule not in ("policy", "evaluate"):
        return rule
    stem = name.split("_seed")[0]
    method = stem.split("_lowdim_")[-1].split("_image_")[-1].split("_")[0]
    return f"{rule} {method}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default="benchmarks", help="Snakemake's benchmark folder")
    parser.add_argument("--cores", type=int, default=2, help="cores the run had")
    args = parser.parse_args()

    seconds: dict[str, list[float]] = defaultdict(list)
    for tsv in sorted(Path(args.benchmarks).glob("*/*.tsv")):
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows:
            seconds[family(tsv.parent.name, tsv.stem)].append(float(rows[-1]["s"]))
    if not seconds:
        raise SystemExit(f"no benchmark files under {args.benchmarks}/: run snakemake first")
    total = sum(sum(v) for v in seconds.values())
    print(f"{'family':22s} {'jobs':>5s} {'seconds':>9s} {'mean':>7s} {'share':>6s}")
    for name, values in sorted(seconds.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"{name:22s} {len(values):5d} {sum(values):9.0f} {sum(values) / len(values):7.1f} "
            f"{sum(values) / total:6.1%}"
        )
    print(
        f"{'all':22s} {sum(map(len, seconds.values())):5d} {total:9.0f}   "
        f"(/ {args.cores} cores = {total / args.cores / 60:.1f} min if always busy)"
    )


if __name__ == "__main__":
    main()
