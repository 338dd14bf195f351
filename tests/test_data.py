"""robomimic-layout HDF5: round trip, windows, and clear errors on bad files."""

import h5py
import numpy as np
import pytest

from rise.data import DatasetError, read_dataset, window_index, write_dataset


def episode(rng, n, images=True):
    obs = {
        "eef_pos": rng.normal(size=(n + 1, 3)).astype(np.float32),
        "gripper_qpos": rng.normal(size=(n + 1, 2)).astype(np.float32),
    }
    if images:
        obs["agentview_image"] = rng.integers(0, 255, (n + 1, 8, 8, 3), dtype=np.uint8)
    return {
        "obs": obs,
        "actions": rng.uniform(-1, 1, (n, 5)).astype(np.float32),
        "states": rng.normal(size=(n + 1, 7)),
        "rewards": np.zeros(n),
    }


@pytest.fixture
def written(tmp_path):
    rng = np.random.default_rng(0)
    eps = [episode(rng, n) for n in (5, 7, 4)]
    path = tmp_path / "d.hdf5"
    write_dataset(path, eps, {"env_name": "x"}, "expert", valid_fraction=0.34)
    return path, eps


def test_round_trip(written):
    path, eps = written
    ds = read_dataset(path, ["eef_pos", "gripper_qpos"], ["agentview_image"])
    assert ds.source == "expert" and ds.env_args == {"env_name": "x"}
    assert len(ds) == 16 and ds.lengths.tolist() == [5, 7, 4] and ds.starts.tolist() == [0, 5, 12]
    np.testing.assert_array_equal(ds.obs["eef_pos"][5:12], eps[1]["obs"]["eef_pos"][:-1])
    np.testing.assert_array_equal(ds.next_obs["eef_pos"][5:12], eps[1]["obs"]["eef_pos"][1:])
    np.testing.assert_array_equal(
        ds.obs["agentview_image"][12:], eps[2]["obs"]["agentview_image"][:-1]
    )
    np.testing.assert_array_equal(ds.actions[:5], eps[0]["actions"])
    assert ds.dones.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    with h5py.File(path) as f:
        assert f["data"].attrs["total"] == 16
        assert f["data/demo_1"].attrs["num_samples"] == 7
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0", "demo_1"]
        assert [n.decode() for n in f["mask/valid"][()]] == ["demo_2"]


def test_same_episodes_write_identical_bytes(tmp_path):
    rng = np.random.default_rng(1)
    eps = [episode(rng, 6)]
    write_dataset(tmp_path / "a.hdf5", eps, {}, "play")
    write_dataset(tmp_path / "b.hdf5", eps, {}, "play")
    assert (tmp_path / "a.hdf5").read_bytes() == (tmp_path / "b.hdf5").read_bytes()


def test_windows_clamp_to_episode():
    episode_of = np.array([0, 0, 0, 1, 1])
    starts, lengths = np.array([0, 3]), np.array([3, 2])
    hist = window_index(episode_of, starts, lengths, np.arange(-1, 1))
    assert hist.tolist() == [[0, 0], [0, 1], [1, 2], [3, 3], [3, 4]]
    chunk = window_index(episode_of, starts, lengths, np.arange(3))
    assert chunk.tolist() == [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4]]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (
            lambda f: f["data/demo_1/obs/eef_pos"].__setitem__((0, 0), np.nan),
            "demo_1/obs/eef_pos contains NaN",
        ),
        (
            lambda f: f.__delitem__("data/demo_0/next_obs/gripper_qpos"),
            "demo_0/next_obs/gripper_qpos is missing",
        ),
        (lambda f: f.__delitem__("data/demo_2/actions"), "demo_2 has no 'actions'"),
        (
            lambda f: f["data/demo_0"].attrs.__setitem__("num_samples", 9),
            "demo_0 attrs num_samples=9",
        ),
    ],
)
def test_bad_files_name_demo_and_key(written, corrupt, message):
    path, _ = written
    with h5py.File(path, "a") as f:
        corrupt(f)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace("'", "'")):
        read_dataset(path, ["eef_pos", "gripper_qpos"], ["agentview_image"])


def test_length_mismatch_and_bad_image_dtype(tmp_path, written):
    path, _ = written
    with h5py.File(path, "a") as f:
        del f["data/demo_1/obs/eef_pos"]
        f["data/demo_1/obs/eef_pos"] = np.zeros((3, 3), np.float32)
    with pytest.raises(DatasetError, match="demo_1/obs/eef_pos has 3 rows, actions have 7"):
        read_dataset(path, ["eef_pos"])
    with h5py.File(path, "a") as f:
        del f["data/demo_0/obs/agentview_image"]
        f["data/demo_0/obs/agentview_image"] = np.zeros((5, 8, 8, 3), np.float32)
    with pytest.raises(DatasetError, match="demo_0/obs/agentview_image must be uint8"):
        read_dataset(path, [], ["agentview_image"])


def test_truncated_and_empty_files(tmp_path, written):
    path, _ = written
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DatasetError, match="cut.hdf5: cannot open as HDF5"):
        read_dataset(cut, ["eef_pos"])
    empty = tmp_path / "empty.hdf5"
    with h5py.File(empty, "w") as f:
        f.create_group("data")
    with pytest.raises(DatasetError, match="holds no demo_N groups"):
        read_dataset(empty, ["eef_pos"])
    with pytest.raises(DatasetError, match="no episodes"):
        write_dataset(tmp_path / "none.hdf5", [], {}, "expert")
    assert not (tmp_path / "none.hdf5").exists()


def test_nonexpert_fraction_keeps_a_prefix_and_drops_pairs_beyond_it(tmp_path):
    """Fig 6's amounts: the first episodes of each non-expert source; augmentation pairs that
    point past the kept rows disappear, the rest keep their rows."""
    from rise.pool import augmented_rows, load_pool

    rng = np.random.default_rng(1)
    keys = {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 7}

    def ep(n):
        obs = {k: rng.normal(size=(n + 1, d)).astype(np.float32) for k, d in keys.items()}
        return {"obs": obs, "actions": rng.uniform(-1, 1, (n, 5)), "states": np.zeros((n + 1, 1)),
                "rewards": np.zeros(n)}  # fmt: skip

    files = {"expert": tmp_path / "e.hdf5", "play": tmp_path / "p.hdf5"}
    write_dataset(files["expert"], [ep(4), ep(4)], {}, "expert")
    write_dataset(files["play"], [ep(5), ep(6), ep(7), ep(8)], {}, "play")
    pairs = tmp_path / "pairs.npz"
    np.savez(pairs, sources=np.array(["expert", "play"]),
             state_source=np.array([1, 1, 1]), state_index=np.array([2, 10, 20]),
             action_source=np.array([0, 1, 1]), action_index=np.array([3, 4, 12]))  # fmt: skip
    files = {k: str(v) for k, v in files.items()}
    full = load_pool(files, "mini_square_peg", "lowdim")
    half = load_pool(files, "mini_square_peg", "lowdim", nonexpert_fraction=0.5)
    assert full.sizes == {"expert": 8, "play": 26} and half.sizes == {"expert": 8, "play": 11}
    assert len(half) == 19 and list(half.lengths) == [4, 4, 5, 6]
    assert np.array_equal(half.lowdim, full.lowdim[:19])
    # play row 20 is past the kept 11 rows; row 10 with action row 4 stays
    states, actions = augmented_rows(half, str(pairs))
    assert list(states) == [8 + 2, 8 + 10] and list(actions) == [3, 8 + 4]
    assert len(augmented_rows(full, str(pairs))[0]) == 3
