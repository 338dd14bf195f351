"""The methods of Table I as switches over one pipeline (data, critic, penalty, augmentation).

A method is never a fork of the pipeline: every method reads the same datasets, encoders and
evaluation. The diffusion methods (BC, BCU, ILID, IDQL, RISE) differ only in which data they
train on, whether an IQL critic weights and ranks their actions, whether the spectral-norm
penalty is on, and whether kNN augmentation pairs are used; ILID first picks the
non-expert rows it imitates with a state classifier (rise.algos.ilid). SQIL and CQL train a
Gaussian actor-critic instead of a diffusion policy (rise.algos.sqil, rise.algos.cql).

A trained variant is named by a tag that carries the values it depends on
(``rise_lam0.1_eps0.15``), so artifact paths can never confuse two values of a swept knob.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    nonexpert: bool  # train on expert + non-expert data (else expert only)
    critic: bool  # IQL critic: advantage weights in training, best-of-N extraction at test
    lipschitz: bool  # spectral-norm penalty, strength `lambda`
    augment: bool  # distance-based augmentation, threshold `epsilon`
    family: str = "diffusion"  # diffusion | ilid (diffusion on selected rows) | actor_critic

    @property
    def sections(self) -> list[str]:
        """The params.yaml sections its training reads."""
        return {"diffusion": ["policy"], "ilid": ["policy", "baselines"]}.get(
            self.family, ["baselines"]
        )

    @property
    def code(self) -> list[str]:
        """The algorithm files its training runs (DVC dependencies)."""
        return {
            "diffusion": ["rise/algos/diffusion_policy.py"],
            "ilid": ["rise/algos/diffusion_policy.py", "rise/algos/ilid.py"],
            "actor_critic": ["rise/algos/actor_critic.py", f"rise/algos/{self.name.lower()}.py"],
        }[self.family]


# Table I's columns, in the paper's order.
METHODS = {
    "BC": Method("BC", nonexpert=False, critic=False, lipschitz=False, augment=False),
    "BCU": Method("BCU", nonexpert=True, critic=False, lipschitz=False, augment=False),
    "ILID": Method("ILID", True, critic=False, lipschitz=False, augment=False, family="ilid"),
    "SQIL": Method("SQIL", True, False, False, False, family="actor_critic"),
    "CQL": Method("CQL", True, False, False, False, family="actor_critic"),
    "IDQL": Method("IDQL", nonexpert=True, critic=True, lipschitz=False, augment=False),
    "RISE": Method("RISE", nonexpert=True, critic=True, lipschitz=True, augment=True),
    # Fig 5b's middle step: offline RL + spectral norm, no augmentation.
    "IDQLSN": Method("IDQLSN", nonexpert=True, critic=True, lipschitz=True, augment=False),
}


def variant(method: str, lam, eps, ne=None) -> str:
    """Tag of a trained policy: method name plus the knob values it depends on.

    `lam` and `eps` are written as given (str of the YAML value, or a DVC `${...}` template),
    so Snakemake and DVC produce the same path. `ne`, the fraction of the non-expert data
    used (Fig 6), is only written when given (all of it otherwise).
    """
    m = METHODS[method]
    tag = m.name.lower()
    if m.lipschitz:
        tag += f"_lam{lam}"
    if m.augment:
        tag += f"_eps{eps}"
    if ne is not None and m.nonexpert:
        tag += f"_ne{ne}"
    return tag


def trained_policy(tag: str, policy_hp: dict) -> str:
    """The variant whose checkpoint a cell evaluates: its own, or BCU's when its training is
    BCU's bit for bit (a critic that neither weights the loss nor shares batches, no penalty,
    no augmentation: IDQL under `weighting: none`, `expert_share: 0`), so it is trained once.
    The critic still picks among the candidates at test time; tests/test_algos.py checks the
    two trainings give the same weights."""
    method, knobs = parse_variant(tag)
    unused_critic = policy_hp["weighting"] == "none" and not policy_hp["expert_share"]
    plain = method.family == "diffusion" and not (method.lipschitz or method.augment)
    if method.critic and plain and unused_critic:
        return variant("BCU", None, None, knobs.get("ne"))
    return tag


def knob_values(knobs: list[str]) -> dict[str, str]:
    """{"lam": "0.1", "eps": "0.15"} from tag parts such as "lam0.1" and "eps0.15" (policy
    variants and critic tags write their knobs alike); ValueError on a malformed part."""
    parsed = [re.fullmatch(r"([a-z]+)(\d[0-9.e+-]*)", knob) for knob in knobs]
    if not all(parsed):
        raise ValueError(f"malformed knobs {knobs}")
    return {m.group(1): m.group(2) for m in parsed}


def parse_variant(tag: str) -> tuple[Method, dict[str, str]]:
    """Inverse of `variant`: the method and its knob values as written in the tag
    ({"lam": "0.1", "eps": "0.15"}, plus "ne" when given); rejects malformed tags."""
    name, *knobs = tag.split("_")
    by_tag = {m.lower(): m for m in METHODS}
    if name not in by_tag:
        raise ValueError(f"variant {tag!r}: unknown method {name!r}; known: {sorted(METHODS)}")
    method = METHODS[by_tag[name]]
    try:
        values = knob_values(knobs)
        [float(v) for v in values.values()]
    except ValueError:
        raise ValueError(
            f"variant {tag!r}: knobs must read lam<number>, eps<number> or ne<number>"
        ) from None
    expected = {k for k, on in (("lam", method.lipschitz), ("eps", method.augment)) if on}
    if method.nonexpert and "ne" in values:
        expected.add("ne")
    if set(values) != expected or len(values) != len(knobs):
        raise ValueError(f"variant {tag!r}: {method.name} takes knobs {sorted(expected)}")
    return method, values
