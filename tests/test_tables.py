"""Table I aggregation: means and sample std over seeds, rollouts and variants recorded."""

import json

import pandas as pd
import pytest

from rise.tables import table1


def test_table1_numbers(tmp_path):
    cells = {}
    for method, variant, rates in (
        ("BC", "bc", [0.2, 0.4, 0.6]),
        ("RISE", "rise_lam0.1_eps0.15", [0.5, 0.5, 0.8]),
    ):
        files = []
        for seed, rate in enumerate(rates):
            path = tmp_path / f"eval/mini_square_peg/lowdim/{variant}/seed{seed}/metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"success_rate": rate, "episodes": 50}))
            files.append(str(path))
        cells[("mini_square_peg", method)] = files
    out = {k: str(tmp_path / f"table1.{k}") for k in ("csv", "md", "json")}
    table1(cells, out["csv"], out["md"], out["json"])
    df = pd.read_csv(out["csv"])
    assert df["BC"].iloc[0] == pytest.approx(0.4) and df["BC_std"].iloc[0] == pytest.approx(0.2)
    assert df["RISE"].iloc[0] == pytest.approx(0.6)
    assert df["RISE_std"].iloc[0] == pytest.approx(0.1732, abs=1e-4)
    assert df["rollouts_per_cell"].iloc[0] == 150 and df["seeds"].iloc[0] == 3
    md = open(out["md"]).read()
    assert (
        "| coverage | mini_square_peg | 40.0 ± 20.0 | 60.0 ± 17.3 |" in md
        and "50 rollouts per seed" in md
    )
    assert (
        json.loads(open(out["json"]).read())["mini_square_peg"]["RISE"]["variant"]
        == "rise_lam0.1_eps0.15"
    )
