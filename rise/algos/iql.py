"""IQL critic (Kostrikov et al.) on 1/0 expert labels: twin Q with Polyak targets and an
expectile-regressed V. Only the first action of a chunk is scored.

V(s)    <- expectile_tau of min(Q1_targ, Q2_targ)(s, a)
Q(s, a) <- r + gamma * (1 - done) * V(s')
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

    def __init__(self, encoder: ObsEncoder, action_dim: int, hidden: list[int]):
        super().__init__()
        self.encoder = encoder
        f = encoder.out_dim
        self.q1 = mlp([f + action_dim, *hidden, 1])
        self.q2 = mlp([f + action_dim, *hidden, 1])
        self.v = mlp([f, *hidden, 1])
        self.q1_targ = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_targ = copy.deepcopy(self.q2).requires_grad_(False)

    def q_min(self, feat: torch.Tensor, action: torch.Tensor, target: bool = False):
        x = torch.cat([feat, action], -1)
        q1, q2 = (self.q1_targ, self.q2_targ) if target else (self.q1, self.q2)
        return torch.min(q1(x), q2(x)).squeeze(-1)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        return self.v(feat).squeeze(-1)

    def advantage(self, lowdim, images, action) -> torch.Tensor:
        feat = self.encoder(lowdim, images)
        return self.q_min(feat, action) - self.value(feat)

    def loss(self, batch: dict, discount: float, expectile: float) -> tuple[torch.Tensor, dict]:
        feat = self.encoder(batch["lowdim"], batch["images"])
        with torch.no_grad():
            next_feat = self.encoder(batch["next_lowdim"], batch["next_images"])
            q_targ = self.q_min(feat.detach(), batch["action"], target=True)
            next_v = self.value(next_feat)
            target = batch["reward"] + discount * (1.0 - batch["done"]) * next_v
        v_loss = expectile_loss(q_targ - self.value(feat), expectile)
        x = torch.cat([feat, batch["action"]], -1)
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
