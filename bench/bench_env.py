"""Benchmark the simulated envs (mini and robosuite tiers): speed, and what each scripted
data source does.

    python bench/bench_env.py --episodes 50 [--env mini_square_peg ...]

Per env: env steps/s without and with cameras (single process; MuJoCo steps on one
thread); then for every data source (expert, play, suboptimal, partial ...) rolled from its
region as `rise collect` does, the success rate and mean episode length; and the scripted
expert from the evaluation region.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise.envs import ENVS, make_env  # noqa: E402


def steps_per_second(env_name: str, cameras: bool, steps: int, seed: int) -> float:
    """Time env.step alone, replaying actions recorded from the scripted expert (which keeps
    the gripper still once done, like a policy would)."""
    env = make_env(env_name, cameras=cameras)
    rng = np.random.default_rng(seed)
    actions, episodes = [], 0
    while len(actions) < steps:  # several episodes, so contacts and motion are typical
        obs = env.reset("expert", np.random.default_rng([seed, episodes]))
        controller = env.controller("expert", rng)
        for _ in range(min(env.horizon // 2, steps - len(actions))):
            actions.append(controller(obs))
            obs = env.step(actions[-1])
        episodes += 1
    env.reset("expert", np.random.default_rng([seed, 0]))
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def run_source(env, source: str, region: str, episodes: int, seed: int, stop_on_success: bool):
    """Success flags and lengths of `episodes` episodes of a data source's controller, rolled
    as `collect` does (stopped at success only for sources that keep successes only)."""
    successes, lengths = [], []
    for episode in range(episodes):
        rng = np.random.default_rng([seed, episode])
        obs = env.reset(region, rng)
        controller = env.controller(source, rng)
        steps, success = 0, False
        while steps < env.horizon:
            obs = env.step(controller(obs))
            steps += 1
            success = success or env.success()
            if success and stop_on_success:
                break
        successes.append(success)
        lengths.append(steps)
    return np.array(successes), np.array(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=sorted(ENVS), choices=sorted(ENVS))
    parser.add_argument("--episodes", type=int, default=50, help="episodes per line")
    parser.add_argument("--speed-steps", type=int, default=2000, help="steps for the timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    for name in args.env:
        print(f"env {name}")
        for cameras in (False, True):
            rate = steps_per_second(name, cameras, args.speed_steps, args.seed)
            label = "with cameras (2 x 84x84 RGB)" if cameras else "without cameras"
            print(f"  env steps/s {label:30s} {rate:8.0f}")
        env = make_env(name)
        print(f"  {args.episodes} episodes per line, horizon {env.horizon}:")
        lines = [(s, spec.region, spec.successes_only) for s, spec in env.sources.items()]
        lines.append(("expert", "eval", True))  # the scripted expert would do it from there
        for source, region, stop in lines:
            ok, lengths = run_source(env, source, region, args.episodes, args.seed, stop)
            done = f"{lengths[ok].mean():.1f}" if ok.any() else "-"
            print(
                f"  {source:>14s} from {region:11s} success {ok.mean():6.1%}"
                f"   mean length {lengths.mean():6.1f}   (successful episodes: {done})"
            )
        env.close()


if __name__ == "__main__":
    main()
