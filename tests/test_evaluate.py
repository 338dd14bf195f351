"""IDQL extraction in the evaluation's Planner: per state, the candidate whose first action
the critic scores highest is executed."""

from pathlib import Path

import numpy as np
import pytest
import torch

from rise import tasks as T
from rise.collect import collect
from rise.config import load, section
from rise.envs import make_env
from rise.evaluate import Planner
from rise.train import train_critic, train_policy

ROOT = Path(__file__).resolve().parents[1]
TASK = "mini_square_peg"


@pytest.fixture(scope="module")
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


def histories(n_obs: int, episodes: int = 3) -> list[list[dict]]:
    env = make_env(T.get(TASK).env)
    starts = [env.reset("eval", np.random.default_rng([0, i])) for i in range(episodes)]
    env.close()
    return [[o] * n_obs for o in starts]


def planner(cell: Path, samples: int = 8) -> Planner:
    return Planner(str(cell / "p.pt"), str(cell / "c.pt"), samples, "ddim", 2, 0, "cpu")


def test_extraction_executes_each_states_best_candidate(cell):
    """With a critic that scores a first action by its first coordinate, every state gets
    the candidate with the largest one: the pick is per state, not across the batch."""
    plan = planner(cell)
    plan.critic.q_min = lambda feat, action: action[:, 0]
    hist = histories(plan.meta["n_obs_steps"])
    chosen = plan(hist)

    again = planner(cell)  # same seed: the same candidates
    keys = again.meta["lowdim_keys"]
    lowdim = np.stack([[np.concatenate([o[k] for k in keys]) for o in h] for h in hist])
    chunks = again.propose(lowdim, {})
    assert chunks.shape == (3, 8, again.meta["horizon"], again.meta["action_dim"])
    best = chunks[:, :, 0, 0].argmax(1)
    np.testing.assert_allclose(
        chosen, chunks[torch.arange(3), best][:, : plan.meta["n_action_steps"]].numpy(), atol=1e-6
    )
    assert not np.allclose(chosen, chunks[:, 0, : plan.meta["n_action_steps"]].numpy())


def test_without_a_critic_one_sample_is_drawn(cell):
    plan = Planner(str(cell / "p.pt"), None, 8, "ddim", 2, 0, "cpu")
    chosen = plan(histories(plan.meta["n_obs_steps"]))
    assert plan.num_samples == 1
    assert chosen.shape == (3, plan.meta["n_action_steps"], plan.meta["action_dim"])
    assert np.all(np.abs(chosen) <= 1.0 + 1e-6)
