"""ILID (Yue et al. 2024, "How to Leverage Diverse Demonstrations in Offline Imitation
Learning"): pick the non-expert behaviour worth imitating by where it leads.

The paper's idea: an action in the imperfect data is good if its *resultant state* looks
like an expert state, because from there the expert knows how to finish; and the few steps
that led there are good too. So (1) a state-only discriminator is trained to tell expert
states from the rest, (2) every non-expert transition whose resultant state scores above a
threshold is selected together with the `rollback` transitions before it in its episode,
and (3) the policy is cloned from the expert data plus the selected data.

Simplifications here: the classifier is a plain class-balanced binary cross-entropy of
expert (reward 1) against non-expert (reward 0) rows, not the paper's exact discriminator
objective; selection is a hard threshold on the score of whichever state the caller scores
(score `next_lowdim` / `next_images` to use resultant states as in the paper); and the
selected rows simply join the imitation data of the behaviour policy instead of going
through the paper's own behaviour-cloning objective for expert plus selected data.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rise.nets import ObsEncoder, adam, mlp


class StateClassifier(nn.Module):
    """p(expert | s) from encoder features; its Adam optimizer is kept out of state_dict."""

    def __init__(self, encoder: ObsEncoder, hidden: list[int], lr: float):
        super().__init__()
        self.encoder = encoder
        self.net = mlp([encoder.out_dim, *hidden, 1])
        self.optimizer = adam(self.parameters(), lr)

    def logits(self, lowdim: torch.Tensor, images: dict) -> torch.Tensor:
        return self.net(self.encoder(lowdim, images)).squeeze(-1)

    def train_step(self, batch: dict) -> dict:
        """BCE on batch["lowdim"/"images"] with label batch["reward"] > 0.5; each class's mean
        loss gets half the weight, since expert rows are usually the small part."""
        logits = self.logits(batch["lowdim"], batch["images"])
        label = (batch["reward"] > 0.5).float()
        per_row = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
        pos = (per_row * label).sum() / label.sum().clamp(min=1.0)
        neg = (per_row * (1.0 - label)).sum() / (1.0 - label).sum().clamp(min=1.0)
        loss = 0.5 * (pos + neg)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        accuracy = ((logits > 0).float() == label).float().mean()
        return {"loss": loss.item(), "accuracy": accuracy.item()}

    @torch.no_grad()
    def score(self, lowdim: torch.Tensor, images: dict) -> torch.Tensor:
        """(B,) probability that each state is expert-like."""
        return torch.sigmoid(self.logits(lowdim, images))


def select_rows(
    scores: np.ndarray,
    episode: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    threshold: float,
    rollback: int,
    reward: np.ndarray,
) -> np.ndarray:
    """Sorted unique non-expert rows to add to the imitation data.

    Per row: `scores` (expert-likeness), `episode` (episode id), `reward` (1 expert, 0 not,
    as rise.pool.Pool.reward). Per episode: `starts` (first row), `lengths` (rows), the
    layout of rise.pool.Pool. Every non-expert row scoring >= threshold selects itself and
    the `rollback` rows before it, clamped at its episode's first row.
    """
    starts, lengths = np.asarray(starts), np.asarray(lengths)
    expert = np.asarray(reward) > 0.5
    hits = np.flatnonzero((np.asarray(scores) >= threshold) & ~expert)
    ep = np.asarray(episode)[hits]
    rows = hits[:, None] + np.arange(-int(rollback), 1)[None, :]
    rows = np.clip(rows, starts[ep][:, None], (starts + lengths - 1)[ep][:, None])
    rows = np.unique(rows)
    return rows[~expert[rows]].astype(np.int64)
