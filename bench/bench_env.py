"""Benchmark a mini task: env speed and how well its scripted expert does from each region.

    python bench/bench_env.py --episodes 50

Prints env steps/s without and with cameras (single process; MuJoCo steps on one thread),
then the scripted expert's success rate and mean episode length (steps until success, or
the horizon) when started from the expert, play and eval regions, and how often the play
controller completes the task by accident.
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

from rise.envs import TASKS, make_task  # noqa: E402


def steps_per_second(task: str, cameras: bool, steps: int, seed: int) -> float:
    """Time env.step alone, replaying actions recorded from the play controller."""
    env = make_task(task, cameras=cameras)
    rng = np.random.default_rng(seed)
    obs = env.reset("play", rng)
    controller = env.scripted_play(rng)
    actions = []
    for _ in range(steps):
        actions.append(controller(obs))
        obs = env.step(actions[-1])
    env.reset("play", np.random.default_rng(seed))
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def run_controller(env, controller_name: str, region: str, episodes: int, seed: int):
    """Success flags and lengths of `episodes` episodes, each stopped at success or horizon."""
    successes, lengths = [], []
    for episode in range(episodes):
        rng = np.random.default_rng([seed, episode])
        obs = env.reset(region, rng)
        controller = getattr(env, controller_name)(rng)
        steps = 0
        while steps < env.horizon:
            obs = env.step(controller(obs))
            steps += 1
            if env.success():
                break
        successes.append(env.success())
        lengths.append(steps)
    return np.array(successes), np.array(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mini_square_peg", choices=sorted(TASKS))
    parser.add_argument("--episodes", type=int, default=50, help="episodes per region")
    parser.add_argument("--speed-steps", type=int, default=2000, help="steps for the timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"task {args.task}")
    for cameras in (False, True):
        rate = steps_per_second(args.task, cameras, args.speed_steps, args.seed)
        label = "with cameras (2 x 84x84 RGB)" if cameras else "without cameras"
        print(f"env steps/s {label:30s} {rate:8.0f}")

    env = make_task(args.task)
    print(f"scripted expert, {args.episodes} episodes per region, horizon {env.horizon}:")
    for region in env.regions:
        ok, lengths = run_controller(env, "scripted_expert", region, args.episodes, args.seed)
        done = f"{lengths[ok].mean():.1f}" if ok.any() else "-"
        print(
            f"  from {region:6s} success {ok.mean():6.1%}   mean length {lengths.mean():6.1f}"
            f"   (successful episodes: {done})"
        )
    ok, _ = run_controller(env, "scripted_play", "play", args.episodes, args.seed)
    print(f"scripted play completes the task by accident in {ok.sum()}/{args.episodes} episodes")


if __name__ == "__main__":
    main()
