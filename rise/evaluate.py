"""Stage `evaluate`: roll a trained policy out from the task's evaluation region.

All episodes of a cell run in lockstep so that the policy denoises one batch per replanning
step. With a critic (IDQL, RISE) each state gets `num_samples` candidate chunks and the one
with the highest min(Q1, Q2)(s, first action) is executed (IDQL extraction); without one
(BC) a single sampled chunk is. Each chunk executes `n_action_steps` actions. Initial states
depend only on (seed, episode), so every method faces the same starts.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from rise.atomic import atomic_path, write_json
from rise.envs import ENVS, make_env
from rise.nets import autocast, resolve_device
from rise.tasks import get
from rise.threads import pin as pin_threads
from rise.train import load_checkpoint


def _stack(histories: list[list[dict]], keys) -> dict[str, np.ndarray]:
    return {k: np.stack([np.stack([o[k] for o in h]) for h in histories]) for k in keys}


class Planner:
    """Chooses action chunks for a batch of observation histories."""

    def __init__(
        self,
        policy_path: str,
        critic_path: str | None,
        num_samples: int,
        scheduler: str,
        inference_steps: int,
        seed: int,
        device: torch.device | str,  # a name as params' `device` gives it, `auto` included
        temperature: float = 1.0,
        precision: str = "fp32",
    ):
        self.device, self.temperature = resolve_device(str(device)), temperature
        self.autocast = autocast(self.device, precision)  # reusable; checks `precision` now
        self.policy, self.meta, self.norm = load_checkpoint(policy_path, "policy", self.device)
        self.critic = None
        if critic_path is not None:
            self.critic, _, self.critic_norm = load_checkpoint(critic_path, "critic", self.device)
        self.num_samples = num_samples if self.critic is not None else 1
        self.actor_critic = self.meta.get("family") == "actor_critic"  # SQIL, CQL
        self.sched = None if self.actor_critic else self.policy.sampler(scheduler, inference_steps)
        self.gen = torch.Generator().manual_seed(seed)

    def _lowdim(self, lowdim: np.ndarray, norm) -> torch.Tensor:
        x = norm.obs(lowdim.reshape(-1, lowdim.shape[-1])).reshape(*lowdim.shape[:-1], -1)
        return x.float().to(self.device)

    def _images(self, images: dict[str, np.ndarray], repeat: int = 1) -> dict:
        return {
            k: torch.from_numpy(v).repeat_interleave(repeat, 0).to(self.device)
            for k, v in images.items()
        }

    @torch.no_grad()
    def propose(self, lowdim: np.ndarray, images: dict[str, np.ndarray]) -> torch.Tensor:
        """(B, num_samples, horizon, action_dim) candidate chunks, in the environment's
        units, from `inputs`' low-dim histories and images."""
        with self.autocast:
            cond = self.policy.condition(self._lowdim(lowdim, self.norm), self._images(images))
            n, b = self.num_samples, cond.shape[0]
            chunks = self.policy.sample(
                cond.repeat_interleave(n, 0), self.sched, self.gen, self.temperature
            )
        chunks = chunks.float().cpu()
        return self.norm.unact(chunks).reshape(b, n, *chunks.shape[1:])

    @torch.no_grad()
    def score(
        self, lowdim: np.ndarray, images: dict[str, np.ndarray], chunks: torch.Tensor
    ) -> torch.Tensor:
        """(B, N) Q_lower of each candidate's first `critic.chunk` actions at the current
        frame (lowdim (B, D), images (B, H, W, 3)): what extraction maximises."""
        b, n = chunks.shape[:2]
        low = self._lowdim(lowdim, self.critic_norm).repeat_interleave(n, 0)
        feat = self.critic.encoder(low, self._images(images, n))
        scored = chunks[:, :, : self.critic.chunk].reshape(b * n, self.critic.chunk, -1)
        scored = self.critic_norm.act(scored).float().to(self.device)
        return self.critic.q_lower(feat, scored).reshape(b, n).cpu()

    def inputs(self, histories: list[list[dict]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Observation histories as the networks' inputs: (B, n_obs_steps, D) low-dim, keys
        concatenated in the checkpoint's `lowdim_keys` order, and images per camera."""
        obs = _stack(histories, self.meta["lowdim_keys"] + self.meta["image_keys"])
        lowdim = np.concatenate([obs[k] for k in self.meta["lowdim_keys"]], -1)
        return lowdim, {k: obs[k] for k in self.meta["image_keys"]}

    @torch.no_grad()
    def __call__(self, histories: list[list[dict]]) -> np.ndarray:
        """(B, n_action_steps, action_dim) actions in the environment's units."""
        lowdim, images = self.inputs(histories)
        if self.actor_critic:  # one frame in, one action out: tanh(mean) of the actor
            last = self._images({k: v[:, -1] for k, v in images.items()})
            act = self.policy.act(self._lowdim(lowdim[:, -1], self.norm), last).cpu()
            return self.norm.unact(act)[:, None].numpy()
        chunks = self.propose(lowdim, images)
        if self.critic is not None:
            last = {k: v[:, -1] for k, v in images.items()}
            best = self.score(lowdim[:, -1], last, chunks).argmax(1)
        else:
            best = torch.zeros(len(chunks), dtype=torch.long)
        chosen = chunks[torch.arange(len(chunks)), best]
        return chosen[:, : self.meta["n_action_steps"]].numpy()


def sampler_settings(evaluate_hp: dict, policy_hp: dict) -> dict:
    """The preset's candidates per state and denoising schedule, as `evaluate` takes them,
    so every caller samples the way the workflow's `evaluate` rule does."""
    return {
        "num_samples": evaluate_hp["num_samples"],
        "scheduler": policy_hp["inference_scheduler"],
        "inference_steps": policy_hp["inference_steps"],
        "temperature": evaluate_hp["temperature"],
        "precision": evaluate_hp["precision"],
    }


def evaluate(
    *,
    policy: str,
    critic: str | None,
    episodes: int,
    num_samples: int,
    scheduler: str,
    inference_steps: int,
    seed: int,
    videos: int,
    out: str,
    episodes_out: str,
    videos_out: str,
    threads: int = 1,
    region: str | None = None,
    temperature: float = 1.0,
    precision: str = "fp32",
    device: str = "cpu",
) -> dict:
    """Roll `episodes` episodes from the task's evaluation region (or `region`, to diagnose:
    e.g. the expert region, where a policy that learned its demos must succeed). Each
    episode's record keeps the object's pose at its start and end: where a failure left it."""
    torch.manual_seed(seed)
    pin_threads(threads)
    planner = Planner(
        policy, critic, num_samples, scheduler, inference_steps, seed, device, temperature,
        precision,
    )  # fmt: skip
    meta = planner.meta
    cameras = bool(meta["image_keys"])
    task = get(meta["task"])
    region = region or task.eval_region
    env_args = meta.get("env_args")  # the demos' env: robot, controller, control rate
    env_class = ENVS[task.env]
    width = min(episodes, env_class.parallel_envs or episodes)
    waves = [range(i, min(i + width, episodes)) for i in range(0, episodes, width)]
    # The filmed episodes (the first `videos`) get envs of their own: an env built with
    # cameras renders at every step of every wave (robosuite: ~11 against ~140 steps/s).
    films = 0 if cameras else min(videos, episodes)
    film_envs = [make_env(task.env, cameras=True, env_args=env_args) for _ in range(films)]
    plain = max(sum(i >= films for i in wave) for wave in waves)  # the busiest wave's others
    envs = [make_env(task.env, cameras=cameras, env_args=env_args) for _ in range(plain)]
    records, frames = [], []
    horizon = (envs + film_envs)[0].horizon
    with tqdm(total=horizon * len(waves), desc=f"evaluate {meta['task']}") as bar:
        for wave in waves:
            others = iter(envs)
            wave_envs = [film_envs[i] if i < films else next(others) for i in wave]
            wave_records, wave_frames = _roll_wave(
                wave_envs, wave, planner, seed, region, videos, bar
            )
            records += wave_records
            frames += wave_frames
    for env in envs + film_envs:
        env.close()
    successes = sum(r["success"] for r in records)
    metrics = {
        "task": meta["task"],
        "obs": meta["obs"],
        "seed": seed,
        "episodes": episodes,
        "successes": successes,
        "success_rate": successes / episodes,
        "mean_steps": float(np.mean([r["steps"] for r in records])),
        "extraction": planner.critic is not None,
        "num_samples": planner.num_samples,
        "scheduler": scheduler,
        "inference_steps": inference_steps,
        "temperature": temperature,
        "precision": precision,
        "region": region,
    }
    _write_videos(videos_out, frames)
    write_json(episodes_out, records)
    write_json(out, metrics)
    return metrics


def _roll_wave(envs, wave: range, planner: Planner, seed: int, region: str, videos: int, bar):
    """Episodes `wave` in lockstep, one env each, planned together (one batched call per
    chunk). Episode i starts from rng [seed, i], whichever wave it is in. Returns their
    records and the frames of those among the first `videos` episodes."""
    meta = planner.meta
    obs = [
        env.reset(region, np.random.default_rng([seed, i]))
        for env, i in zip(envs, wave, strict=False)
    ]
    records = [
        {"episode": i, "init_object": o["object"].round(4).tolist(), "success": False, "steps": 0}
        for i, o in zip(wave, obs, strict=True)
    ]
    histories = [[o] * meta["n_obs_steps"] for o in obs]
    film = {j: [obs[j]["agentview_image"]] for j, i in enumerate(wave) if i < videos}
    active = list(range(len(wave)))
    plans: dict[int, np.ndarray] = {}
    horizon = envs[0].horizon
    for t in range(horizon):
        if not active:
            bar.update(horizon - t)  # the wave ended early
            break
        if t % meta["n_action_steps"] == 0:
            chosen = planner([histories[j] for j in active])
            plans = dict(zip(active, chosen, strict=True))
        for j in list(active):
            o = envs[j].step(plans[j][t % meta["n_action_steps"]])
            histories[j] = histories[j][1:] + [o]
            records[j]["steps"] = t + 1
            if j in film:
                film[j].append(o["agentview_image"])
            if envs[j].success():
                records[j]["success"] = True
                active.remove(j)
        bar.update(1)
    for record, history in zip(records, histories, strict=True):
        record["final_object"] = history[-1]["object"].round(4).tolist()
    return records, list(film.values())


def _write_videos(folder: str, frames: list[list[np.ndarray]]) -> None:
    import imageio.v2 as imageio

    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for i, ep in enumerate(frames):
            imageio.mimsave(tmp / f"episode_{i}.gif", ep[::2], duration=100, loop=0)
