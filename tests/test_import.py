"""`rise import`: a file written by robomimic's conventions imports unchanged; bad files are
refused with one error naming file, demo and key, and leave no output behind."""

import json

import h5py
import numpy as np
import pytest

from rise.cli import main
from rise.data import read_dataset
from rise.pool import obs_keys

TASK = "mini_square_peg"
LOWDIM = {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 7}
IMAGES = ("agentview_image", "eye_in_hand_image")
MASKS = {"worse": [0, 1], "okay": [2], "better": [3, 4], "train": [0, 1, 2, 3], "valid": [4]}


# robomimic's own Square files (robosuite observation names), for the robosuite tier
RS_LOWDIM = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 14}
RS_IMAGES = ("agentview_image", "robot0_eye_in_hand_image")


def write_robomimic(
    path,
    lengths=(5, 6, 4, 7, 3),
    images=True,
    edit=None,
    action_dim=5,
    keys=(LOWDIM, IMAGES),
    env_args=None,
):
    """A robomimic v0.3 file written from its documented layout, not with rise's writer:
    float64 low-dim obs, uint8 HWC images (chunked, gzip), per-demo num_samples, data.total,
    env_args JSON, bytes demo names under mask/<filter_key>."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        env_args = env_args or {"env_name": "NutAssemblySquare", "type": 1}
        data.attrs["env_args"] = json.dumps(env_args)
        data.attrs["total"] = sum(lengths)
        for i, n in enumerate(lengths):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            demo.attrs["model_file"] = "<mujoco/>"
            for group in ("obs", "next_obs"):
                for key, dim in keys[0].items():
                    demo.create_dataset(f"{group}/{key}", data=rng.normal(size=(n, dim)))
                for key in keys[1] if images else ():
                    img = rng.integers(0, 255, (n, 84, 84, 3), dtype=np.uint8)
                    demo.create_dataset(f"{group}/{key}", data=img, chunks=True, compression="gzip")
            demo.create_dataset("actions", data=rng.uniform(-1, 1, (n, action_dim)))
            demo.create_dataset("rewards", data=np.r_[np.zeros(n - 1), 1.0])
            demo.create_dataset("dones", data=np.r_[np.zeros(n - 1), 1].astype(np.int64))
            demo.create_dataset("states", data=rng.normal(size=(n, 45)))
        for key, ids in MASKS.items():
            f.create_dataset(f"mask/{key}", data=np.array([f"demo_{i}" for i in ids], "S"))
        if edit:
            edit(f)


def run_import(src, out, *extra):
    return main(["import", "--input", str(src), "--task", TASK, "--source", "play",
                 "--out", str(out), "--scale", "smoke", *extra])  # fmt: skip


def test_robomimic_file_imports_unchanged(tmp_path):
    src, out = tmp_path / "square_worse.hdf5", tmp_path / "data" / "play.hdf5"
    write_robomimic(src)
    assert run_import(src, out, "--obs", "image", "--filter-key", "better") == 0
    with h5py.File(src) as f, h5py.File(out) as g:
        assert sorted(g["data"].keys()) == ["demo_3", "demo_4"]
        for name in ("demo_3", "demo_4"):
            a, b = f["data"][name], g["data"][name]
            for key in ("actions", "rewards", "dones", "states", "obs/object", "obs/eef_pos",
                        "next_obs/agentview_image", "obs/eye_in_hand_image"):  # fmt: skip
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key][()], b[key][()])
            assert b["obs/agentview_image"].compression == "gzip"
            assert b.attrs["num_samples"] == a.attrs["num_samples"]
        assert g["data"].attrs["env_args"] == f["data"].attrs["env_args"]
        assert g["data"].attrs["total"] == 10 and g["data"].attrs["rise_source"] == "play"
        assert [n.decode() for n in g["mask/better"][()]] == ["demo_3", "demo_4"]
        assert len(g["mask/worse"]) == 0 and [n.decode() for n in g["mask/valid"]] == ["demo_4"]
    lowdim, images = obs_keys(TASK, "image")
    ds = read_dataset(out, lowdim, images)  # what every stage reads
    assert ds.source == "play" and list(ds.lengths) == [7, 3]


@pytest.mark.parametrize(
    "task, source, key, lengths",
    [("rs_square_peg", "expert", "better", [7, 3]),
     ("rs_square_peg_suboptimal", "suboptimal", "worse", [5, 6])],
)  # fmt: skip
def test_robomimic_square_file_imports_into_the_robosuite_tier(
    tmp_path, task, source, key, lengths
):
    """robomimic's names and sizes (14-d object, 7-d OSC actions) are the robosuite tier's
    own: a Square file's `better` demos import unchanged as square-peg's expert data, its
    `worse` ones as the suboptimal row's non-expert data (the paper's Square-Worse)."""
    src, out = tmp_path / "square_mh.hdf5", tmp_path / f"{source}.hdf5"
    write_robomimic(src, action_dim=7, keys=(RS_LOWDIM, RS_IMAGES))
    code = main(["import", "--input", str(src), "--task", task, "--source", source,
                 "--obs", "image", "--filter-key", key, "--out", str(out),
                 "--scale", "smoke"])  # fmt: skip
    assert code == 0
    ds = read_dataset(out, *obs_keys(task, "image"))
    assert ds.source == source and list(ds.lengths) == lengths and ds.actions.shape[1] == 7
    assert set(ds.obs) == {"robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", *RS_IMAGES}
    assert read_dataset(out, *obs_keys(task, "lowdim")).obs["object"].shape[1] == 14
    # the mini tier's names are not the robosuite tier's: the mini task refuses this file
    assert run_import(src, tmp_path / "mini.hdf5", "--obs", "lowdim") == 2
    assert not (tmp_path / "mini.hdf5").exists()


def test_a_policy_trained_on_a_robomimic_file_is_evaluated_in_the_files_env(tmp_path):
    """Import, train, evaluate: the policy carries the file's env_args (robosuite 1.4's arm
    controller, as robomimic's Square files store it) and evaluation rebuilds that env."""
    from test_env_rs_square_peg import ROBOMIMIC_ENV_ARGS

    from rise.train import load_checkpoint

    src, data = tmp_path / "square_ph.hdf5", tmp_path / "expert.hdf5"
    write_robomimic(src, (12,) * 5, images=False, action_dim=7, keys=(RS_LOWDIM, ()),
                    env_args=ROBOMIMIC_ENV_ARGS)  # fmt: skip
    smoke = ["--task", "rs_square_peg", "--obs", "lowdim", "--scale", "smoke"]
    assert main(["import", "--input", str(src), "--source", "expert", "--out", str(data),
                 "--filter-key", "train", *smoke]) == 0  # fmt: skip
    policy = tmp_path / "policy.pt"
    curve = tmp_path / "c.csv"
    assert main(["train-policy", *smoke, "--method", "BC", "--data", f"expert={data}",
                 "--seed", "0", "--out", str(policy), "--curve", str(curve)]) == 0  # fmt: skip
    _, meta, _ = load_checkpoint(str(policy), "policy")
    assert meta["env_args"] == ROBOMIMIC_ENV_ARGS
    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", "--policy", str(policy), "--seed", "0", "--out", str(metrics),
                 "--episodes-out", str(tmp_path / "e.json"), "--videos-out",
                 str(tmp_path / "v"), "--scale", "smoke"]) == 0  # fmt: skip
    assert json.loads(metrics.read_text())["episodes"] == 2


def test_whole_file_without_masks_gets_train_valid(tmp_path):
    src, out = tmp_path / "robot.hdf5", tmp_path / "play.hdf5"
    write_robomimic(src, images=False, edit=lambda f: f.__delitem__("mask"))
    assert run_import(src, out, "--obs", "lowdim") == 0
    with h5py.File(out) as g:
        assert len(g["data"].keys()) == 5
        assert len(g["mask/train"]) + len(g["mask/valid"]) == 5


def _set(key, value):
    def edit(f):
        del f[key]
        f[key] = value

    return edit


BAD = {
    "missing rewards": (lambda f: f.__delitem__("data/demo_1/rewards"), "demo_1 has no 'rewards'"),
    "missing obs key": (
        lambda f: f.__delitem__("data/demo_2/obs/object"),
        "demo_2/obs/object is missing",
    ),
    "length mismatch": (
        _set("data/demo_0/obs/eef_pos", np.zeros((4, 3))),
        "demo_0/obs/eef_pos has 4 rows, actions have 5",
    ),
    "NaN": (_set("data/demo_3/actions", np.full((7, 5), np.nan)), "demo_3/actions contains NaN"),
    "image dtype": (
        _set("data/demo_1/obs/agentview_image", np.zeros((6, 84, 84, 3), np.float32)),
        "demo_1/obs/agentview_image must be uint8 images",
    ),
    "image shape": (
        _set("data/demo_1/obs/agentview_image", np.zeros((6, 3, 84, 84), np.uint8)),
        "demo_1/obs/agentview_image must be uint8 images",
    ),
    "empty demo": (_set("data/demo_4/actions", np.zeros((0, 5))), "demo_4 is empty"),
    "action size between demos": (
        _set("data/demo_2/actions", np.zeros((4, 7))),
        "demo_2/actions are 7-d, demo_0's are 5-d",
    ),
    "states length": (_set("data/demo_2/states", np.zeros((3, 45))), "demo_2/states has 3 rows"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_name_file_demo_and_key(tmp_path, capsys, case):
    edit, message = BAD[case]
    src, out = tmp_path / "bad.hdf5", tmp_path / "out" / "play.hdf5"
    write_robomimic(src, edit=edit)
    assert run_import(src, out, "--obs", "image") == 2
    err = capsys.readouterr().err
    assert str(src) in err and message in err
    assert not list(tmp_path.glob("out/*")) and not list(tmp_path.glob("out/.*"))


def test_truncated_file_and_unknown_filter_key(tmp_path, capsys):
    src, out = tmp_path / "cut.hdf5", tmp_path / "play.hdf5"
    write_robomimic(src, images=False)
    assert run_import(src, out, "--obs", "lowdim", "--filter-key", "best") == 2
    assert "no filter key mask/best" in capsys.readouterr().err
    src.write_bytes(src.read_bytes()[:2000])
    assert run_import(src, out, "--obs", "lowdim") == 2
    assert "truncated or not HDF5" in capsys.readouterr().err and not out.exists()


def test_action_size_must_match_the_tasks_env(tmp_path, capsys):
    src, out = tmp_path / "panda.hdf5", tmp_path / "play.hdf5"
    write_robomimic(src, images=False, action_dim=7)
    assert run_import(src, out, "--obs", "lowdim") == 2
    assert "7-d actions" in capsys.readouterr().err and not out.exists()


def test_source_must_be_one_of_the_tasks_datasets(tmp_path, capsys):
    src = tmp_path / "x.hdf5"
    write_robomimic(src, images=False)
    assert run_import(src, tmp_path / "o.hdf5", "--obs", "lowdim", "--source", "tipping") == 2
    assert "learns from expert, play" in capsys.readouterr().err
