"""The `real` tier (lampshade, cloth folding, one-leg): datasets from `rise import`, cells
scored from a robot's recorded rollouts; `results/table1_real.csv` from what is on disk,
naming the recorded files it still needs."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT, copy_repo, run

from rise import paths as P
from rise import tasks as T
from rise.config import ConfigError, task_epsilon, task_lambda, validate
from rise.data import DatasetError, write_dataset
from rise.import_robomimic import import_dataset
from rise.methods import variant
from rise.rollout import ATTR
from rise.serve import observation_shapes


def robot_episodes(successes, action_dim=7, steps=6) -> list[dict]:
    """Episodes as a Franka's logger writes them (hand-made: a deterministic slow drift)."""
    episodes = []
    for i, ok in enumerate(successes):
        t = np.linspace(0, 1, steps + 1)[:, None] + 0.1 * i
        obs = {
            "eef_pos": np.hstack([t, t, t]).astype(np.float32),
            "eef_quat": np.tile([0.0, 0.0, 0.0, 1.0], (steps + 1, 1)).astype(np.float32),
            "gripper_qpos": np.hstack([t, -t]).astype(np.float32) * 0.04,
        }
        episodes.append({"obs": obs, "actions": np.full((steps, action_dim), 0.01 * i),
                         "states": np.zeros((steps + 1, 1)), "rewards": np.zeros(steps),
                         "attrs": {"success": ok}})  # fmt: skip
    return episodes


def record(path, successes, seed):
    info = {"task": "lampshade", "region": "real", "seed": seed, "round": 0,
            "policy_sha256": "cd" * 32, "server": "ws://127.0.0.1:8765"}  # fmt: skip
    write_dataset(path, robot_episodes(successes), {}, "rollout", 0.0, {ATTR: json.dumps(info)})


@pytest.fixture
def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_real_tasks_come_from_import_and_stay_out_of_table1(tmp_path, params):
    assert set(T.REAL) == {"lampshade", "cloth_folding", "one_leg"}
    assert T.get("one_leg").data_type == "suboptimal" and T.get("one_leg").env is None
    assert observation_shapes("lampshade", cameras=False) == {
        "eef_pos": [3], "eef_quat": [4], "gripper_qpos": [2],
        "agentview_image": [84, 84, 3], "eye_in_hand_image": [84, 84, 3],
    }  # fmt: skip
    demos = tmp_path / "demos.hdf5"
    write_dataset(demos, robot_episodes([True, True]), {}, "expert", 0.0)
    out = import_dataset(src=str(demos), task="lampshade", obs="lowdim", source="expert",
                         out=str(tmp_path / "expert.hdf5"))  # fmt: skip
    assert out["demos"] == 2 and out["obs_keys"] == ["eef_pos", "eef_quat", "gripper_qpos"]
    write_dataset(demos, robot_episodes([True], action_dim=5), {}, "expert", 0.0)
    with pytest.raises(DatasetError, match="5-d actions, but task lampshade .* takes 7-d"):
        import_dataset(src=str(demos), task="lampshade", obs="lowdim", source="expert",
                       out=str(tmp_path / "bad.hdf5"))  # fmt: skip
    with pytest.raises(ConfigError, match="key 'tasks.0': lampshade is a real-robot task"):
        validate({**params, "tasks": ["lampshade"]})


def test_snakemake_table1_real_from_a_hand_made_recorded_file(tmp_path, params):
    root = copy_repo(tmp_path, scale="smoke", seeds=[0, 1], methods=["BC", "RISE"])
    recorded = P.rollouts("lampshade", "lowdim", 0, "bc", 0)
    record(root / recorded, [True, False, True], seed=0)
    stamp = (root / recorded).stat().st_mtime_ns
    out = run(["snakemake", "results/table1_real.csv"], root)
    assert "recorded rollout file(s) still needed" in out
    df = pd.read_csv(root / P.TABLE1_REAL).set_index("task")
    assert list(df.index) == ["lampshade", "cloth_folding", "one_leg"]  # coverage first
    assert (
        df.loc["lampshade", "BC"] == pytest.approx(2 / 3, abs=1e-4)
        and df.loc["lampshade", "seeds"] == 1
    )
    assert df[["RISE"]].isna().all().all() and np.isnan(df.loc["one_leg", "BC"])
    md = (root / P.TABLE1_REAL_MD).read_text()
    assert "| coverage | lampshade | 66.7 ± 0.0 | missing |" in md
    needed = P.rollouts("lampshade", "lowdim", 0, "bc", 1)
    assert f"- lampshade BC: {needed}" in md
    cells = json.loads((root / P.TABLE1_REAL_JSON).read_text())
    assert cells["lampshade"]["BC"]["missing"] == [needed]
    rise = variant("RISE", task_lambda(params, "one_leg"), task_epsilon(params, "one_leg"))
    assert cells["one_leg"]["RISE"]["missing"] == [
        P.rollouts("one_leg", "lowdim", 0, rise, s) for s in (0, 1)
    ]
    for task, eps in (("lampshade", 0.22), ("cloth_folding", 0.05), ("one_leg", 0.1)):
        assert f"_eps{eps}/" in cells[task]["RISE"]["missing"][0]  # Table IV's thresholds
    assert (root / recorded).stat().st_mtime_ns == stamp  # a recording is never rebuilt
    record(root / needed, [False, False], seed=1)  # the robot records the next one
    assert "table1_real" in run(["snakemake", "results/table1_real.csv", "-n"], root)
