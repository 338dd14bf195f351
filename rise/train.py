"""Stages `train-critic` and `train-policy`: data pool in, checkpoint + training curve out.

Checkpoints are plain dicts of tensors and numbers (`torch.save`), loaded with
`weights_only=True`; they carry what is needed to rebuild the model (sizes, observation
keys, normaliser), so evaluation needs nothing but the file.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import sys

import numpy as np
import torch
from tqdm import tqdm

from rise.algos.cql import CQL
from rise.algos.diffusion_policy import DiffusionPolicy
from rise.algos.ilid import StateClassifier, select_rows
from rise.algos.iql import IQLCritic
from rise.algos.sqil import SQIL, balanced_indices
from rise.atomic import save_torch, write_text
from rise.config import ConfigError
from rise.nets import ObsEncoder, adam, autocast, resolve_device, scheduled_lr
from rise.pool import (
    Normalizer,
    Pool,
    alternating_batches,
    augment_share_batches,
    augmented_rows,
    expert_share_batches,
    load_pool,
    obs_keys,
)
from rise.resume import Resumable
from rise.threads import pin as pin_threads


def _encoder(meta: dict) -> ObsEncoder:
    return ObsEncoder(meta["lowdim_dim"], tuple(meta["image_keys"]), meta["crop"], meta["width"])


def build_critic(meta: dict) -> IQLCritic:
    return IQLCritic(
        _encoder(meta),
        meta["action_dim"],
        meta["hidden"],
        meta.get("chunk", 1),
        meta.get("heads", 2),
        meta.get("pessimism", 1.0),
    )


ACTOR_CRITICS = {"SQIL": SQIL, "CQL": CQL}
DENOISER_KEYS = ("denoiser", "mlp_width", "mlp_blocks", "lipschitz_hidden", "activation")


def build_policy(meta: dict) -> DiffusionPolicy | SQIL | CQL:
    """The policy a checkpoint describes: a diffusion policy, or SQIL's / CQL's actor-critic."""
    if meta.get("family") == "actor_critic":
        return ACTOR_CRITICS[meta["method"]](_encoder(meta), meta["action_dim"], meta["hp"])
    return DiffusionPolicy(
        _encoder(meta),
        meta["action_dim"],
        meta["horizon"],
        meta["n_obs_steps"],
        meta["down_dims"],
        meta["diffusion_steps"],
        **{k: meta[k] for k in DENOISER_KEYS if k in meta},  # older checkpoints: the defaults
    )


def load_checkpoint(path: str, kind: str, device: torch.device | str = "cpu"):
    """(model in eval mode on `device`, meta, normaliser) from a checkpoint of this module."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("kind") != kind:
        raise ValueError(f"{path}: expected a {kind} checkpoint, found {ckpt.get('kind')!r}")
    meta = ckpt["meta"]
    with torch.random.fork_rng(devices=[]):  # the weights are replaced: keep the caller's stream
        model = (build_critic if kind == "critic" else build_policy)(meta)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), meta, Normalizer(ckpt["normalizer"])


def _save(path: str, kind: str, model, meta: dict, norm: Normalizer) -> None:
    save_torch(
        path,
        {
            "kind": kind,
            "meta": meta,
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "normalizer": norm.stats,
        },
    )


def _write_curve(path: str, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _obs_batch(pool: Pool, norm: Normalizer, rows: np.ndarray, device, nxt: bool = False):
    lowdim = pool.next_lowdim if nxt else pool.lowdim
    images = pool.next_images if nxt else pool.images
    return (
        norm.obs(lowdim[rows]).float().to(device),
        {k: torch.from_numpy(images[k][rows]).to(device) for k in pool.image_keys},
    )


def _transitions(pool: Pool, norm: Normalizer, s, nxt, actions: np.ndarray, device) -> dict:
    """Observations of rows `s`, next observations of rows `nxt`, normalised `actions`."""
    lowdim, images = _obs_batch(pool, norm, s, device)
    next_lowdim, next_images = _obs_batch(pool, norm, nxt, device, nxt=True)
    return {
        "lowdim": lowdim,
        "images": images,
        "next_lowdim": next_lowdim,
        "next_images": next_images,
        "action": norm.act(actions).float().to(device),
    }


def _critic_batch(pool: Pool, norm: Normalizer, s: np.ndarray, a: np.ndarray, device) -> dict:
    """SQIL's and CQL's one-step batch: state rows `s`, action rows `a`."""
    return {
        **_transitions(pool, norm, s, s, pool.actions[a], device),
        "reward": torch.from_numpy(pool.reward[a]).to(device),
        "done": torch.from_numpy(pool.done[a]).to(device),
    }


def _iql_batch(pool: Pool, norm: Normalizer, s, a, backup, chunk, device) -> dict:
    """The IQL critic's batch: observations of the state rows `s`, the first `critic.chunk`
    actions of the action rows `a` and their n-step backup (`backup` = Pool.nstep). With one
    action the next state is the state row's own successor (the authors' code, also for
    augmented samples); with a chunk it is where the action row's chunk led, so an
    augmented sample's expert chunk is backed up by the expert's state it reaches."""
    last, ret, bootstrap = (x[a] for x in backup)
    nxt = s if chunk.shape[1] == 1 else last
    return {
        **_transitions(pool, norm, s, nxt, pool.actions[chunk[a]], device),
        "reward": torch.from_numpy(ret).to(device),
        "bootstrap": torch.from_numpy(bootstrap).to(device),
    }


POLICY_WEIGHT_DECAY = 1e-6  # AdamW's, as in Chi et al.'s diffusion policy


class WeightEMA:
    """EMA of a model's weights with Chi et al.'s warm-up: update k (from 0) moves the copy
    by (1 + k) ** -power of the way, at least 1e-4, so the first update copies the weights
    (diffusers' EMAModel schedule; its import costs 5 s). The tensor lists are gathered once
    and updated in one fused lerp: walking the module tree at every step costs ~2 ms on a CPU
    (torch's AveragedModel does that)."""

    def __init__(self, model: torch.nn.Module, power: float):
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.power, self.updates = power, 0
        self._ema = [*self.module.parameters(), *self.module.buffers()]
        self._live = [t.detach() for t in (*model.parameters(), *model.buffers())]

    @torch.no_grad()
    def update(self) -> None:
        decay = min(1.0 - (1.0 + self.updates) ** -self.power, 0.9999)
        torch._foreach_lerp_(self._ema, self._live, 1.0 - decay)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])  # in place: the lerp lists stay valid
        self.updates = state["updates"]


def _seed(seed: int, threads: int, device: str) -> tuple[np.random.Generator, torch.device]:
    """Seeded numpy rng and the resolved device (checked before any data is read)."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    pin_threads(threads)
    return np.random.default_rng(seed), dev


def _start(files, task: str, obs: str, seed: int, threads: int, fraction: float, device: str):
    """Seeded rng, device, the data pool and a normaliser fitted to it."""
    rng, dev = _seed(seed, threads, device)
    pool = load_pool(files, task, obs, fraction)
    return rng, dev, pool, Normalizer.fit(pool.lowdim, pool.actions)


def _steps(batches, hp: dict, desc: str, start: int):
    """The training loop's (step, batch) pairs from step `start` on: the batches of the steps
    a resumed job already did are drawn and dropped, so the rest are the uninterrupted run's."""
    rest = itertools.islice(batches, start, None)
    return enumerate(tqdm(rest, total=hp["steps"], initial=start, desc=desc), start)


def _training_pairs(pool: Pool, pairs: str | None, rows: np.ndarray | None = None):
    """Original samples (`rows`, default all) and augmented ones, as (state, action) rows."""
    orig = np.arange(len(pool)) if rows is None else rows
    aug_s, aug_a = augmented_rows(pool, pairs)
    return {"orig": (orig, orig), "aug": (aug_s, aug_a)}


def _meta(pool: Pool, task: str, obs: str, sizes: dict, **extra) -> dict:
    """What a checkpoint needs to rebuild its model and read observations."""
    lowdim_keys, image_keys = obs_keys(task, obs)
    return {
        "lowdim_dim": pool.lowdim.shape[1],
        "image_keys": list(image_keys),
        "lowdim_keys": list(lowdim_keys),
        "crop": sizes["crop"],
        "width": sizes["encoder_width"],
        "action_dim": pool.actions.shape[1],
        "task": task,
        "obs": obs,
        "env_args": pool.env_args,
        **extra,
    }


def ilid_rows(pool: Pool, norm: Normalizer, meta: dict, hp: dict, rng, device) -> np.ndarray:
    """ILID's imitation data: expert rows plus the non-expert rows whose resultant states a
    state classifier deems expert-like, with the `ilid_rollback` steps that led there."""
    classifier = StateClassifier(_encoder(meta), hp["hidden"], hp["lr"]).to(device).train()
    for _ in tqdm(range(hp["ilid_classifier_steps"]), desc="ilid classifier"):
        idx = balanced_indices(pool.reward, hp["batch_size"], rng)  # half expert, half not
        lowdim, images = _obs_batch(pool, norm, idx, device)
        reward = torch.from_numpy(pool.reward[idx]).to(device)
        classifier.train_step({"lowdim": lowdim, "images": images, "reward": reward})
    classifier.eval()
    scores = np.concatenate(
        [
            classifier.score(*_obs_batch(pool, norm, rows, device, nxt=True)).cpu().numpy()
            for rows in np.array_split(np.arange(len(pool)), max(1, len(pool) // 4096))
        ]
    )
    selected = select_rows(
        scores, pool.episode, pool.starts, pool.lengths,
        hp["ilid_threshold"], hp["ilid_rollback"], pool.reward,
    )  # fmt: skip
    expert = np.flatnonzero(pool.reward > 0.5)
    print(f"ILID: {len(selected)} of {len(pool) - len(expert)} non-expert rows selected")
    return np.concatenate([expert, selected])


def train_critic(
    *,
    task: str,
    obs: str,
    files: dict[str, str],
    pairs: str | None,
    hp: dict,
    seed: int,
    out: str,
    curve: str,
    threads: int = 1,
    nonexpert_fraction: float = 1.0,
    device: str = "cpu",
) -> None:
    """IQL on 1/0 labels over expert + non-expert rows (+ augmentation pairs)."""
    rng, dev, pool, norm = _start(files, task, obs, seed, threads, nonexpert_fraction, device)
    samples = _training_pairs(pool, pairs)
    critic_keys = ("hidden", "chunk", "absorbing", "heads", "pessimism")
    meta = _meta(pool, task, obs, hp, **{k: hp[k] for k in critic_keys})
    critic = build_critic(meta).to(dev).train()
    backup = pool.nstep(hp["chunk"], hp["discount"], hp["absorbing"])
    chunk = pool.chunk_index(hp["chunk"])
    opt = adam(critic.parameters(), hp["lr"])
    resume = Resumable(out, hp, {"critic": critic, "opt": opt})
    start, rows = resume.load()
    batches = alternating_batches(
        len(pool), len(samples["aug"][0]), hp["batch_size"], hp["steps"], rng
    )
    for step, (kind, idx) in _steps(batches, hp, "train-critic", start):
        s, a = samples[kind][0][idx], samples[kind][1][idx]
        batch = _iql_batch(pool, norm, s, a, backup, chunk, dev)
        loss, info = critic.loss(batch, hp["expectile"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        critic.update_targets(hp["tau"])
        if step % max(1, hp["steps"] // 100) == 0 or step == hp["steps"] - 1:
            rows.append({"step": step, "batch": kind, **{k: round(v, 6) for k, v in info.items()}})
        resume.save(step + 1, rows)
    _save(out, "critic", critic, meta, norm)
    _write_curve(curve, rows)
    resume.finish()
    warn_if_diverged(max(r["v_max"] for r in rows), hp["discount"])


def warn_if_diverged(v_max: float, discount: float) -> bool:
    """With 0/1 rewards no value can exceed 1 / (1 - discount); a critic past it has diverged
    (measured: lr 1e-3 for 60,000 steps). Its checkpoint is still written: say so loudly."""
    bound = 1.0 / (1.0 - discount)
    if v_max <= bound:
        return False
    print(
        f"train-critic: WARNING: V reached {v_max:.1f}, above 1 / (1 - discount) = {bound:.0f}, "
        "the most any value can be with 0/1 rewards: the critic diverged; lower critic.lr "
        "or critic.steps",
        file=sys.stderr,
    )
    return True


def effective_batch_size(weights):
    """Kish's effective sample size (sum w)^2 / sum w^2 over the last axis (numpy or torch):
    how many equally weighted samples a weighted batch is worth. Heavy-tailed advantage
    weights shrink it, and with it what the policy learns (docs/cpu-scale.md)."""
    return weights.sum(-1) ** 2 / (weights**2).sum(-1)


def train_policy(
    *,
    task: str,
    obs: str,
    files: dict[str, str],
    pairs: str | None,
    critic_path: str | None,
    lam: float,
    hp: dict,
    seed: int,
    out: str,
    curve: str,
    threads: int = 1,
    nonexpert_fraction: float = 1.0,
    ilid: dict | None = None,
    device: str = "cpu",
) -> None:
    """Diffusion policy; spectral-norm penalty `lam`; advantage weights when a critic is given;
    with `ilid` (the `baselines` settings), only ILID's selected rows are imitated."""
    rng, dev = _seed(seed, threads, device)
    pool = load_pool(files, task, obs, nonexpert_fraction)
    critic = None
    if critic_path is not None:
        critic, _, norm = load_checkpoint(critic_path, "critic", dev)  # same pool, same normaliser
        critic.requires_grad_(False)
        if critic.chunk > hp["horizon"]:
            raise ConfigError(
                f"{critic_path}: the critic scores {critic.chunk} actions, more than the "
                f"policy's horizon {hp['horizon']} (critic.chunk <= policy.horizon)"
            )
    else:
        norm = Normalizer.fit(pool.lowdim, pool.actions)
    meta = _meta(
        pool,
        task,
        obs,
        hp,
        family="diffusion",
        horizon=hp["horizon"],
        n_obs_steps=hp["n_obs_steps"],
        n_action_steps=hp["n_action_steps"],
        down_dims=hp["down_dims"],
        diffusion_steps=hp["diffusion_steps"],
        **{k: hp[k] for k in DENOISER_KEYS},
        expert_share=hp["expert_share"] if critic is not None else 0.0,
        lam=lam,
        weighting=hp["weighting"] if critic is not None else "none",
    )
    rows = None if ilid is None else ilid_rows(pool, norm, meta, ilid, rng, dev)
    samples = _training_pairs(pool, pairs, rows)
    policy = build_policy(meta).to(dev).train()
    ema = WeightEMA(policy, hp["ema_power"])
    opt = adam(policy.parameters(), hp["lr"], weight_decay=POLICY_WEIGHT_DECAY)
    hist, chunk = pool.history_index(hp["n_obs_steps"]), pool.chunk_index(hp["horizon"])
    resume = Resumable(out, hp, {"policy": policy, "ema": ema, "opt": opt})
    start, rows = resume.load()
    n_orig, n_aug = len(samples["orig"][0]), len(samples["aug"][0])
    (orig_s, orig_a), (aug_s, aug_a) = samples["orig"], samples["aug"]
    samples["all"] = (np.concatenate([orig_s, aug_s]), np.concatenate([orig_a, aug_a]))
    if meta["expert_share"] > 0:
        expert = pool.reward[samples["orig"][0]] > 0.5
        batches = expert_share_batches(
            expert, n_aug, meta["expert_share"], hp["batch_size"], hp["steps"], rng
        )
    elif hp["augment_share"] > 0 and n_aug > 0:
        batches = augment_share_batches(
            n_orig, n_aug, hp["augment_share"], hp["batch_size"], hp["steps"], rng
        )
    else:
        batches = alternating_batches(n_orig, n_aug, hp["batch_size"], hp["steps"], rng)
    for step, (kind, idx) in _steps(batches, hp, "train-policy", start):
        s, a = samples[kind][0][idx], samples[kind][1][idx]
        lowdim, images = _obs_batch(pool, norm, hist[s], dev)
        actions = norm.act(pool.actions[chunk[a]]).float().to(dev)
        weights = None
        if meta["weighting"] == "advantage":
            with torch.no_grad():
                cur_low, cur_img = _obs_batch(pool, norm, s, dev)
                adv = critic.advantage(cur_low, cur_img, actions[:, : critic.chunk])
                weights = torch.exp(adv / hp["beta"]).clamp(max=hp["weight_clip"])
        with autocast(dev, hp["precision"]):
            bc_loss = policy.loss(lowdim, images, actions, weights)
        penalty = policy.spectral_penalty()
        loss = bc_loss + lam * penalty
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(
                hp["lr"], step, hp["steps"], hp["lr_schedule"], hp["lr_warmup"]
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update()
        if step % max(1, hp["steps"] // 100) == 0 or step == hp["steps"] - 1:
            logged = weights if weights is not None else torch.ones(len(idx))  # unweighted: 1s
            rows.append(
                {
                    "step": step,
                    "batch": kind,
                    "loss": round(bc_loss.item(), 6),
                    "spectral_norm": round(penalty.item(), 4),
                    "weight_mean": round(logged.mean().item(), 4),
                    "weight_ess": round(effective_batch_size(logged).item(), 2),
                }
            )
        resume.save(step + 1, rows)
    _save(out, "policy", ema.module, meta, norm)
    _write_curve(curve, rows)
    resume.finish()


def train_actor_critic(
    *,
    task: str,
    obs: str,
    files: dict[str, str],
    method: str,
    hp: dict,
    seed: int,
    out: str,
    curve: str,
    threads: int = 1,
    nonexpert_fraction: float = 1.0,
    device: str = "cpu",
) -> None:
    """SQIL or CQL: offline SAC on the 1/0 labels, one observation frame, one action per step."""
    rng, dev, pool, norm = _start(files, task, obs, seed, threads, nonexpert_fraction, device)
    agent_hp = {k: hp[k] for k in ("hidden", "lr", "discount", "tau", "init_alpha")}
    agent_hp.update(cql_alpha=hp["cql_alpha"], cql_samples=hp["cql_samples"])
    meta = _meta(
        pool, task, obs, hp, family="actor_critic", method=method, hp=agent_hp,
        n_obs_steps=1, n_action_steps=1,
    )  # fmt: skip
    agent = build_policy(meta).to(dev).train()
    resume = Resumable(out, hp, {"agent": agent, **agent.optimizers})
    start, rows = resume.load()
    batches = (agent.batch_indices(pool.reward, hp["batch_size"], rng) for _ in range(hp["steps"]))
    for step, idx in _steps(batches, hp, f"train {method}", start):
        info = agent.train_step(_critic_batch(pool, norm, idx, idx, dev))
        if step % max(1, hp["steps"] // 100) == 0 or step == hp["steps"] - 1:
            rows.append({"step": step, **{k: round(v, 6) for k, v in info.items()}})
        resume.save(step + 1, rows)
    _save(out, "policy", agent, meta, norm)
    _write_curve(curve, rows)
    resume.finish()
