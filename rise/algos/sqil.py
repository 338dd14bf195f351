"""SQIL (Reddy et al. 2019, "SQIL: Imitation Learning via Reinforcement Learning with Sparse
Rewards"), offline.

SQIL turns imitation into RL with a constant reward: demonstration transitions get r = 1,
the agent's own transitions get r = 0, and a soft Q-learner (SAC for continuous actions)
is trained on batches drawn half from each buffer. The policy is thereby pushed back
towards demonstrated states whenever it drifts, which is the robustness the paper is after.

Offline there is no agent experience: the non-expert data stand in for it. The 1/0 label
is the reward the batch already carries (rise.pool: expert rows 1, others 0), so the method
is plain offline SAC on those rewards plus the paper's 50/50 batch balance
(`balanced_indices`), which matters here because the expert data are the small part.
Unlike the original, nothing is ever collected, and nothing limits the policy to actions
seen in the data (that is CQL's job, rise.algos.cql).
"""

from __future__ import annotations

import numpy as np

from rise.algos.actor_critic import OfflineSAC


def balanced_indices(reward: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices, half drawn (with replacement) from expert rows (reward > 0.5), half from
    the others; uniform over all rows when either side is empty."""
    expert = np.flatnonzero(reward > 0.5)
    other = np.flatnonzero(reward <= 0.5)
    if len(expert) == 0 or len(other) == 0:
        return rng.integers(0, len(reward), batch_size)
    half = batch_size // 2
    return np.concatenate([rng.choice(expert, half), rng.choice(other, batch_size - half)])


class SQIL(OfflineSAC):
    """Offline SAC on the 1/0 expert labels with SQIL's balanced batches."""

    def batch_indices(self, reward: np.ndarray, batch_size: int, rng: np.random.Generator):
        return balanced_indices(reward, batch_size, rng)
