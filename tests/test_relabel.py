"""`rise relabel`: a round's successes join the expert data and its failures the play data,
with their origin; bad recorded files are refused by name before anything is written."""

import json

import h5py
import numpy as np
import pytest

from rise import tasks as T
from rise.cli import main
from rise.collect import collect
from rise.collect import rollout as run_episode
from rise.data import DatasetError, read_dataset, write_dataset
from rise.envs import make_env
from rise.relabel import ATTR, relabel
from rise.rollout import ATTR as ROLLOUT_ATTR

TASK = "mini_piece_assembly"
SHA = "ab" * 32
KEYS = ("eef_pos", "eef_quat", "gripper_qpos", "object")


def record(path, sources=("expert", "play", "expert"), round_=0, task=TASK):
    """A recorded file as `rise rollout` or a robot's logger writes it: real episodes of the
    task's env from its evaluation region (scripted controllers stand in for the policy),
    each labelled with its own success."""
    env = make_env(T.get(task).env)
    rng = np.random.default_rng(7)
    episodes = []
    for source in sources:
        ep = run_episode(env, env.controller(source, rng), "eval", rng, True)
        ep["attrs"] = {"success": bool(ep["success"]), "chunk_starts": np.arange(0, 8, 8)}
        episodes.append(ep)
    info = {"task": task, "region": "eval", "seed": 0, "round": round_, "policy_sha256": SHA,
            "server": "hand-made"}  # fmt: skip
    write_dataset(path, episodes, env.env_args(), "rollout", 0.0, {ROLLOUT_ATTR: json.dumps(info)})
    env.close()
    return [ep["success"] for ep in episodes]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Round 0's expert and play files (2 episodes each) and one recorded file."""
    tmp = tmp_path_factory.mktemp("relabel")
    files = {s: str(tmp / f"{s}.hdf5") for s in ("expert", "play")}
    for source, path in files.items():
        collect(task=TASK, env_name=T.get(TASK).env, source=source, episodes=2, seed=0,
                cameras=False, out=path)  # fmt: skip
    labels = record(tmp / "rollouts.hdf5")
    assert True in labels and False in labels  # both kinds, so both files grow
    return files, str(tmp / "rollouts.hdf5"), labels


def demo(path, name):
    with h5py.File(path) as f:
        g = f["data"][name]
        return {"actions": g["actions"][()], "object": g["obs/object"][()], **dict(g.attrs)}


def test_rounds_hold_exactly_the_recorded_episodes_with_their_labels(base, tmp_path):
    files, recorded, labels = base
    assert T.failures_source(TASK) == "play"
    out = {}
    for source in ("expert", "play"):
        out[source] = str(tmp_path / f"{source}.hdf5")
        info = relabel(task=TASK, source=source, data=files[source], rollouts=[recorded],
                       round_=0, out=out[source])  # fmt: skip
        keep = source == "expert"
        picked = [f"demo_{i}" for i, ok in enumerate(labels) if ok == keep]
        assert info["round"] == 1 and info["added"] == len(picked) and info["kept"] == 2
        ds = read_dataset(out[source], KEYS)  # the workflow's reader takes it
        assert ds.demos == [f"demo_{i}" for i in range(2 + len(picked))]
        for name in ("demo_0", "demo_1"):  # round 0's demos, unchanged
            before, after = demo(files[source], name), demo(out[source], name)
            np.testing.assert_array_equal(before["actions"], after["actions"])
            assert ATTR not in after
        for i, episode in enumerate(picked, start=2):  # then the recorded ones, in order
            rec, got = demo(recorded, episode), demo(out[source], f"demo_{i}")
            np.testing.assert_array_equal(rec["actions"], got["actions"])
            np.testing.assert_array_equal(rec["object"], got["object"])
            assert bool(got["success"]) is keep and got["num_samples"] == len(got["actions"])
            origin = json.loads(got[ATTR])
            assert origin == {"file": recorded, "episode": episode, "policy_sha256": SHA,
                              "round": 0, "success": keep}  # fmt: skip
        with h5py.File(out[source]) as f:
            history = json.loads(f["data"].attrs[ATTR])
            train = [n.decode() for n in f["mask/train"][()]]
            assert f["data"].attrs["rise_source"] == source
            assert int(f["data"].attrs["total"]) == len(ds)
        assert [h["round"] for h in history] == [1] and history[0]["base"] == files[source]
        assert history[0]["rollouts"][0]["policy_sha256"] == SHA
        assert set(history[0]["added"]) <= set(train)
    # round 1 -> 2 chains: the provenance keeps both rounds
    again = tmp_path / "round1_rollouts.hdf5"
    record(again, sources=("expert",), round_=1)
    relabel(task=TASK, source="expert", data=out["expert"], rollouts=[str(again)], round_=1,
            out=str(tmp_path / "expert2.hdf5"))  # fmt: skip
    with h5py.File(tmp_path / "expert2.hdf5") as f:
        assert [h["round"] for h in json.loads(f["data"].attrs[ATTR])] == [1, 2]


def broken(path, edit):
    """A copy of the recorded file with one defect."""
    with h5py.File(path, "a") as f:
        edit(f)


def _no_label(f):
    del f["data/demo_1"].attrs["success"]


def _empty(f):
    g = f["data"].create_group("demo_3")
    g.attrs["success"] = False
    g.create_dataset("actions", data=np.zeros((0, 5), np.float32))
    for key in KEYS:
        g.create_dataset(f"obs/{key}", data=f[f"data/demo_0/obs/{key}"][:0])


def _other_keys(f):
    f["data/demo_2/obs"].move("object", "peg")


def _other_shape(f):
    del f["data/demo_0/obs/object"]
    f["data/demo_0/obs/object"] = np.zeros((len(f["data/demo_0/actions"]), 3), np.float32)


def _other_round(f):
    f["data"].attrs[ROLLOUT_ATTR] = json.dumps({"task": TASK, "round": 3})


def _not_recorded(f):
    del f["data"].attrs[ROLLOUT_ATTR]


@pytest.mark.parametrize(
    "edit, message",
    [
        (_no_label, r"rollouts\.hdf5: demo_1 has no 'success' attribute"),
        (_empty, r"rollouts\.hdf5: demo_3 is empty \(0 actions\)"),
        (_other_keys, r"rollouts\.hdf5: demo_2/obs/object is missing"),
        (_other_shape, r"rollouts\.hdf5: demo_0/obs/object is \(\(3,\)"),
        (_other_round, r"rollouts\.hdf5: rise_rollout\['round'\] is 3"),
        (_not_recorded, r"rollouts\.hdf5: no data\.attrs\['rise_rollout'\]"),
    ],
)
def test_bad_recorded_files_are_refused_by_name_before_writing(base, tmp_path, edit, message):
    files, recorded, _ = base
    bad = tmp_path / "rollouts.hdf5"
    bad.write_bytes(open(recorded, "rb").read())
    broken(bad, edit)
    out = tmp_path / "expert.hdf5"
    with pytest.raises(DatasetError, match=message):
        relabel(task=TASK, source="expert", data=files["expert"], rollouts=[recorded, str(bad)],
                round_=0, out=str(out))  # fmt: skip
    assert list(tmp_path.iterdir()) == [bad]  # nothing written, not even a temporary file


def test_cli_names_a_wrong_task_and_a_source_it_does_not_rewrite(base, tmp_path, capsys):
    files, recorded, _ = base
    other = tmp_path / "peg.hdf5"
    record(other, sources=("expert",), task="mini_square_peg")
    out = str(tmp_path / "out.hdf5")
    args = ["relabel", "--task", TASK, "--data", files["expert"], "--round", "0", "--out", out]
    assert main([*args, "--source", "expert", "--rollouts", str(other)]) == 2
    assert "peg.hdf5: rise_rollout['task'] is 'mini_square_peg'" in capsys.readouterr().err
    tip = "mini_piece_assembly_tip"
    assert main(["relabel", "--task", tip, "--source", "partial_tipping", "--data", files["play"],
                 "--rollouts", recorded, "--round", "0", "--out", out]) == 2  # fmt: skip
    assert "its other sources stay as they are" in capsys.readouterr().err
    assert not (tmp_path / "out.hdf5").exists()
