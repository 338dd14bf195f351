"""Shared pieces of the actor-critic baselines (SQIL, CQL): a tanh-squashed Gaussian actor,
twin Q-networks with Polyak targets, and offline SAC with automatic entropy tuning.

All actions live in the normalised space [-1, 1] (rise.pool.Normalizer.act). The methods
differ only in how they sample batches (`batch_indices`) and in an extra critic loss term
(`critic_penalty`), so each method file stays a thin subclass of `OfflineSAC`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rise.nets import ObsEncoder, adam, mlp, polyak

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # keeps the Gaussian away from a point mass and a flat line


class TanhGaussianActor(nn.Module):
    """pi(a | s) = tanh(N(mean(s), std(s))), so samples always lie inside [-1, 1]."""

    def __init__(self, feat_dim: int, action_dim: int, hidden: list[int]):
        super().__init__()
        self.trunk = nn.Sequential(mlp([feat_dim, *hidden]), nn.ReLU())
        self.mean = nn.Linear(hidden[-1], action_dim)
        self.log_std = nn.Linear(hidden[-1], action_dim)

    def params(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the pre-tanh Gaussian; log_std clamped to [LOG_STD_MIN, MAX]."""
        h = self.trunk(feat)
        return self.mean(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)

    @staticmethod
    def _log_prob(mean, log_std, pre_tanh) -> torch.Tensor:
        # log pi(a) = log N(u) - sum log(1 - tanh(u)^2) (SAC, appendix C), the correction
        # written stably as 2 * (log 2 - u - softplus(-2u)) (as in Spinning Up, CORL).
        normal = torch.distributions.Normal(mean, log_std.exp()).log_prob(pre_tanh)
        jacobian = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
        return (normal - jacobian).sum(-1)

    def sample(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised (action (B, A), log_prob (B,)); gradients flow through both."""
        mean, log_std = self.params(feat)
        pre = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(pre), self._log_prob(mean, log_std, pre)

    def log_prob(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | s) of a given action; actions at exactly +-1 are nudged inside."""
        mean, log_std = self.params(feat)
        eps = torch.finfo(action.dtype).eps
        pre = torch.atanh(action.clamp(-1.0 + eps, 1.0 - eps))
        return self._log_prob(mean, log_std, pre)

    def mode(self, feat: torch.Tensor) -> torch.Tensor:
        """Deterministic action for evaluation: tanh of the Gaussian mean."""
        return torch.tanh(self.params(feat)[0])


class TwinQ(nn.Module):
    """Q1, Q2 over (features, action) with frozen Polyak copies (IQLCritic's layout, no V)."""

    def __init__(self, feat_dim: int, action_dim: int, hidden: list[int]):
        super().__init__()
        self.q1 = mlp([feat_dim + action_dim, *hidden, 1])
        self.q2 = mlp([feat_dim + action_dim, *hidden, 1])
        self.q1_targ = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_targ = copy.deepcopy(self.q2).requires_grad_(False)

    def forward(self, feat: torch.Tensor, action: torch.Tensor):
        """(Q1, Q2), each (B,)."""
        x = torch.cat([feat, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def target_min(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([feat, action], -1)
        return torch.min(self.q1_targ(x), self.q2_targ(x)).squeeze(-1)

    def update_targets(self, tau: float) -> None:
        polyak([(self.q1, self.q1_targ), (self.q2, self.q2_targ)], tau)


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad()
    loss.backward()
    opt.step()


class OfflineSAC(nn.Module):
    """Soft actor-critic (Haarnoja et al. 2018) trained on a fixed batch of transitions.

    hp keys: `hidden` (list of ints), `lr`, `discount`, `tau`; optional `init_alpha` (1.0)
    and `backup_entropy` (subclass default; whether the TD target subtracts alpha * log pi).
    The temperature is tuned towards a target entropy of -action_dim.

    Encoder: one ObsEncoder is shared. With low-dim observations it has no parameters (it
    only concatenates), so sharing is free. With cameras, only the critic loss trains it (its
    parameters sit in the critic optimizer) and the actor sees detached features, as in DrQ /
    SAC-AE: the actor's objective would otherwise pull features towards whatever makes Q look
    high. Next-state features come from the same (online) encoder, without gradient.

    Optimizers live in `self.optimizers` (a plain dict), so `state_dict()` holds only tensors.
    """

    backup_entropy = True

    def __init__(self, encoder: ObsEncoder, action_dim: int, hp: dict):
        super().__init__()
        self.encoder = encoder
        self.action_dim = action_dim
        self.hp = dict(hp)
        self.backup_entropy = bool(self.hp.get("backup_entropy", self.backup_entropy))
        feat = encoder.out_dim
        self.actor = TanhGaussianActor(feat, action_dim, hp["hidden"])
        self.critic = TwinQ(feat, action_dim, hp["hidden"])
        self.log_alpha = nn.Parameter(torch.tensor(math.log(hp.get("init_alpha", 1.0))))
        self.target_entropy = -float(action_dim)
        trainable = [*self.encoder.parameters(), *self.critic.parameters()]
        self.optimizers = {
            "critic": adam(trainable, hp["lr"]),
            "actor": adam(self.actor.parameters(), hp["lr"]),
            "alpha": adam([self.log_alpha], hp["lr"]),
        }

    def batch_indices(self, reward: np.ndarray, batch_size: int, rng: np.random.Generator):
        """Rows of the next batch: uniform over the data (SQIL overrides this)."""
        return rng.integers(0, len(reward), batch_size)

    def critic_penalty(self, feat, next_feat, q1, q2) -> tuple[torch.Tensor, dict]:
        """Extra critic loss added to the TD error (CQL's conservative term); none for SAC."""
        return q1.new_zeros(()), {}

    def train_step(self, batch: dict) -> dict:
        """One critic, actor and temperature update on a batch (rise.train's critic format)."""
        hp = self.hp
        alpha = self.log_alpha.detach().exp()
        feat = self.encoder(batch["lowdim"], batch["images"])
        with torch.no_grad():
            next_feat = self.encoder(batch["next_lowdim"], batch["next_images"])
            next_action, next_logp = self.actor.sample(next_feat)
            next_q = self.critic.target_min(next_feat, next_action)
            if self.backup_entropy:
                next_q = next_q - alpha * next_logp
            target = batch["reward"] + hp["discount"] * (1.0 - batch["done"]) * next_q
        q1, q2 = self.critic(feat, batch["action"])
        td_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        penalty, info = self.critic_penalty(feat, next_feat, q1, q2)
        _step(self.optimizers["critic"], td_loss + penalty)

        feat = feat.detach()  # the actor never trains the encoder
        action, logp = self.actor.sample(feat)
        q_pi = torch.min(*self.critic(feat, action))
        actor_loss = (alpha * logp - q_pi).mean()
        _step(self.optimizers["actor"], actor_loss)
        # alpha falls when the entropy -log pi is above target, rises when below
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        _step(self.optimizers["alpha"], alpha_loss)
        self.critic.update_targets(hp["tau"])
        return {
            "q_loss": td_loss.item(),
            "actor_loss": actor_loss.item(),
            "alpha": alpha.item(),
            "entropy": -logp.mean().item(),
            "q_mean": q1.mean().item(),
            **info,
        }

    @torch.no_grad()
    def q_value(self, lowdim, images, action) -> torch.Tensor:
        """min(Q1, Q2)(s, a), (B,)."""
        return torch.min(*self.critic(self.encoder(lowdim, images), action))

    @torch.no_grad()
    def act(self, lowdim, images, deterministic: bool = True) -> torch.Tensor:
        """(B, action_dim) actions in [-1, 1]: tanh(mean), or a sample from the policy."""
        feat = self.encoder(lowdim, images)
        return self.actor.mode(feat) if deterministic else self.actor.sample(feat)[0]
