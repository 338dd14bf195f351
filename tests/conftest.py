"""Shared fixtures: a tiny trained cell (policy + critic) for the evaluation and serving tests."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from rise import tasks as T  # noqa: E402
from rise.collect import collect  # noqa: E402
from rise.config import load, section  # noqa: E402
from rise.train import train_critic, train_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = "mini_square_peg"


@pytest.fixture(scope="session")
def cell(tmp_path_factory):
    """A critic and a diffusion policy trained for a few steps on 2 + 2 episodes."""
    tmp = tmp_path_factory.mktemp("cell")
    cfg = load(str(ROOT / "params.yaml"))
    files = {}
    for source in ("expert", "play"):
        files[source] = str(tmp / f"{source}.hdf5")
        collect(task=TASK, env_name=T.get(TASK).env, source=source, episodes=2, seed=0,
                cameras=False, out=files[source])  # fmt: skip
    common = dict(task=TASK, obs="lowdim", files=files, pairs=None, seed=0)
    train_critic(hp=section(cfg, "smoke", "critic"), out=str(tmp / "c.pt"),
                 curve=str(tmp / "c.csv"), **common)  # fmt: skip
    train_policy(critic_path=str(tmp / "c.pt"), lam=0.0, hp=section(cfg, "smoke", "policy"),
                 out=str(tmp / "p.pt"), curve=str(tmp / "p.csv"), **common)  # fmt: skip
    return tmp
