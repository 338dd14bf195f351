"""params.yaml validation names the offending key; methods and dvc.yaml stay consistent."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from workflow_helpers import copy_repo, run

from rise.cli import main
from rise.config import ConfigError, load, task_epsilon, task_lambda, validate
from rise.figures import points
from rise.methods import parse_variant, variant
from rise.nets import resolve_device

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c.__setitem__("tasks", ["mini_square_peg", "no_such_task"]), "tasks.1"),
        (lambda c: c.__setitem__("methods", ["BC", "DQN"]), "methods.1"),
        (lambda c: c.__setitem__("lambda", -0.1), "lambda"),
        (lambda c: c.__setitem__("epsilon", 2.5), "epsilon"),
        (lambda c: c.pop("seeds"), "seeds"),
        (lambda c: c["critic"].pop("expectile"), "critic.expectile"),
        (lambda c: c["policy"].__setitem__("horizon", "16"), "policy.horizon"),
        (lambda c: c["scales"]["cpu"]["policy"].__setitem__("steps", 0), "scales.cpu.policy.steps"),
        (lambda c: c["scales"]["smoke"]["critic"].__setitem__("stepz", 3), "scales.smoke.critic"),
        (
            lambda c: c["epsilon_per_task"].__setitem__("other_task", 0.1),
            "epsilon_per_task.other_task",
        ),
        (
            lambda c: c["lambda_per_task"].__setitem__("mini_square_peg", -1),
            "lambda_per_task.mini_square_peg",
        ),
        (lambda c: c["collect"].__setitem__("episodes_scale", 0), "collect.episodes_scale"),
        (
            lambda c: c["scales"]["cpu"]["figures"].__setitem__("ablation_task", "mini_sq"),
            "scales.cpu.figures.ablation_task",
        ),
        (
            lambda c: c["scales"]["cpu"]["figures"].__setitem__("ablation", "x"),
            "scales.cpu.figures",
        ),
        (lambda c: c.__setitem__("device", "gpu"), "device"),
    ],
)
def test_errors_name_the_key(cfg, edit, key):
    bad = copy.deepcopy(cfg)
    edit(bad)
    with pytest.raises(ConfigError, match=re.escape(f"params.yaml: key '{key}'")):
        validate(bad, "params.yaml")


def test_shipped_params_are_valid_and_overrides_apply(cfg):
    validate(cfg)
    cfg["epsilon_per_task"] = {"mini_square_peg": 0.08}
    assert task_epsilon(cfg, "mini_square_peg") == 0.08
    cfg["lambda"], cfg["lambda_per_task"] = 0.1, {"mini_square_peg": 0.001}
    assert task_lambda(cfg, "mini_square_peg") == 0.001
    with pytest.raises(ConfigError, match="no such params file"):
        load(ROOT / "nope.yaml")


def test_a_scale_picks_its_own_ablation_task(cfg):
    """The cpu preset runs Fig 5b on its own row; the paper scale on the paper's."""
    tasks = {}
    for scale in ("cpu", "paper"):
        cfg["scale"] = scale
        tasks[scale] = {task for *_, task, _ in points(cfg, "fig5b_ablation", "lowdim")}
    assert tasks == {"cpu": {"mini_square_peg"}, "paper": {cfg["figures"]["ablation_task"]}}
    assert cfg["figures"]["ablation_task"] == "mini_piece_assembly"


def test_variant_tags_round_trip():
    assert variant("RISE", "0.1", "0.15") == "rise_lam0.1_eps0.15"
    assert variant("BC", "0.1", "0.15") == "bc"
    assert [variant(m, "0.1", "0.15") for m in ("BCU", "ILID", "SQIL", "CQL")] == [
        "bcu",
        "ilid",
        "sqil",
        "cql",
    ]
    assert parse_variant("cql")[0].family == "actor_critic"
    assert variant("RISE", "0.1", "0.08", "0.5") == "rise_lam0.1_eps0.08_ne0.5"
    assert variant("BC", "0.1", "0.08", "0.5") == "bc"  # BC never sees non-expert data
    assert parse_variant("idql_ne0.25")[1] == {"ne": "0.25"}
    with pytest.raises(ValueError, match="takes knobs"):
        parse_variant("bc_ne0.5")
    method, knobs = parse_variant("rise_lam1e-05_eps0.15")
    assert method.name == "RISE" and knobs == {"lam": "1e-05", "eps": "0.15"}
    for bad in ("rise_lam0.1", "bc_lam0.1", "dqn", "idql_epsx"):
        with pytest.raises(ValueError):
            parse_variant(bad)


def test_dvc_yaml_is_generated_from_params():
    out = subprocess.run(
        [sys.executable, "-m", "rise", "dvc-yaml", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def pairs_and_epsilons(commands: list[str]) -> list[tuple[str, str]]:
    """(the eps<E> folder of each --pairs file, the --epsilon given with it)."""
    found = []
    for cmd in commands:
        if "--pairs" in cmd:
            pairs = re.search(r"--pairs \S*/eps([^/\s]+)/pairs\.npz", cmd)
            given = re.search(r"--epsilon (\S+)", cmd)
            found.append((pairs.group(1), given.group(1) if given else None))
    return found


def test_every_pairs_file_is_passed_with_its_epsilon(tmp_path):
    """Training jobs get `--epsilon` with `--pairs`, so a pairs file of another epsilon is
    refused by name (tests/test_bad_input.py) under both drivers."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    dvc = pairs_and_epsilons([stage["cmd"] for stage in stages.values()])
    assert dvc and all(eps == given for eps, given in dvc), dvc
    root = copy_repo(tmp_path, scale="smoke")
    out = run(["snakemake", "-n", "-p", "results/table1.csv", "results/table2.csv"], root)
    shell = pairs_and_epsilons(out.splitlines())
    assert shell and all(eps == given for eps, given in shell), shell


@pytest.mark.parametrize("scale, shared", [("cpu", True), ("smoke", False)])
def test_idql_evaluates_bcus_policy_where_its_training_is_bcus(tmp_path, scale, shared):
    """The `cpu` preset (unweighted, no expert share) trains IDQL's policy once, as BCU's;
    under advantage weights (the other presets) IDQL trains its own."""
    root = copy_repo(tmp_path, scale=scale, tasks=["mini_square_hook"], seeds=[0])
    out = run(["snakemake", "-n", "-p", "results/table1.csv"], root)
    idql_policy = "models/mini_square_hook/lowdim/idql/seed0/policy.pt"
    evaluated = re.search(r"--policy (\S+) --critic \S+/critic-none/seed0/critic\.pt", out)
    assert (f"--out {idql_policy}" in out) != shared
    assert evaluated.group(1) == (idql_policy.replace("idql", "bcu") if shared else idql_policy)


@pytest.mark.parametrize(
    "device, message",
    [
        ("tpu0", "device 'tpu0'"),
        pytest.param(
            "cuda",
            "torch sees no GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
)
def test_a_bad_device_stops_a_job_before_it_reads_data(tmp_path, capsys, device, message):
    out = tmp_path / "critic.pt"
    code = main(["train-critic", "--task", "mini_square_peg", "--obs", "lowdim",
                 "--data", f"expert={tmp_path}/missing.hdf5", "--seed", "0", "--out", str(out),
                 "--curve", str(tmp_path / "c.csv"), "--scale", "smoke",
                 "--device", device])  # fmt: skip
    assert code == 2 and message in capsys.readouterr().err and not out.exists()


def test_auto_device_is_the_cpu_without_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
