"""IDQL extraction in the evaluation's Planner: per state, the candidate whose first action
the critic scores highest is executed."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rise.evaluate
from rise import tasks as T
from rise.config import load, section
from rise.envs import ENVS, make_env
from rise.evaluate import Planner
from rise.train import effective_batch_size

ROOT = Path(__file__).resolve().parents[1]
TASK = "mini_square_peg"


def test_weighted_policy_curve_records_its_effective_batch_size(cell):
    """Kish's size is n for equal weights and 1 for a single nonzero one; the advantage-weighted
    policy's curve logs it per row, between 1 and the batch size."""
    assert effective_batch_size(torch.ones(16)).item() == pytest.approx(16)
    assert effective_batch_size(torch.tensor([0.0, 3.0, 0.0, 0.0])).item() == pytest.approx(1)
    both = effective_batch_size(np.array([[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]]))
    assert both.tolist() == pytest.approx([2, 4])
    with open(cell / "p.csv") as f:
        rows = list(csv.DictReader(f))
    batch = section(load(str(ROOT / "params.yaml")), "smoke", "policy")["batch_size"]
    assert any(float(r["weight_mean"]) != 1.0 for r in rows)  # the weights are on
    assert all(1.0 <= float(r["weight_ess"]) <= batch for r in rows)


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
    plan.critic.q_lower = lambda feat, action: action.reshape(len(action), -1)[:, 0]
    hist = histories(plan.meta["n_obs_steps"])
    chosen = plan(hist)

    again = planner(cell)  # same seed: the same candidates
    chunks = again.propose(*again.inputs(hist))
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


def test_temperature_draws_candidates_nearer_each_other(cell):
    """evaluate.temperature scales the candidates' starting noise: at 0.05 the 16 candidates
    of a state spread far less than at 1 (the same seed, so the same noise scaled)."""
    spreads = []
    for temperature in (1.0, 0.05):
        plan = Planner(str(cell / "p.pt"), str(cell / "c.pt"), 16, "ddim", 2, 0, "cpu",
                       temperature=temperature)  # fmt: skip
        lowdim, images = plan.inputs(histories(plan.meta["n_obs_steps"]))
        spreads.append(plan.propose(lowdim, images).std(1).mean().item())
    assert spreads[1] < 0.5 * spreads[0]


def test_bf16_sampling_draws_nearly_the_fp32_candidates_and_keeps_the_scores_fp32(cell):
    """evaluate.precision bf16 runs the denoiser under autocast: from the same noise the
    candidates land near fp32's (bf16 keeps ~3 digits), come back as fp32, and the critic
    scores them in fp32; an unknown precision is refused before any checkpoint is read."""
    chunks, scores = {}, {}
    for precision in ("fp32", "bf16"):
        plan = Planner(str(cell / "p.pt"), str(cell / "c.pt"), 16, "ddim", 2, 0, "cpu",
                       precision=precision)  # fmt: skip
        lowdim, images = plan.inputs(histories(plan.meta["n_obs_steps"]))
        chunks[precision] = plan.propose(lowdim, images)
        scores[precision] = plan.score(lowdim[:, -1], {}, chunks[precision])
    assert chunks["bf16"].dtype == scores["bf16"].dtype == torch.float32
    gap = (chunks["bf16"] - chunks["fp32"]).abs().max().item()
    assert 0 < gap < 0.1 * chunks["fp32"].abs().max().item()
    with pytest.raises(ValueError, match="precision 'fp16'"):
        Planner("missing.pt", None, 1, "ddim", 2, 0, "cpu", precision="fp16")


def test_each_episode_records_where_it_left_the_object(cell, tmp_path, monkeypatch):
    """Each episode's record keeps the object's pose at its start and after its last step."""
    last = []  # per episode: the object pose its env returned last

    def make_drifting_env(name, **kwargs):
        """The real env, but its object drifts 1 mm along x a step: every pose differs."""
        env, index = make_env(name, **kwargs), len(last)
        step, steps = env.step, [0]
        last.append(None)

        def drifting_step(action):
            obs = step(action)
            steps[0] += 1
            obs["object"][0] += 1e-3 * steps[0]
            last[index] = obs["object"].copy()
            return obs

        env.step = drifting_step
        return env

    monkeypatch.setattr(rise.evaluate, "make_env", make_drifting_env)
    out = {k: str(tmp_path / k) for k in ("m.json", "e.json", "videos")}
    rise.evaluate.evaluate(policy=str(cell / "p.pt"), critic=None, episodes=2, num_samples=1,
                           scheduler="ddim", inference_steps=2, seed=0, videos=0,
                           out=out["m.json"], episodes_out=out["e.json"],
                           videos_out=out["videos"])  # fmt: skip
    records = json.loads(Path(out["e.json"]).read_text())
    assert len(records) == 2
    for rec, pose in zip(records, last, strict=True):
        assert rec["steps"] == 200
        np.testing.assert_allclose(rec["final_object"], pose, atol=1e-4)
        assert rec["final_object"][0] > rec["init_object"][0] + 0.1  # 200 mm of drift


def test_cli_evaluate_samples_as_the_preset_says(cell, tmp_path):
    """`rise evaluate` takes its candidates per state and denoising schedule from the preset
    (the smoke one: 4 candidates, 3 DDIM steps, 2 rollouts), as the workflow's rule relies on."""
    from rise.cli import main

    out = tmp_path / "m.json"
    argv = ["evaluate", "--params", str(ROOT / "params.yaml"), "--scale", "smoke",
            "--device", "cpu", "--policy", str(cell / "p.pt"), "--critic", str(cell / "c.pt"),
            "--seed", "0", "--out", str(out), "--episodes-out", str(tmp_path / "e.json"),
            "--videos-out", str(tmp_path / "v")]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads(out.read_text())
    smoke = load(str(ROOT / "params.yaml"))
    ev, pol = section(smoke, "smoke", "evaluate"), section(smoke, "smoke", "policy")
    assert (metrics["episodes"], metrics["num_samples"]) == (ev["episodes"], ev["num_samples"])
    assert (metrics["scheduler"], metrics["inference_steps"]) == (
        pol["inference_scheduler"],
        pol["inference_steps"],
    )
    assert metrics["extraction"] and metrics["num_samples"] == 4


def test_episodes_run_in_waves_of_the_envs_an_env_class_allows(cell, tmp_path, monkeypatch):
    """An env class that caps `parallel_envs` (robosuite's: building one takes seconds) has
    its envs reused wave after wave: 5 episodes on 2 envs start where 5 envs start them, and
    the first `videos` episodes are filmed, on envs of their own: the others run without
    cameras (rendering is most of a robosuite step)."""
    built = []

    def counting_make_env(name, **kwargs):
        built.append(kwargs["cameras"])
        return make_env(name, **kwargs)

    def run(name):
        out = {k: str(tmp_path / name / k) for k in ("m.json", "e.json", "videos")}
        rise.evaluate.evaluate(policy=str(cell / "p.pt"), critic=None, episodes=5,
                               num_samples=1, scheduler="ddim", inference_steps=2, seed=0,
                               videos=2, out=out["m.json"], episodes_out=out["e.json"],
                               videos_out=out["videos"])  # fmt: skip
        records = json.loads(Path(out["e.json"]).read_text())
        return records, sorted(p.name for p in Path(out["videos"]).iterdir())

    monkeypatch.setattr(rise.evaluate, "make_env", counting_make_env)
    one_wave, one_wave_videos = run("one")
    assert built == [True, True, False, False, False]  # no camera-free env left idle
    built.clear()
    monkeypatch.setattr(ENVS[T.get(TASK).env], "parallel_envs", 2)
    waves, wave_videos = run("waves")
    assert built == [True, True, False, False]
    assert [r["episode"] for r in waves] == list(range(5))
    assert [r["init_object"] for r in waves] == [r["init_object"] for r in one_wave]
    assert wave_videos == one_wave_videos and len(wave_videos) == 2
