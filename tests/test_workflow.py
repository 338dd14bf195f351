"""The whole DAG at the smoke scale, as a user runs it: Snakemake in both observation modes,
then DVC (repro, and an experiment that changes lambda)."""

import json
import re

import pandas as pd
import pytest
from workflow_helpers import copy_repo, run

METHODS = ["BC", "IDQL", "RISE"]


def check_table(root, seeds):
    df = pd.read_csv(root / "results/table1.csv")
    assert list(df["task"]) == ["mini_square_peg"]
    for m in METHODS:
        assert 0.0 <= df[m].iloc[0] <= 1.0 and df[f"{m}_std"].iloc[0] >= 0.0
    assert df["seeds"].iloc[0] == seeds
    assert df["rollouts_per_cell"].iloc[0] == 2 * seeds  # smoke: 2 rollouts per seed
    cells = json.loads((root / "results/table1.json").read_text())["mini_square_peg"]
    assert set(cells) == set(METHODS)
    assert "±" in (root / "results/table1.md").read_text()
    return cells


def job_counts(dry_run: str) -> dict[str, int]:
    """Rule -> count, from the 'Job stats' table that `snakemake -n` prints."""
    block = dry_run.split("Job stats:")[1]
    return {
        rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", block, re.M) if rule != "total"
    }


def test_snakemake_lowdim_end_to_end(tmp_path):
    root = copy_repo(tmp_path, scale="smoke", obs="lowdim")
    run(["snakemake", "results/table1.csv"], root)
    cells = check_table(root, seeds=3)
    assert cells["RISE"]["variant"] == "rise_lam0.1_eps0.15"
    stats = json.loads((root / "augment/mini_square_peg/lowdim/eps0.15/stats.json").read_text())
    assert stats["features"]["features"] == "lowdim"
    assert len(list((root / "eval").rglob("episode_0.gif"))) == 9  # 3 methods x 3 seeds
    assert "Nothing to be done" in run(["snakemake", "results/table1.csv"], root)
    # a new lambda reruns exactly the lambda-dependent jobs: RISE's policies, their
    # evaluations, and the table
    counts = job_counts(
        run(["snakemake", "results/table1.csv", "-n", "--config", "lambda=0.01"], root)
    )
    assert counts == {"train_policy": 3, "evaluate": 3, "table1": 1}


def test_snakemake_image_end_to_end(tmp_path):
    root = copy_repo(tmp_path, scale="smoke", obs="image", seeds=[0])
    run(["snakemake", "results/table1.csv"], root)
    check_table(root, seeds=1)
    stats = json.loads((root / "augment/mini_square_peg/image/eps0.15/stats.json").read_text())
    assert stats["features"] == {
        "cameras": ["agentview_image", "eye_in_hand_image"],
        "features": "dinov2-vits14",
        "pca_dim": 16,
        "semantic": False,
        "weights": "random",
    }
    log = (root / "logs/embed/mini_square_peg_image.log").read_text()
    assert "RANDOM weights" in log and "NOT semantic" in log


def test_bad_params_stop_snakemake_before_any_job(tmp_path):
    root = copy_repo(tmp_path, scale="smoke", epsilon=3.0)
    with pytest.raises(AssertionError, match="key 'epsilon'"):
        run(["snakemake", "results/table1.csv"], root)
    assert not (root / "data").exists() or not any((root / "data").rglob("*.hdf5"))


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_dvc_repro_and_lambda_experiment(tmp_path):
    root = copy_repo(tmp_path, scale="smoke", seeds=[0])
    run(["rise", "dvc-yaml"], root)
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    out = run(["dvc", "repro"], root)
    assert "table1" in ran_stages(out) and "collect_mini_square_peg_expert" in ran_stages(out)
    before = json.loads((root / "results/table1.json").read_text())
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline"], root)
    out = run(["dvc", "exp", "run", "-S", "lambda=0.01"], root)
    assert ran_stages(out) == {
        "policy_mini_square_peg_RISE@0",
        "evaluate_mini_square_peg_RISE@0",
        "table1",
    }
    after = json.loads((root / "results/table1.json").read_text())
    assert after["mini_square_peg"]["RISE"]["variant"] == "rise_lam0.01_eps0.15"
    assert before != after
    shown = run(["dvc", "exp", "show", "--json"], root)
    text = json.dumps(json.loads(shown[shown.index("[") :]))
    assert '"lambda": 0.01' in text and "results/table1.json" in text
