"""IQL critic (Kostrikov et al.) on 1/0 expert labels: an ensemble of Q heads with Polyak
targets and an expectile-regressed V. Q scores the first `chunk` actions of an action
chunk: one (the authors' code) or the executed chunk with an n-step backup (as in
Q-chunking, Li, Zhou and Levine 2025), which separates candidate chunks by what they do
over the steps they run.

V(s)                <- expectile_tau of Q_lower_targ(s, a_t..a_t+n-1)
Q(s, a_t..a_t+n-1)  <- sum_i<m gamma^i r_t+i + gamma^m (1 - done) V(s_t+m)
with m = min(n, the steps left in the episode); n = 1 is the one-step backup.

Q_lower is the heads' mean minus `pessimism` times their spread (population std): with two
heads and pessimism 1 it is exactly min(Q1, Q2), the authors' twin Q. More heads score an
action the data never shows by how much they disagree on it (as SAC-N / EDAC do), which
keeps the best-of-N pick among a policy's candidates on chunks the data supports.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from rise.nets import ObsEncoder, mlp, polyak


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric L2: weight `expectile` where diff > 0, 1 - expectile where diff < 0."""
    weight = torch.where(diff > 0, expectile, 1.0 - expectile)
    return (weight * diff.pow(2)).mean()


class IQLCritic(nn.Module):
    """Q heads and V over the features of one observation frame; image critics own an encoder."""

    def __init__(
        self,
        encoder: ObsEncoder,
        action_dim: int,
        hidden: list[int],
        chunk: int = 1,
        heads: int = 2,
        pessimism: float = 1.0,
    ):
        super().__init__()
        self.encoder, self.chunk, self.pessimism = encoder, chunk, pessimism
        f = encoder.out_dim
        self.qs = nn.ModuleList(mlp([f + chunk * action_dim, *hidden, 1]) for _ in range(heads))
        self.v = mlp([f, *hidden, 1])
        self.qs_targ = copy.deepcopy(self.qs).requires_grad_(False)

    def q_heads(self, x: torch.Tensor, target: bool = False) -> torch.Tensor:
        """(heads, B) Q of each head on inputs [features, flattened actions]."""
        return torch.stack([q(x).squeeze(-1) for q in (self.qs_targ if target else self.qs)])

    def q_lower(self, feat: torch.Tensor, action: torch.Tensor, target: bool = False):
        """Q_lower of actions (B, chunk, A) or, for a one-action critic, (B, A)."""
        q = self.q_heads(torch.cat([feat, action.reshape(len(feat), -1)], -1), target)
        return q.mean(0) - self.pessimism * q.std(0, unbiased=False)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        return self.v(feat).squeeze(-1)

    def advantage(self, lowdim, images, action) -> torch.Tensor:
        feat = self.encoder(lowdim, images)
        return self.q_lower(feat, action) - self.value(feat)

    def loss(self, batch: dict, expectile: float) -> tuple[torch.Tensor, dict]:
        """`reward` is the n-step return, `bootstrap` gamma^m (1 - done) (rise.pool.Pool.nstep)."""
        feat = self.encoder(batch["lowdim"], batch["images"])
        with torch.no_grad():
            next_feat = self.encoder(batch["next_lowdim"], batch["next_images"])
            q_targ = self.q_lower(feat.detach(), batch["action"], target=True)
            next_v = self.value(next_feat)
            target = batch["reward"] + batch["bootstrap"] * next_v
        v_loss = expectile_loss(q_targ - self.value(feat), expectile)
        x = torch.cat([feat, batch["action"].flatten(1)], -1)
        q = self.q_heads(x)
        q_loss = F.mse_loss(q, target.expand_as(q)) * len(q)  # the sum of the heads' losses
        return q_loss + v_loss, {
            "q_loss": q_loss.item(),
            "v_loss": v_loss.item(),
            "q_mean": q_targ.mean().item(),
            "v_max": next_v.max().item(),
        }

    def update_targets(self, tau: float) -> None:
        polyak(list(zip(self.qs, self.qs_targ, strict=True)), tau)
