"""IQL critic (Kostrikov et al.) on 1/0 expert labels: twin Q with Polyak targets and an
expectile-regressed V. Q scores the first `chunk` actions of an action chunk: one (the
authors' code) or the executed chunk with an n-step backup (as in Q-chunking, Li, Zhou and
Levine 2025), which separates candidate chunks by what they do over the steps they run.

V(s)                <- expectile_tau of min(Q1_targ, Q2_targ)(s, a_t..a_t+n-1)
Q(s, a_t..a_t+n-1)  <- sum_i<m gamma^i r_t+i + gamma^m (1 - done) V(s_t+m)
with m = min(n, the steps left in the episode); n = 1 is the one-step backup.
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
    """Q1, Q2, V over the features of one observation frame; image critics own an encoder."""

    def __init__(self, encoder: ObsEncoder, action_dim: int, hidden: list[int], chunk: int = 1):
        super().__init__()
        self.encoder, self.chunk = encoder, chunk
        f = encoder.out_dim
        self.q1 = mlp([f + chunk * action_dim, *hidden, 1])
        self.q2 = mlp([f + chunk * action_dim, *hidden, 1])
        self.v = mlp([f, *hidden, 1])
        self.q1_targ = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_targ = copy.deepcopy(self.q2).requires_grad_(False)

    def q_min(self, feat: torch.Tensor, action: torch.Tensor, target: bool = False):
        """min(Q1, Q2) of actions (B, chunk, A) or, for a one-action critic, (B, A)."""
        x = torch.cat([feat, action.reshape(len(feat), -1)], -1)
        q1, q2 = (self.q1_targ, self.q2_targ) if target else (self.q1, self.q2)
        return torch.min(q1(x), q2(x)).squeeze(-1)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        return self.v(feat).squeeze(-1)

    def advantage(self, lowdim, images, action) -> torch.Tensor:
        feat = self.encoder(lowdim, images)
        return self.q_min(feat, action) - self.value(feat)

    def loss(self, batch: dict, expectile: float) -> tuple[torch.Tensor, dict]:
        """`reward` is the n-step return, `bootstrap` gamma^m (1 - done) (rise.pool.Pool.nstep)."""
        feat = self.encoder(batch["lowdim"], batch["images"])
        with torch.no_grad():
            next_feat = self.encoder(batch["next_lowdim"], batch["next_images"])
            q_targ = self.q_min(feat.detach(), batch["action"], target=True)
            next_v = self.value(next_feat)
            target = batch["reward"] + batch["bootstrap"] * next_v
        v_loss = expectile_loss(q_targ - self.value(feat), expectile)
        x = torch.cat([feat, batch["action"].flatten(1)], -1)
        q_loss = F.mse_loss(self.q1(x).squeeze(-1), target) + F.mse_loss(
            self.q2(x).squeeze(-1), target
        )
        return q_loss + v_loss, {
            "q_loss": q_loss.item(),
            "v_loss": v_loss.item(),
            "q_mean": q_targ.mean().item(),
            "v_max": next_v.max().item(),
        }

    def update_targets(self, tau: float) -> None:
        polyak([(self.q1, self.q1_targ), (self.q2, self.q2_targ)], tau)
