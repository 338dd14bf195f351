"""Successes of kept policies over several evaluation seeds: how much of a difference is noise.

    python bench/bench_eval.py CELL/p.pt OTHER/p.pt --critic CELL/c.pt --seeds 0 1 2 \
        --episodes 50 --region expert

Runs the real `evaluate` stage (the preset's sampler; with `--critic`, its pick among the
preset's `evaluate.num_samples` candidates, else one sample) for each policy at each seed,
in a temporary folder, and prints the successes per seed and in all. The seed draws the
start states and the sampling noise, so one policy's count moves between seeds by more
than the binomial spread of one seed's rollouts: compare policies on the same seeds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise.config import load, section  # noqa: E402
from rise.evaluate import evaluate, sampler_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policies", nargs="+", help="policy checkpoints (p.pt)")
    parser.add_argument("--critic", help="critic checkpoint whose pick to use (c.pt)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=50, help="rollouts per seed")
    parser.add_argument("--region", help="start region (default: the task's evaluation region)")
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = parser.parse_args()
    missing = [p for p in [*args.policies, args.critic] if p and not Path(p).is_file()]
    if missing:
        sys.exit(f"no such checkpoint: {', '.join(missing)}")

    cfg = load(args.params)
    ev, pol = section(cfg, args.scale, "evaluate"), section(cfg, args.scale, "policy")
    pick = f" + critic {args.critic}" if args.critic else " (one sample)"
    for policy in args.policies:
        counts = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                metrics = evaluate(
                    policy=policy,
                    critic=args.critic,
                    episodes=args.episodes,
                    **sampler_settings(ev, pol),
                    seed=seed,
                    videos=0,
                    out=f"{tmp}/m.json",
                    episodes_out=f"{tmp}/e.json",
                    videos_out=f"{tmp}/v",
                    region=args.region,
                )
            counts.append(metrics["successes"])
        per_seed = ", ".join(f"seed {s}: {n}" for s, n in zip(args.seeds, counts, strict=True))
        total = len(args.seeds) * args.episodes
        print(f"{policy}{pick}: {per_seed}; {sum(counts)} / {total}", flush=True)


if __name__ == "__main__":
    main()
