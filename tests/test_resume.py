"""A training job killed at a step that is no checkpoint boundary resumes from its last
`<out>.resume` and ends with the uninterrupted run's weights and curve, bit for bit."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from rise import tasks as T
from rise.collect import collect
from rise.config import load, section
from rise.resume import Resumable
from rise.train import train_actor_critic, train_critic, train_policy

ROOT = Path(__file__).resolve().parents[1]
TASK = "mini_square_peg"
STEPS, EVERY, KILL_AT = 23, 5, 13  # the last resume file before the kill is step 10's


class Killed(BaseException):
    """Stands for SIGKILL inside the process: nothing catches it."""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume_data")
    files = {}
    for source in ("expert", "play"):
        files[source] = str(tmp / f"{source}.hdf5")
        collect(task=TASK, env_name=T.get(TASK).env, source=source, episodes=2, seed=0,
                cameras=False, out=files[source])  # fmt: skip
    return files


def smoke(name: str) -> dict:
    hp = section(load(str(ROOT / "params.yaml")), "smoke", name)
    return {**hp, "steps": STEPS, "checkpoint_every": EVERY}


def trainers(files):
    """Each training loop with its job arguments (output path excluded)."""
    common = dict(task=TASK, obs="lowdim", files=files, seed=0)
    return {
        "critic": lambda **out: train_critic(pairs=None, hp=smoke("critic"), **common, **out),
        "policy": lambda **out: train_policy(
            pairs=None, critic_path=None, lam=0.1, hp=smoke("policy"), **common, **out
        ),
        "sqil": lambda **out: train_actor_critic(
            method="SQIL", hp=smoke("baselines"), **common, **out
        ),
    }


def weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("kind", ["critic", "policy", "sqil"])
def test_a_killed_job_resumes_to_the_uninterrupted_weights(
    data, tmp_path, monkeypatch, capsys, kind
):
    train = trainers(data)[kind]
    train(out=str(tmp_path / "whole.pt"), curve=str(tmp_path / "whole.csv"))
    assert not Path(f"{tmp_path}/whole.pt.resume").exists()  # removed once the output is written

    out, curve = tmp_path / "job.pt", tmp_path / "job.csv"
    save = Resumable.save

    def save_then_die(self, done, rows):
        save(self, done, rows)
        if done == KILL_AT:
            raise Killed

    monkeypatch.setattr(Resumable, "save", save_then_die)
    with pytest.raises(Killed):
        train(out=str(out), curve=str(curve))
    assert not out.exists() and not curve.exists()  # nothing that looks finished
    resume = torch.load(f"{out}.resume", map_location="cpu", weights_only=True)
    assert resume["step"] == 10

    monkeypatch.setattr(Resumable, "save", save)
    capsys.readouterr()
    train(out=str(out), curve=str(curve))
    assert f"resuming from {out}.resume at step 10" in capsys.readouterr().out
    whole, resumed = weights(tmp_path / "whole.pt"), weights(out)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert curve.read_text() == (tmp_path / "whole.csv").read_text()
    assert not Path(f"{out}.resume").exists()


def test_a_resume_file_of_another_job_is_refused_by_name(data, tmp_path, monkeypatch):
    train = trainers(data)
    out = tmp_path / "job.pt"
    monkeypatch.setattr(Resumable, "finish", lambda self: None)  # keep it, as a kill would
    train["critic"](out=str(out), curve=str(tmp_path / "c.csv"))
    out.unlink()
    with pytest.raises(ValueError, match=r"job\.pt\.resume: not a resume file of this job"):
        train["policy"](out=str(out), curve=str(tmp_path / "p.csv"))


def test_sigkill_of_the_cli_job_then_rerun_gives_the_same_policy(data, tmp_path):
    """The real thing: `rise train-policy` killed with SIGKILL once its first resume file is
    written (some steps past it), run again, ends with the uninterrupted run's bytes."""
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg["scales"]["smoke"]["policy"].update(steps=600, checkpoint_every=100)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg))

    def job(name):
        out = tmp_path / f"{name}.pt"
        cmd = [sys.executable, "-m", "rise", "train-policy", "--params", str(params),
               "--scale", "smoke", "--task", TASK, "--obs", "lowdim", "--method", "BCU",
               "--data", *(f"{k}={v}" for k, v in data.items()), "--seed", "0",
               "--out", str(out), "--curve", str(tmp_path / f"{name}.csv")]  # fmt: skip
        return out, cmd

    whole, cmd = job("whole")
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "RISE_THREADS": "1"})
    out, cmd = job("job")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume = Path(f"{out}.resume")
    deadline = time.monotonic() + 120
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # a few steps past the checkpoint
    assert proc.poll() is None, "the job ended before it could be killed: raise its steps"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert resume.exists() and not out.exists()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert "resuming from" in done.stdout + done.stderr
    assert out.exists() and not resume.exists()
    a, b = weights(whole), weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert out.with_suffix(".csv").read_text() == whole.with_suffix(".csv").read_text()
