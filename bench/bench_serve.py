"""Latency of `rise serve` as a robot sees it: p50 / p99 per request and chunks per second,
over one persistent loopback connection, with the preset's sampler (candidates, DDIM steps).

    python bench/bench_serve.py CELL/p.pt [--critic CELL/c.pt] [--requests 200]

Starts the real server in this process (one thread for the model, as a job runs) and sends
real observation histories from the task's evaluation region.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise import tasks as T  # noqa: E402
from rise.client import PolicyClient  # noqa: E402
from rise.config import load, section  # noqa: E402
from rise.envs import make_env  # noqa: E402
from rise.evaluate import sampler_settings  # noqa: E402
from rise.serve import make_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policy")
    ap.add_argument("--critic")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = ap.parse_args()
    cfg = load(args.params)
    sampler = sampler_settings(section(cfg, args.scale, "evaluate"),
                               section(cfg, args.scale, "policy"))  # fmt: skip
    server = make_server(policy=args.policy, critic=args.critic, port=0, **sampler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.socket.getsockname()[:2]
    with PolicyClient(f"ws://{host}:{port}") as client:
        meta = client.metadata
        env = make_env(T.get(meta["task"]).env, cameras=meta["obs"] == "image")
        rng = np.random.default_rng(0)
        histories = [[env.reset("eval", rng)] * meta["n_obs_steps"] for _ in range(20)]
        client.infer(histories[0])  # warm-up
        ms = []
        start = time.perf_counter()
        for i in range(args.requests):
            t0 = time.perf_counter()
            client.infer(histories[i % len(histories)])
            ms.append(1000 * (time.perf_counter() - t0))
        total = time.perf_counter() - start
    server.shutdown()
    p50, p99 = np.percentile(ms, [50, 99])
    print(
        f"{meta['task']} ({meta['obs']}), {meta['candidates']} candidate(s), "
        f"{sampler['scheduler']} {sampler['inference_steps']} steps, extraction "
        f"{meta['extraction']}: {args.requests} requests, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"{args.requests / total:.1f} chunks/s ({meta['n_action_steps']} actions each)"
    )


if __name__ == "__main__":
    main()
