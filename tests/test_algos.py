"""Numbers the algorithms must get right."""

import numpy as np
import pytest
import torch

from rise.algos.diffusion_policy import DiffusionPolicy, spectral_norm
from rise.algos.iql import expectile_loss
from rise.nets import ObsEncoder
from rise.pool import alternating_batches
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
