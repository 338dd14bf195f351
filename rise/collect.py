"""Stage `collect`: roll a task's scripted controller from a region, write robomimic HDF5.

Each env declares its data sources (`MiniEnv.sources`): e.g. `expert` (scripted expert from
the narrow expert region, only successes kept, as an operator discards a botched demo),
`play` (undirected play over the whole table, kept whatever happens) and task-specific
non-expert kinds (suboptimal demos, partial tipping, ...). The same seed writes the same file.
"""

from __future__ import annotations

import zlib

import numpy as np
from tqdm import tqdm

from rise.data import write_dataset
from rise.envs import make_env


def rollout(env, controller, region: str, rng: np.random.Generator, stop_on_success: bool) -> dict:
    """One episode: stops at the task horizon, or at success when `stop_on_success`."""
    obs = env.reset(region, rng)
    frames = {k: [v] for k, v in obs.items()}
    states, actions, rewards = [env.get_state()], [], []
    for _ in range(env.horizon):
        action = np.clip(np.asarray(controller(obs), np.float32), -1.0, 1.0)
        obs = env.step(action)
        for k, v in obs.items():
            frames[k].append(v)
        states.append(env.get_state())
        actions.append(action)
        success = env.success()
        rewards.append(float(success))
        if success and stop_on_success:
            break
    return {
        "obs": {k: np.stack(v) for k, v in frames.items()},
        "actions": np.stack(actions),
        "states": np.stack(states),
        "rewards": np.asarray(rewards),
        "success": success,
    }


def collect(
    *,
    task: str,
    env_name: str,
    source: str,
    episodes: int,
    seed: int,
    cameras: bool,
    out: str,
    valid_fraction: float = 0.1,
    max_attempts_factor: int = 3,
) -> dict:
    """Collect `episodes` episodes of `source` in env `env_name` for `task`; returns counts."""
    env = make_env(env_name, cameras=cameras)
    if source not in env.sources:
        known = ", ".join(sorted(env.sources))
        raise ValueError(f"task {task!r} has no data source {source!r}; known: {known}")
    region, successes_only = env.sources[source].region, env.sources[source].successes_only
    # One stream per (task, source): a stable function of the names, not of list order.
    rng = np.random.default_rng([seed, zlib.crc32(f"{task}/{source}".encode())])
    kept, attempts = [], 0
    with tqdm(total=episodes, desc=f"collect {task}/{source}") as bar:
        while len(kept) < episodes:
            if attempts >= max_attempts_factor * episodes:
                raise RuntimeError(
                    f"collect {task}/{source}: only {len(kept)} of {attempts} episodes were "
                    f"kept; the scripted controller fails too often from region {region!r}"
                )
            attempts += 1
            controller = env.controller(source, rng)
            ep = rollout(env, controller, region, rng, stop_on_success=successes_only)
            if ep["success"] or not successes_only:
                kept.append(ep)
                bar.update(1)
    env.close()
    write_dataset(out, kept, env.env_args(), source, valid_fraction)
    return {
        "episodes": len(kept),
        "attempts": attempts,
        "steps": int(sum(len(e["actions"]) for e in kept)),
        "success_rate": float(np.mean([e["success"] for e in kept])),
    }
