"""The non-diffusion baselines (SQIL, CQL, ILID) and their shared actor-critic pieces."""

import io
import math

import numpy as np
import pytest
import torch

from rise.algos.actor_critic import LOG_STD_MAX, LOG_STD_MIN, OfflineSAC, TanhGaussianActor
from rise.algos.cql import CQL
from rise.algos.ilid import StateClassifier, select_rows
from rise.algos.sqil import SQIL, balanced_indices
from rise.nets import ObsEncoder

HP = {"hidden": [64, 64], "lr": 1e-3, "discount": 0.99, "tau": 0.01}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def expert_target(s: np.ndarray) -> np.ndarray:
    return 0.7 * np.stack([s[:, 1], -s[:, 0]], -1)


def bandit(n: int, expert_frac: float, rng: np.random.Generator) -> dict:
    """One-step task: 2-d state; expert actions near a state-dependent target (reward 1),
    non-expert actions uniform on [-1, 1]^2 (reward 0); every transition ends the episode."""
    s = rng.uniform(-1, 1, (n, 2))
    expert = rng.random(n) < expert_frac
    a = np.where(
        expert[:, None],
        np.clip(expert_target(s) + 0.05 * rng.standard_normal((n, 2)), -1, 1),
        rng.uniform(-1, 1, (n, 2)),
    )
    return {"s": s, "a": a, "r": expert.astype(np.float32)}


def batch_of(data: dict, idx: np.ndarray) -> dict:
    s = torch.as_tensor(data["s"][idx], dtype=torch.float32)
    return {
        "lowdim": s,
        "images": {},
        "next_lowdim": s,
        "next_images": {},
        "action": torch.as_tensor(data["a"][idx], dtype=torch.float32),
        "reward": torch.as_tensor(data["r"][idx]),
        "done": torch.ones(len(idx)),
    }


def fit(model, data: dict, steps: int, batch_size: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        info = model.train_step(batch_of(data, model.batch_indices(data["r"], batch_size, rng)))
    return info


def test_tanh_gaussian_log_prob_matches_torch_and_integrates_to_one():
    torch.manual_seed(0)
    actor = TanhGaussianActor(4, 3, [16]).double()
    feat = torch.randn(64, 4, dtype=torch.float64)
    action, logp = actor.sample(feat)
    assert action.abs().max() < 1
    mean, log_std = actor.params(feat)
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), torch.distributions.TanhTransform()
    )
    torch.testing.assert_close(logp, ref.log_prob(action).sum(-1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(actor.log_prob(feat, action), logp, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(actor.mode(feat), torch.tanh(mean))
    # a density on (-1, 1): integrates to one (1-d, trapezoid on a fine grid)
    actor1 = TanhGaussianActor(4, 1, [16]).double()
    grid = torch.linspace(-1 + 1e-9, 1 - 1e-9, 200001, dtype=torch.float64)[:, None]
    dens = actor1.log_prob(feat[:1].expand(len(grid), 4), grid).exp()
    assert torch.trapezoid(dens, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-3)


def test_log_std_is_clamped():
    actor = TanhGaussianActor(2, 2, [8])
    feat = torch.randn(5, 2)
    for bias, bound in ((100.0, LOG_STD_MAX), (-100.0, LOG_STD_MIN)):
        torch.nn.init.constant_(actor.log_std.bias, bias)
        assert torch.all(actor.params(feat)[1] == bound)


@pytest.mark.parametrize(("log_std", "alpha_falls"), [(0.0, True), (LOG_STD_MIN, False)])
def test_temperature_follows_entropy_target(log_std, alpha_falls):
    """Entropy above -action_dim (std ~1) lowers alpha; far below (std e^-5) raises it."""
    torch.manual_seed(0)
    sac = OfflineSAC(ObsEncoder(2, (), 8, 8), 2, HP)
    torch.nn.init.zeros_(sac.actor.log_std.weight)
    torch.nn.init.constant_(sac.actor.log_std.bias, log_std)
    data = bandit(64, 0.5, np.random.default_rng(0))
    info = fit(sac, data, steps=5, batch_size=64, seed=0)
    assert (info["entropy"] > sac.target_entropy) == alpha_falls
    assert (sac.log_alpha.item() < 0) == alpha_falls
    assert sac.log_alpha.item() != 0


def test_balanced_indices_half_expert():
    reward = np.array([1.0] * 5 + [0.0] * 995, np.float32)
    idx = balanced_indices(reward, 100, np.random.default_rng(0))
    assert len(idx) == 100 and (reward[idx] == 1).sum() == 50
    only = balanced_indices(np.zeros(10, np.float32), 8, np.random.default_rng(0))
    assert len(only) == 8 and only.max() < 10


def test_sqil_acts_like_the_expert_on_a_bandit():
    torch.manual_seed(0)
    data = bandit(4000, 0.1, np.random.default_rng(0))
    # rewards are at most 1 here, so a temperature of 1 would swamp Q: start it low
    sqil = SQIL(ObsEncoder(2, (), 8, 8), 2, {**HP, "init_alpha": 0.05})
    fit(sqil, data, steps=300, batch_size=128, seed=1)
    s = np.random.default_rng(2).uniform(-1, 1, (500, 2))
    act = sqil.act(torch.as_tensor(s, dtype=torch.float32), {}).numpy()
    assert act.shape == (500, 2) and np.abs(act).max() <= 1
    err = np.linalg.norm(act - expert_target(s), axis=-1).mean()
    rand = np.random.default_rng(3).uniform(-1, 1, (500, 2))
    rand_err = np.linalg.norm(rand - expert_target(s), axis=-1).mean()
    assert err < 0.2 * rand_err, (err, rand_err)


def test_cql_pushes_unseen_actions_down():
    """Data actions sit near (+-0.5, +-0.5) on the diagonal; (0.9, -0.9) is never tried."""
    rng = np.random.default_rng(0)
    n = 2000
    s = rng.uniform(-1, 1, (n, 2))
    expert = rng.random(n) < 0.5
    a = np.where(expert[:, None], 0.5, -0.5) + 0.05 * rng.standard_normal((n, 2))
    data = {"s": s, "a": a, "r": expert.astype(np.float32)}
    probe_s = torch.as_tensor(rng.uniform(-1, 1, (200, 2)), dtype=torch.float32)
    ood = torch.tensor([0.9, -0.9]).expand(200, 2)
    good, bad = torch.tensor([0.5, 0.5]).expand(200, 2), torch.tensor([-0.5, -0.5]).expand(200, 2)
    q = {}
    for name, cls in (("sac", OfflineSAC), ("cql", CQL)):
        torch.manual_seed(0)
        model = cls(ObsEncoder(2, (), 8, 8), 2, HP)
        info = fit(model, data, steps=150, batch_size=64, seed=1)
        q[name] = {
            k: model.q_value(probe_s, {}, a).mean().item()
            for k, a in (("ood", ood), ("good", good), ("bad", bad))
        }
    assert "cql_penalty" in info
    # (no claim on good vs bad: with cql_alpha 5 against rewards of 1 the penalty, which
    # also lowers Q where the policy goes, outweighs the reward gap)
    assert q["cql"]["ood"] < min(q["cql"]["good"], q["cql"]["bad"]) - 1.0, q
    assert q["cql"]["ood"] < q["sac"]["ood"] - 1.0, q


def test_cql_log_sum_exp_is_importance_sampled():
    """With Q constant = c, log of the mean of exp(Q - log p) over the 3N samples estimates
    log of the integral of exp(Q) over [-1, 1]^2, i.e. c + log 4."""
    torch.manual_seed(0)
    n, c, weight = 4000, 0.3, 2.0
    cql = CQL(ObsEncoder(2, (), 8, 8), 2, {**HP, "cql_alpha": weight, "cql_samples": n})
    for q in (cql.critic.q1, cql.critic.q2):
        torch.nn.init.zeros_(q[-1].weight)
        torch.nn.init.constant_(q[-1].bias, c)
    # a wide policy keeps 1 / pi bounded, so the importance weights have finite variance
    for head, value in ((cql.actor.mean, 0.0), (cql.actor.log_std, LOG_STD_MAX)):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, value)
    feat, q_data = torch.zeros(1, 2), torch.full((1,), c)
    penalty, info = cql.critic_penalty(feat, feat, q_data, q_data)
    assert info["cql_penalty"] == pytest.approx(penalty.item())
    log_mean = penalty.item() / (2 * weight) - math.log(3 * n)  # per critic, normalised
    assert log_mean == pytest.approx(math.log(4.0), abs=0.1)


def test_ilid_classifier_separates_clusters():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def states(n):
        label = (rng.random(n) < 0.2).astype(np.float32)  # expert is the small class
        s = np.where(label[:, None] > 0, 1.0, -1.0) + 0.3 * rng.standard_normal((n, 2))
        return torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(label)

    clf = StateClassifier(ObsEncoder(2, (), 8, 8), [32, 32], 1e-2)
    for _ in range(100):
        s, label = states(128)
        info = clf.train_step({"lowdim": s, "images": {}, "reward": label})
    assert info["accuracy"] > 0.95
    s, label = states(1000)
    p = clf.score(s, {})
    assert p.shape == (1000,) and ((p > 0.5).float() == label).float().mean() > 0.98
    assert p[label == 1].mean() > 0.9 and p[label == 0].mean() < 0.1


def test_select_rows_rolls_back_within_episodes():
    # episode 0: rows 0-4 expert; 1: rows 5-11 non-expert; 2: rows 12-15 non-expert
    starts, lengths = np.array([0, 5, 12]), np.array([5, 7, 4])
    episode = np.repeat(np.arange(3), lengths)
    reward = (episode == 0).astype(np.float32)
    scores = np.zeros(16)
    scores[[2, 6, 9, 10, 13]] = [0.99, 0.8, 0.9, 0.7, 0.95]  # row 10 exactly at threshold
    got = select_rows(scores, episode, starts, lengths, 0.7, 2, reward)
    # 6 -> {5, 6} (clamped at 5); 9 -> {7, 8, 9}; 10 -> {8, 9, 10}; 13 -> {12, 13}, not 11;
    # row 2 is expert: neither selected nor rolled back from
    assert got.tolist() == [5, 6, 7, 8, 9, 10, 12, 13]
    assert got.dtype == np.int64
    assert select_rows(scores, episode, starts, lengths, 0.7, 0, reward).tolist() == [6, 9, 10, 13]
    assert select_rows(scores, episode, starts, lengths, 0.999, 3, reward).size == 0


def test_state_dicts_hold_only_tensors_and_round_trip():
    torch.manual_seed(0)
    builds = [
        lambda: SQIL(ObsEncoder(2, (), 8, 8), 2, HP),
        lambda: CQL(ObsEncoder(2, (), 8, 8), 2, HP),
        lambda: StateClassifier(ObsEncoder(2, (), 8, 8), [8], 1e-3),
    ]
    for build in builds:
        state = build().state_dict()
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert any("targ" in k for k in state) or "net.0.weight" in state
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        fresh = build()
        fresh.load_state_dict(torch.load(buf, weights_only=True))
        for k, v in fresh.state_dict().items():
            assert torch.equal(v, state[k])


def test_image_encoder_is_trained_by_the_critic_only():
    torch.manual_seed(0)
    enc = ObsEncoder(2, ("cam",), 12, 8)
    sqil = SQIL(enc, 2, {**HP, "hidden": [16]})
    assert set(map(id, enc.parameters())) <= {
        id(p) for g in sqil.optimizers["critic"].param_groups for p in g["params"]
    }
    assert not {id(p) for p in enc.parameters()} & {
        id(p) for g in sqil.optimizers["actor"].param_groups for p in g["params"]
    }
    b = 4
    img = torch.randint(0, 256, (b, 16, 16, 3), dtype=torch.uint8)
    batch = {
        "lowdim": torch.randn(b, 2),
        "images": {"cam": img},
        "next_lowdim": torch.randn(b, 2),
        "next_images": {"cam": img},
        "action": torch.rand(b, 2) * 2 - 1,
        "reward": torch.tensor([1.0, 0.0, 1.0, 0.0]),
        "done": torch.zeros(b),
    }
    before = [p.detach().clone() for p in enc.parameters()]
    info = sqil.train_step(batch)
    assert all(math.isfinite(v) for v in info.values())
    assert any(not torch.equal(p0, p) for p0, p in zip(before, enc.parameters(), strict=True))
    assert sqil.eval().act(batch["lowdim"], batch["images"]).shape == (b, 2)
