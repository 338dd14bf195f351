"""The whole DAG at the smoke scale, as a user runs it: Snakemake (every Table I row in
low-dim mode, one task with images), then DVC (repro, and an experiment that changes lambda)."""

import io
import json
import re
import time

import h5py
import pandas as pd
import pytest
import yaml
from workflow_helpers import copy_repo, dvc_repo, run

from rise import paths as P
from rise import tasks as T
from rise.config import task_epsilon, task_lambda
from rise.methods import variant

ALL_METHODS = ["BC", "BCU", "ILID", "SQIL", "CQL", "IDQL", "RISE"]
METHODS = ["BC", "IDQL", "RISE"]  # for the every-row run (CI time); the others run every method


def check_table(root, tasks, seeds, methods=METHODS, table="table1"):
    df = pd.read_csv(root / f"results/{table}.csv")
    assert list(df["task"]) == tasks
    for m in methods:
        assert df[m].between(0.0, 1.0).all() and (df[f"{m}_std"] >= 0.0).all()
    assert (df["seeds"] == seeds).all()
    assert (df["rollouts_per_cell"] == 2 * seeds).all()  # smoke: 2 rollouts per seed
    cells = json.loads((root / f"results/{table}.json").read_text())
    assert set(cells) == set(tasks) and all(set(c) == set(methods) for c in cells.values())
    assert "±" in (root / f"results/{table}.md").read_text()
    return df, cells


def job_counts(dry_run: str) -> dict[str, int]:
    """Rule -> count, from the 'Job stats' table that `snakemake -n` prints."""
    block = dry_run.split("Job stats:")[1]
    return {
        rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", block, re.M) if rule != "total"
    }


def test_snakemake_every_table1_row_end_to_end(tmp_path):
    """The default target: Table I with every row (one seed) and every coverage picture."""
    root = copy_repo(tmp_path, scale="smoke", obs="lowdim", seeds=[0], methods=METHODS)
    cfg = yaml.safe_load((root / "params.yaml").read_text())
    run(["snakemake"], root)
    df, cells = check_table(root, cfg["tasks"], seeds=1)
    assert list(df["data_type"]) == [T.get(t).data_type for t in cfg["tasks"]]
    assert df["data_type"].is_monotonic_increasing  # coverage rows, then suboptimal
    peg = "mini_square_peg"
    assert cells[peg]["RISE"]["variant"] == (
        variant("RISE", task_lambda(cfg, peg), task_epsilon(cfg, peg))
    )
    assert cells["mini_square_peg_suboptimal"]["RISE"]["variant"] == "rise_lam0.001_eps0.0"
    # square-hook learns from square-peg's play data: collected once, under its owner
    assert (root / "data/mini_square_peg/lowdim/play.hdf5").is_file()
    assert not (root / "data/mini_square_hook/lowdim/play.hdf5").exists()
    stats = json.loads(
        (root / "augment/mini_piece_assembly_tip/lowdim/eps0.08/stats.json").read_text()
    )
    assert set(stats["pairs_by_state_source"]) == {"play", "partial_tipping"}
    for task in cfg["tasks"]:
        assert (root / f"results/coverage/{task}.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((root / "eval").rglob("episode_0.gif"))) == 3 * len(cfg["tasks"])
    assert "Nothing to be done" in run(["snakemake"], root)
    # a new lambda reruns exactly the jobs that depend on it: RISE's policy and evaluation
    # of every task without its own lambda, and the table
    counts = job_counts(
        run(["snakemake", "results/table1.csv", "-n", "--config", "lambda=0.01"], root)
    )
    followers = len([t for t in cfg["tasks"] if t not in cfg["lambda_per_task"]])
    assert counts == {"train_policy": followers, "evaluate": followers, "table1": 1}


def test_snakemake_image_end_to_end(tmp_path):
    """Each kind of method with camera observations: BC, ILID (classifier on images), SQIL
    (actor-critic on images), RISE. BCU, CQL and IDQL only recombine these code paths."""
    methods = ["BC", "ILID", "SQIL", "RISE"]
    root = copy_repo(
        tmp_path, scale="smoke", obs="image", seeds=[0], tasks=["mini_square_peg"], methods=methods
    )
    run(["snakemake", "results/table1.csv"], root)
    check_table(root, ["mini_square_peg"], seeds=1, methods=methods)
    assert "ILID: " in (root / "logs/policy/mini_square_peg_image_ilid_seed0.log").read_text()
    eps = task_epsilon(yaml.safe_load((root / "params.yaml").read_text()), "mini_square_peg")
    stats = json.loads((root / P.pair_stats("mini_square_peg", "image", eps)).read_text())
    assert stats["features"] == {
        "cameras": ["agentview_image", "eye_in_hand_image"],
        "features": "dinov2-vits14",
        "pca_dim": 16,
        "semantic": False,
        "weights": "random",
    }
    log = (root / "logs/embed/mini_square_peg_image.log").read_text()
    assert "RANDOM weights" in log and "NOT semantic" in log


def test_snakemake_robosuite_tier_end_to_end(tmp_path):
    """The robosuite tier's table at the smoke scale with cameras (EGL, 84 x 84): robosuite
    data collected with images, DINOv2 features, RISE trained and evaluated in robosuite. Two
    rows for CI's time: a coverage row in the hook's scene and the suboptimal row in
    robosuite's own Square (rs_square_peg's env, whose sources tests/test_env_rs_square_peg.py
    runs)."""
    rows = ["rs_square_hook", "rs_square_peg_suboptimal"]
    root = copy_repo(tmp_path, scale="smoke", obs="image", seeds=[0], methods=["RISE"],
                     robosuite_tasks=rows)  # fmt: skip
    run(["snakemake", "results/table1_robosuite.csv"], root)
    check_table(root, rows, seeds=1, methods=["RISE"], table="table1_robosuite")
    data = root / "data/rs_square_peg_suboptimal/image/expert.hdf5"
    with h5py.File(data) as f:
        demo = f["data/demo_0"]
        assert demo["obs/agentview_image"].shape[1:] == (84, 84, 3)
        assert "robot0_eef_pos" in demo["obs"] and "robot0_eye_in_hand_image" in demo["obs"]
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == "NutAssemblySquare"
    with h5py.File(root / "data/rs_square_hook/image/play.hdf5") as f:
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == "NutAssemblySquareHook"
    assert not (root / "results/table1.csv").exists()  # the mini tier's table is not built


def test_bad_params_stop_snakemake_before_any_job(tmp_path):
    root = copy_repo(tmp_path, scale="smoke", epsilon=3.0)
    with pytest.raises(AssertionError, match="key 'epsilon'"):
        run(["snakemake", "results/table1.csv"], root)
    assert not (root / "data").exists() or not any((root / "data").rglob("*.hdf5"))


def test_snakemake_config_lists_read_as_params_yaml(tmp_path):
    """`--config seeds=[1,2]` means integers, as in params.yaml (Snakemake's own parser
    would hand the schema the strings '1' and '2'), and a per-task mapping keeps its number."""
    root = copy_repo(tmp_path, scale="smoke", tasks=["mini_mug_cleanup"], methods=["RISE"])
    out = run(
        [
            "snakemake", "results/table1.csv", "-n", "--config",
            "seeds=[1, 2]", "lambda_per_task={mini_mug_cleanup: 0.01}",
        ],
        root,
    )  # fmt: skip
    policies = set(re.findall(r"models/mini_mug_cleanup/lowdim/([^/]+/seed\d)/policy.pt", out))
    assert policies == {"rise_lam0.01_eps0.05/seed1", "rise_lam0.01_eps0.05/seed2"}
    with pytest.raises(AssertionError, match="key 'seeds.0'"):
        run(["snakemake", "results/table1.csv", "-n", "--config", "seeds=[one]"], root)


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


# a lambda experiment reruns RISE's cell and its one relabeling round (Table II)
LAMBDA_STAGES = {
    "policy_mini_square_hook_RISE@0",
    "evaluate_mini_square_hook_RISE@0",
    "table1",
    *(f"{s}_mini_square_hook_RISE_round{r}@0" for s in ("rollout", "evaluate") for r in (0, 1)),
    *(f"relabel_mini_square_hook_RISE_round1_{s}@0" for s in ("expert", "play")),
    *(f"{s}_mini_square_hook_RISE_round1@0" for s in ("embed", "augment", "critic", "policy")),
    "table2",
}


def test_dvc_repro_and_lambda_experiment(tmp_path):
    relabel = {"task": "mini_square_hook", "method": "RISE", "rounds": 1, "episodes": 2,
               "region": "eval"}  # fmt: skip
    root = copy_repo(tmp_path, scale="smoke", seeds=[0], tasks=["mini_square_hook"],
                     relabel=relabel)  # fmt: skip
    assert yaml.safe_load((root / "params.yaml").read_text())["methods"] == ALL_METHODS
    out = run(["dvc", "repro"], dvc_repo(root))
    # the hook task's play data is its owner's (square-peg) dataset
    assert {"table1", "collect_mini_square_hook_expert", "collect_mini_square_peg_play"} <= (
        ran_stages(out)
    )
    before = json.loads((root / "results/table1.json").read_text())
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline"], root)
    assert set(json.loads((root / "results/table2.json").read_text())["mini_square_hook"]) == {
        "round0", "round1"
    }  # fmt: skip
    out = run(["dvc", "exp", "run", "-S", "lambda=0.01"], root)
    assert ran_stages(out) == LAMBDA_STAGES
    after = json.loads((root / "results/table1.json").read_text())
    eps = task_epsilon(yaml.safe_load((root / "params.yaml").read_text()), "mini_square_hook")
    assert after["mini_square_hook"]["RISE"]["variant"] == variant("RISE", 0.01, eps)
    assert before != after
    shown = run(["dvc", "exp", "show", "--json"], root)
    text = json.dumps(json.loads(shown[shown.index("[") :]))
    assert '"lambda": 0.01' in text and "results/table1.json" in text

    # the README's sweep: queued experiments, run by background workers, compared per cell
    run(["dvc", "exp", "run", "--queue", "-n", "lam0", "-S", "lambda=0.0"], root)
    run(["dvc", "queue", "start", "-j", "1"], root)
    deadline = time.monotonic() + 600
    while re.search(r"\b(Queued|Running)\b", run(["dvc", "queue", "status"], root)):
        assert time.monotonic() < deadline, "the queued experiment did not finish"
        time.sleep(2)
    status = run(["dvc", "queue", "status"], root).splitlines()
    assert any("lam0" in line and "Success" in line for line in status), status
    assert ran_stages(run(["dvc", "queue", "logs", "lam0"], root)) == LAMBDA_STAGES
    keep = "Experiment|lambda$|epsilon_per_task|.*\\.mean$"
    shown = run(["dvc", "exp", "show", "--csv", "--drop", ".*", "--keep", keep], root)
    rows = pd.read_csv(io.StringIO(shown))
    assert {"lambda", "mini_square_hook.RISE.mean", "mini_square_hook.BC.mean"} <= set(rows)
    assert set(rows.loc[rows["Experiment"] == "lam0", "lambda"]) == {0.0}


def test_figures_sweep_knobs_and_reuse_upstream_artifacts(tmp_path):
    """Fig 5b-8 targets: every point is a cell at other knob values; a sweep adds only the
    jobs that depend on the swept value."""
    figures = {
        "ablation_task": "mini_piece_assembly",
        "sensitivity_task": "mini_piece_assembly",
        "epsilon_task": "mini_mug_cleanup",
        "lambdas": [0.0, 0.1],
        "epsilons": [0.0, 0.08],
        "epsilons_mug": [0.05],
        "amounts": [0.5, 1.0],
    }
    # lambda 0.1, one of the swept values: RISE's own cell is a point of the sweep
    root = copy_repo(tmp_path, scale="smoke", obs="lowdim", seeds=[0], figures=figures,
                     **{"lambda": 0.1})  # fmt: skip
    names = ["fig5b_ablation", "fig6_lambda", "fig6_epsilon", "fig7_lambda_epsilon",
             "fig8_epsilon"]  # fmt: skip
    targets = [f"results/{n}.png" for n in names]
    counts = job_counts(run(["snakemake", "-n", *targets], root))
    # piece-assembly: bc, idql, idqlsn_lam0.1, rise at 2 x 2 (lambda, epsilon) with all the
    # non-expert data, and 3 more with half of it (Fig 6); mug: one
    assert counts["train_policy"] == counts["evaluate"] == 11
    # critics depend on epsilon and the amount only: piece-assembly none, eps0.0, eps0.08,
    # eps0.0_ne0.5, eps0.08_ne0.5; mug eps0.05. Augmentation: once per epsilon.
    assert counts["train_critic"] == 6 and counts["augment"] == 3 and counts["figure"] == 5
    run(["snakemake", *targets], root)
    grid = pd.read_csv(root / "results/fig7_lambda_epsilon.csv")
    assert sorted(zip(grid["series"], grid["x"], strict=True)) == [
        (0.0, 0.0), (0.0, 0.08), (0.1, 0.0), (0.1, 0.08)
    ]  # fmt: skip
    sweep = pd.read_csv(root / "results/fig6_lambda.csv")
    assert list(sweep["series"]) == ["50%", "50%", "100%", "100%"]
    assert (root / "models/mini_piece_assembly/lowdim/critic-eps0.08_ne0.5/seed0").is_dir()
    ablation = pd.read_csv(root / "results/fig5b_ablation.csv")
    assert list(ablation["x"]) == [
        "BC", "offline RL (IDQL)", "+ spectral norm", "+ spectral norm + augmentation"
    ]  # fmt: skip
    assert ablation["mean"].between(0, 1).all() and (ablation["seeds"] == 1).all()
    for target in targets:
        assert (root / target).read_bytes()[:4] == b"\x89PNG"
