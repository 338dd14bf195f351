"""CQL(H) (Kumar et al. 2020, "Conservative Q-Learning for Offline Reinforcement Learning")
on the 1/0 expert labels.

Offline SAC over-estimates Q on actions the data never tried, and the actor exploits
exactly those errors. CQL(H) adds to each critic's TD loss

    cql_alpha * ( log sum_a exp Q(s, a)  -  Q(s, a_data) ),

pushing Q down everywhere (soft maximum over actions) and back up on the data's actions.
The log-sum-exp over the continuous action space is estimated by importance sampling from
N uniform actions (density 2^-A on [-1, 1]^A), N policy actions at s and N policy actions at
s' (all scored by Q at s), each Q minus its log-density, as in the authors' code and CORL.
The log(3N) normaliser is left out; it shifts the reported penalty but not its gradient.

hp keys beyond OfflineSAC's: `cql_alpha` (5.0), `cql_samples` (N, 10). As in the reference
implementations (young-geng/CQL, CORL), the TD target has no entropy bonus by default
(`backup_entropy` False) and the fixed-alpha variant is used (no Lagrange threshold).
"""

from __future__ import annotations

import math

import torch

from rise.algos.actor_critic import OfflineSAC


class CQL(OfflineSAC):
    backup_entropy = False

    def critic_penalty(self, feat, next_feat, q1, q2) -> tuple[torch.Tensor, dict]:
        n = int(self.hp.get("cql_samples", 10))
        weight = float(self.hp.get("cql_alpha", 5.0))
        b, a_dim = feat.shape[0], self.action_dim
        rep = feat.repeat_interleave(n, 0)  # (B * N, F); the penalty trains an image encoder
        with torch.no_grad():  # sampled actions are constants; only Q is pushed
            rand = torch.empty(b * n, a_dim, device=feat.device).uniform_(-1.0, 1.0)
            rand_logp = torch.full((b * n,), -a_dim * math.log(2.0), device=feat.device)
            pi, pi_logp = self.actor.sample(feat.detach().repeat_interleave(n, 0))
            pi_next, pi_next_logp = self.actor.sample(next_feat.repeat_interleave(n, 0))
        cat1, cat2 = [], []
        for actions, logp in ((rand, rand_logp), (pi, pi_logp), (pi_next, pi_next_logp)):
            r1, r2 = self.critic(rep, actions)
            cat1.append((r1 - logp).reshape(b, n))
            cat2.append((r2 - logp).reshape(b, n))
        gap1 = torch.logsumexp(torch.cat(cat1, 1), 1) - q1
        gap2 = torch.logsumexp(torch.cat(cat2, 1), 1) - q2
        penalty = weight * (gap1.mean() + gap2.mean())
        return penalty, {"cql_penalty": penalty.item()}
