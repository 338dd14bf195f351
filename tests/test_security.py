"""Files a user hands us are read without running code, and names from params or data never
lead outside the project folder (issue 17, part 5; docs/reliability.md).

Each payload below really runs when read the unsafe way (the test proves it first, on a
marker of its own), so a loader that became unsafe would make the test fail.
"""

import io
import pickle
import subprocess

import h5py
import numpy as np
import pytest
import torch
import yaml
from workflow_helpers import ROOT, env

from rise.cli import main
from rise.config import ConfigError, load

TASK = "mini_square_peg"
ESCAPE = "../../etc"


class Payload:
    """Unpickling this creates `marker` (builtins.open(marker, "w")): code run on reading."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def armed(marker, make):
    """`make(Payload)` -> bytes; checked to create its marker when unpickled the unsafe way."""
    probe = marker.with_name(marker.name + ".probe")
    pickle.loads(pickle.dumps(Payload(probe)))  # the payload works ...
    assert probe.exists()
    probe.unlink()
    return make(Payload(marker))  # ... and this one must never run


def checkpoint_bytes(payload) -> bytes:
    """A file that looks like one of our checkpoints (torch's zip format, our keys)."""
    buf = io.BytesIO()
    torch.save({"kind": "policy", "meta": {"task": TASK, "obs": "lowdim"},
                "state_dict": {"w": payload}, "normalizer": {}}, buf)  # fmt: skip
    return buf.getvalue()


def run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("form", ["torch-zip", "raw-pickle"])
def test_a_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path, capsys, form):
    marker, evil = tmp_path / "PAYLOAD_RAN", tmp_path / "policy.pt"
    make = checkpoint_bytes if form == "torch-zip" else pickle.dumps
    evil.write_bytes(armed(marker, make))
    out = tmp_path / "out"
    code, err = run(["evaluate", "--scale", "smoke", "--policy", str(evil), "--seed", "0",
                     "--out", f"{out}/m.json", "--episodes-out", f"{out}/e.json",
                     "--videos-out", f"{out}/videos"], capsys)  # fmt: skip
    assert code == 2 and f"{evil}: refused: not a plain checkpoint" in err
    assert "loading it would run code" in err
    code, err = run(["train-policy", "--scale", "smoke", "--task", TASK, "--obs", "lowdim",
                     "--method", "IDQL", "--critic", str(evil), "--data", "expert=x.hdf5",
                     "play=y.hdf5", "--seed", "0", "--out", f"{out}/p.pt",
                     "--curve", f"{out}/p.csv"], capsys)  # fmt: skip
    assert code == 2 and f"{evil}: refused" in err
    from rise.train import load_checkpoint  # the loader evaluate and serve build models with

    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(str(evil), "policy")
    assert not marker.exists() and not out.exists()


def test_a_malicious_npz_is_refused_and_its_payload_never_runs(tmp_path, capsys):
    marker, evil = tmp_path / "PAYLOAD_RAN", tmp_path / "evil.npz"

    def npz(payload):
        buf = io.BytesIO()
        np.savez(buf, sources=np.array([payload], dtype=object), info=np.array("{}"))
        return buf.getvalue()

    evil.write_bytes(armed(marker, npz))
    out = tmp_path / "out"
    code, err = run(["augment", "--scale", "smoke", "--features", str(evil), "--epsilon",
                     "0.1", "--out", f"{out}/pairs.npz", "--stats", f"{out}/stats.json"],
                    capsys)  # fmt: skip
    assert code == 2 and f"{evil}: array 'sources': Object arrays cannot be loaded" in err
    code, err = run(["train-critic", "--scale", "smoke", "--task", TASK, "--obs", "lowdim",
                     "--data", "expert=x.hdf5", "--pairs", str(evil), "--seed", "0",
                     "--out", f"{out}/c.pt", "--curve", f"{out}/c.csv"], capsys)  # fmt: skip
    assert code == 2 and f"{evil}: array 'sources'" in err
    assert not marker.exists() and not out.exists()


def test_a_params_file_with_python_tags_is_refused_and_runs_nothing(tmp_path):
    marker, evil = tmp_path / "PAYLOAD_RAN", tmp_path / "params.yaml"
    tagged = f"lambda: !!python/object/apply:builtins.open [{str(marker)!r}, w]\n"
    yaml.unsafe_load(tagged.replace("PAYLOAD_RAN", "PROBE"))["lambda"].close()  # it works ...
    assert (tmp_path / "PROBE").exists()
    evil.write_text((ROOT / "params.yaml").read_text() + tagged)
    with pytest.raises(ConfigError, match=f"{evil}: not valid YAML"):
        load(evil)  # ... our loader never runs it
    assert not marker.exists()


def params_with(**edits) -> dict:
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in edits.items():
        section, _, field = key.partition("__")
        (cfg[section] if field else cfg).__setitem__(field or section, value)
    return cfg


@pytest.mark.parametrize(
    "edits, key",
    [
        ({"tasks": [TASK, ESCAPE]}, "tasks.1"),
        ({"figures__ablation_task": ESCAPE}, "figures.ablation_task"),
        ({"relabel__task": ESCAPE}, "relabel.task"),
        ({"epsilon_per_task": {ESCAPE: 0.1}}, f"epsilon_per_task.{ESCAPE}"),
    ],
)
def test_a_task_name_that_leaves_the_project_is_refused_in_params(tmp_path, edits, key):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params_with(**edits)))
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load(path)


def test_a_task_name_that_leaves_the_project_is_refused_by_snakemake_and_the_cli(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    done = subprocess.run(
        ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
         "--configfile", str(tmp_path / "params.yaml"), "--config", f"tasks=[{ESCAPE}]"],
        env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and f"key 'tasks.0': unknown task '{ESCAPE}'" in done.stdout
    out = str(tmp_path / "out.hdf5")
    for argv in (["collect", "--obs", "lowdim", "--source", "expert"], ["rollout"]):
        code, err = run([*argv, "--scale", "smoke", "--task", ESCAPE, "--out", out], capsys)
        assert code == 2 and f"--task: unknown task '{ESCAPE}'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_recorded_rollout_naming_another_task_is_refused(tmp_path, cell):
    """A task name carried by data (a rollout's record) is checked against the job's."""
    import json

    from rise.data import DatasetError
    from rise.relabel import relabel
    from rise.rollout import ATTR

    rollout = tmp_path / "rollout.hdf5"
    rollout.write_bytes((cell / "expert.hdf5").read_bytes())
    with h5py.File(rollout, "a") as f:
        f["data"].attrs[ATTR] = json.dumps({"task": ESCAPE, "round": 0, "policy_sha256": "0"})
    with pytest.raises(DatasetError, match=f"rise_rollout\\['task'\\] is '{ESCAPE}'"):
        relabel(task=TASK, source="expert", data=str(cell / "expert.hdf5"),
                rollouts=[str(rollout)], round_=0, out=str(tmp_path / "out.hdf5"))  # fmt: skip
    assert not (tmp_path / "out.hdf5").exists()
