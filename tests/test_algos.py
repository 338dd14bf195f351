"""Numbers the algorithms must get right."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rise.algos.diffusion_policy import DiffusionPolicy, spectral_norm
from rise.algos.iql import IQLCritic, expectile_loss
from rise.nets import MLPDenoiser, ObsEncoder, scheduled_lr
from rise.pool import Pool, alternating_batches, augment_share_batches, expert_share_batches
from rise.train import WeightEMA, warn_if_diverged


def test_expectile_loss_known_numbers():
    diff = torch.tensor([2.0, -1.0, 0.5, -3.0])
    # weights 0.9 for positive differences, 0.1 for negative ones
    expected = (0.9 * 4 + 0.1 * 1 + 0.9 * 0.25 + 0.1 * 9) / 4
    assert expectile_loss(diff, 0.9).item() == pytest.approx(expected)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (4 + 1 + 0.25 + 9) / 4)


def test_weight_ema_follows_in_place_steps_with_the_warm_up_schedule():
    """Update k moves the copy (1 + k) ** -power of the way to the live weights, which an
    optimizer changes in place (so the first update copies them), and never less than 1e-4."""
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = WeightEMA(model, power=0.75)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update()
    assert ema.module.weight.item() == 3.0
    with torch.no_grad():
        model.weight.fill_(5.0)
    ema.update()
    assert ema.module.weight.item() == pytest.approx(3.0 + 2.0 * 2**-0.75)
    ema.updates = 10**9
    before = ema.module.weight.item()
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update()
    assert ema.module.weight.item() == pytest.approx(before * (1 - 1e-4))
    assert not ema.module.weight.requires_grad


def test_cosine_lr_warms_up_linearly_then_decays_to_zero():
    """Chi et al.'s schedule: lr / warmup after the first step, the full lr at the end of the
    warm-up, half of it half-way through the decay, ~0 at the last step; constant is lr."""
    lrs = [scheduled_lr(1.0, s, 1100, "cosine", 100) for s in range(1100)]
    assert lrs[0] == pytest.approx(0.01) and lrs[99] == pytest.approx(1.0)
    assert lrs[100] == pytest.approx(1.0) and lrs[600] == pytest.approx(0.5)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-4)
    assert all(np.diff(lrs[100:]) <= 0)
    assert scheduled_lr(0.3, 500, 1100, "constant", 100) == 0.3


def test_spectral_norm_is_largest_singular_value():
    w = torch.tensor([[3.0, 0.0], [0.0, -5.0], [0.0, 0.0]])
    assert spectral_norm(w).item() == pytest.approx(5.0)
    rng = torch.Generator().manual_seed(0)
    w = torch.randn(7, 4, generator=rng)
    assert spectral_norm(w).item() == pytest.approx(torch.linalg.svdvals(w)[0].item(), rel=1e-5)


def test_penalty_gradient_shrinks_the_policy_head():
    torch.manual_seed(0)
    pol = DiffusionPolicy(
        ObsEncoder(3, (), 8, 8),
        action_dim=2,
        horizon=4,
        n_obs_steps=2,
        down_dims=[16],
        diffusion_steps=10,
    )
    assert pol.spectral_penalty().item() == pytest.approx(
        torch.linalg.svdvals(pol.lipschitz_head[-1].weight)[0].item(), rel=1e-5
    )
    opt = torch.optim.SGD(pol.lipschitz_head.parameters(), lr=0.05)
    before = pol.spectral_penalty().item()
    for _ in range(20):
        opt.zero_grad()
        pol.spectral_penalty().backward()
        opt.step()
    assert pol.spectral_penalty().item() < 0.9 * before


def test_alternating_epochs():
    rng = np.random.default_rng(0)
    kinds = [k for k, _ in alternating_batches(10, 4, 4, 9, rng)]
    # 10 originals in batches of 4 -> 3 batches, then 4 augmented -> 1 batch, repeat
    assert kinds == ["orig"] * 3 + ["aug"] + ["orig"] * 3 + ["aug"] + ["orig"]
    batches = list(alternating_batches(10, 0, 4, 3, rng))
    assert sorted(np.concatenate([b for _, b in batches]).tolist()) == list(range(10))


def test_a_critic_past_the_value_bound_is_reported(capsys):
    """With 0/1 rewards at discount 0.99 no value exceeds 100; a critic beyond it diverged."""
    assert not warn_if_diverged(99.0, 0.99)
    assert capsys.readouterr().err == ""
    assert warn_if_diverged(163.0, 0.99)
    assert "V reached 163.0, above 1 / (1 - discount) = 100" in capsys.readouterr().err


def hand_pool(rewards, dones, lengths):
    """A Pool of hand-made episodes (1-d observations = the row number): enough for the
    n-step backup and the samplers, which read only labels and episode bounds."""
    n = sum(lengths)
    starts = np.cumsum([0, *lengths[:-1]])
    return Pool(
        lowdim=np.arange(n, dtype=np.float32)[:, None],
        next_lowdim=np.arange(1, n + 1, dtype=np.float32)[:, None],
        images={},
        next_images={},
        actions=np.arange(n, dtype=np.float32)[:, None],
        reward=np.asarray(rewards, np.float32),
        done=np.asarray(dones, np.float32),
        episode=np.repeat(np.arange(len(lengths)), lengths),
        starts=starts,
        lengths=np.asarray(lengths),
        offsets={},
        image_keys=(),
        sizes={},
    )


def test_chunk_critic_nstep_backup_on_a_hand_made_episode():
    """Episode A (expert, 5 rows, ends with done) then episode B (play, 3 rows, cut off
    without done): the 3-step return, the row the chunk ends on and gamma^m (1 - done)."""
    pool = hand_pool([1] * 5 + [0] * 3, [0, 0, 0, 0, 1, 0, 0, 0], [5, 3])
    g = 0.9
    last, ret, boot = pool.nstep(3, g)
    assert last.tolist() == [2, 3, 4, 4, 4, 7, 7, 7]
    full = 1 + g + g**2
    assert ret == pytest.approx([full, full, full, 1 + g, 1, 0, 0, 0])
    # A's chunks that reach its done row bootstrap nothing; B's cut-off ones bootstrap
    # gamma^m V of the state after its last row
    assert boot == pytest.approx([g**3, g**3, 0, 0, 0, g**3, g**2, g])
    # absorbing: A's end keeps paying 1 a step, worth 1 / (1 - g) from there on
    _, ab_ret, ab_boot = pool.nstep(3, g, absorbing=True)
    tail = 1 / (1 - g)
    assert ab_ret == pytest.approx(
        [full, full, full + g**3 * tail, 1 + g + g**2 * tail, 1 + g * tail, 0, 0, 0]
    )
    assert ab_boot == pytest.approx(boot)
    one_last, one_ret, one_boot = pool.nstep(1, g)  # the one-step backup
    assert one_last.tolist() == list(range(8))
    assert one_ret.tolist() == pool.reward.tolist()
    assert one_boot == pytest.approx(g * (1 - pool.done))


def test_chunk_critic_scores_the_chunk_and_regresses_the_nstep_target():
    """Q over (features, 3 actions); one gradient step moves Q towards r + bootstrap * V(s')."""
    torch.manual_seed(0)
    critic = IQLCritic(ObsEncoder(2, (), 8, 8), action_dim=2, hidden=[16], chunk=3)
    assert critic.qs[0][0].in_features == 2 + 3 * 2
    batch = {
        "lowdim": torch.randn(4, 2),
        "images": {},
        "next_lowdim": torch.randn(4, 2),
        "next_images": {},
        "action": torch.randn(4, 3, 2),
        "reward": torch.tensor([2.71, 0.0, 1.0, 0.0]),
        "bootstrap": torch.tensor([0.0, 0.729, 0.0, 0.9]),
    }
    assert critic.q_lower(critic.encoder(batch["lowdim"], {}), batch["action"]).shape == (4,)
    with torch.no_grad():
        target = batch["reward"] + batch["bootstrap"] * critic.value(batch["next_lowdim"])
    x = torch.cat([batch["lowdim"], batch["action"].flatten(1)], -1)
    expected = (F.mse_loss(critic.qs[0](x).squeeze(-1), target)
                + F.mse_loss(critic.qs[1](x).squeeze(-1), target))  # fmt: skip
    _, info = critic.loss(batch, expectile=0.9)
    assert info["q_loss"] == pytest.approx(expected.item(), rel=1e-6)


def test_critic_heads_lower_bound():
    """Two heads at pessimism 1 score min(Q1, Q2) (the authors' twin Q); more heads score
    mean - pessimism * std, so the heads' disagreement lowers an action's score."""
    torch.manual_seed(0)
    feat, action = torch.randn(5, 2), torch.randn(5, 1, 2)
    x = torch.cat([feat, action.flatten(1)], -1)
    twin = IQLCritic(ObsEncoder(2, (), 8, 8), action_dim=2, hidden=[16])
    q = twin.q_heads(x)
    assert torch.allclose(twin.q_lower(feat, action), q.min(0).values, atol=1e-6)
    five = IQLCritic(ObsEncoder(2, (), 8, 8), action_dim=2, hidden=[16], heads=5, pessimism=2.0)
    q = five.q_heads(x)
    assert q.shape == (5, 5)
    expected = q.mean(0) - 2.0 * (q - q.mean(0)).pow(2).mean(0).sqrt()
    assert torch.allclose(five.q_lower(feat, action), expected, atol=1e-6)


def test_mlp_denoiser_policy_shapes_and_loss():
    torch.manual_seed(0)
    pol = DiffusionPolicy(ObsEncoder(3, (), 8, 8), action_dim=2, horizon=4, n_obs_steps=2,
                          down_dims=[16], diffusion_steps=10, denoiser="mlp", mlp_width=32,
                          mlp_blocks=2, lipschitz_hidden=16)  # fmt: skip
    assert isinstance(pol.denoiser, MLPDenoiser)
    assert pol.lipschitz_head[0].out_features == 16
    lowdim, actions = torch.randn(5, 2, 3), torch.randn(5, 4, 2)
    loss = pol.loss(lowdim, {}, actions)
    loss.backward()
    assert loss.item() > 0 and pol.denoiser.inp.weight.grad is not None
    cond = pol.condition(lowdim, {})
    out = pol.sample(cond, pol.sampler("ddim", 3), torch.Generator().manual_seed(0))
    assert out.shape == (5, 4, 2)
    with pytest.raises(ValueError, match="policy.denoiser 'transformer'"):
        DiffusionPolicy(ObsEncoder(3, (), 8, 8), 2, 4, 2, [16], 10, denoiser="transformer")


@pytest.mark.parametrize("denoiser", ["mlp", "unet"])
def test_activation_is_the_denoisers_only_nonlinearity(denoiser):
    """`policy.activation: silu` puts SiLU wherever Mish was (step embedding, blocks, FiLM,
    output), in both denoisers; the same weights count; an unknown name is refused."""
    torch.manual_seed(0)
    args = (ObsEncoder(3, (), 8, 8), 2, 4, 2, [16, 32], 10)
    kinds = {}
    for act in ("mish", "silu"):
        pol = DiffusionPolicy(*args, denoiser=denoiser, mlp_width=32, mlp_blocks=2, activation=act)
        kinds[act] = {type(m).__name__ for m in pol.denoiser.modules()} & {"Mish", "SiLU"}
        kinds[act, "params"] = sum(p.numel() for p in pol.parameters())
        pol.loss(torch.randn(5, 2, 3), {}, torch.randn(5, 4, 2)).backward()
    assert kinds["mish"] == {"Mish"} and kinds["silu"] == {"SiLU"}
    assert kinds["mish", "params"] == kinds["silu", "params"]
    with pytest.raises(ValueError, match="policy.activation 'tanh'"):
        DiffusionPolicy(*args, denoiser=denoiser, activation="tanh")


def test_expert_share_fills_every_batch():
    """With expert_share 0.5 each batch of 8 holds 4 of the 5 expert positions and 4 from the
    95 other originals and the 16 augmented samples (positions 100-115), however few expert
    rows there are."""
    expert = np.zeros(100, bool)
    expert[:5] = True
    rng = np.random.default_rng(0)
    batches = list(expert_share_batches(expert, 16, 0.5, 8, 400, rng))
    assert len(batches) == 400 and {kind for kind, _ in batches} == {"all"}
    idx = np.stack([i for _, i in batches])
    assert idx.shape == (400, 8) and (idx[:, :4] < 5).all() and (idx[:, 4:] >= 5).all()
    assert idx.max() <= 115 and (idx[:, 4:] >= 100).mean() == pytest.approx(16 / 111, abs=0.03)
    with pytest.raises(ValueError, match="needs expert and non-expert samples"):
        next(expert_share_batches(np.ones(4, bool), 0, 0.5, 8, 1, rng))


def test_augment_share_fills_every_batch():
    """With augment_share 0.25 each batch of 8 holds 2 of the 3 augmented samples (positions
    100-102), however few there are, and 6 originals."""
    rng = np.random.default_rng(0)
    batches = list(augment_share_batches(100, 3, 0.25, 8, 300, rng))
    assert len(batches) == 300 and {kind for kind, _ in batches} == {"all"}
    idx = np.stack([i for _, i in batches])
    assert idx.shape == (300, 8) and ((idx >= 100).sum(1) == 2).all()
    assert idx.max() == 102 and len(np.unique(idx[idx < 100])) > 90


def test_bf16_precision_trains_fp32_weights_on_a_bf16_loss(cell, tmp_path):
    """`policy.precision: bf16` runs the loss under autocast: the weights stay fp32 and move
    almost, not exactly, as fp32 training moves them."""
    from rise.config import load, section
    from rise.train import train_policy

    hp = {**section(load("params.yaml"), "smoke", "policy"), "steps": 5, "denoiser": "mlp"}
    files = {s: str(cell / f"{s}.hdf5") for s in ("expert", "play")}
    trained = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.pt"
        train_policy(task="mini_square_peg", obs="lowdim", files=files, pairs=None,
                     critic_path=None, lam=0.0, hp={**hp, "precision": precision}, seed=0,
                     out=str(out), curve=str(tmp_path / f"{precision}.csv"))  # fmt: skip
        trained[precision] = torch.load(out, weights_only=True)["state_dict"]
    fp32, bf16 = trained["fp32"], trained["bf16"]
    assert all(v.dtype == torch.float32 for v in bf16.values() if v.is_floating_point())
    diff = [(fp32[k] - bf16[k]).abs().max().item() for k in fp32 if fp32[k].is_floating_point()]
    assert 0 < max(diff) < 0.05


def test_an_unweighted_critic_trains_bcus_policy_bit_for_bit(cell, tmp_path):
    """Why the workflow trains IDQL's policy once, as BCU's, under `weighting: none` and
    `expert_share: 0` (rise.methods.trained_policy): with the critic given, the checkpoint
    is BCU's exactly; with advantage weights it is not."""
    from rise.config import load, section
    from rise.methods import trained_policy
    from rise.train import train_policy

    hp = {**section(load("params.yaml"), "smoke", "policy"), "steps": 4, "denoiser": "mlp"}
    files = {s: str(cell / f"{s}.hdf5") for s in ("expert", "play")}

    def weights(critic, weighting):
        out = tmp_path / f"{critic is None}_{weighting}.pt"
        train_policy(task="mini_square_peg", obs="lowdim", files=files, pairs=None,
                     critic_path=critic, lam=0.0, hp={**hp, "weighting": weighting}, seed=0,
                     out=str(out), curve=str(tmp_path / "curve.csv"))  # fmt: skip
        return torch.load(out, weights_only=True)["state_dict"]

    bcu, critic = weights(None, "none"), str(cell / "c.pt")
    for weighting, same in (("none", True), ("advantage", False)):
        idql = weights(critic, weighting)
        assert all(torch.equal(bcu[k], idql[k]) for k in bcu) == same, weighting
        shared = trained_policy("idql", {"weighting": weighting, "expert_share": 0.0})
        assert shared == ("bcu" if same else "idql")
    unweighted = {"weighting": "none", "expert_share": 0.0}
    assert trained_policy("idql_ne0.5", unweighted) == "bcu_ne0.5"
    assert trained_policy("idql", {**unweighted, "expert_share": 0.5}) == "idql"
    assert trained_policy("rise_lam0.1_eps0.15", unweighted) == "rise_lam0.1_eps0.15"
    assert trained_policy("idqlsn_lam0.1", unweighted) == "idqlsn_lam0.1"
