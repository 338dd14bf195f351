"""Stage `serve`: a trained policy behind a websocket, for a robot's control loop.

The robot side (`rise.client.PolicyClient`) keeps one connection open. The server's first
message describes the policy (observation keys and shapes, action size, chunk lengths);
then each request carries the last `n_obs_steps` observations and each reply the
`n_action_steps` actions to execute, in the robot's units: normalisation, sampling and, for
IDQL / RISE, the critic's pick among the candidates happen here, exactly as in `evaluate`
(the same Planner). It binds to loopback unless a host is given on purpose. Each request's
latency is logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from websockets.sync.server import Server, ServerConnection
from websockets.sync.server import serve as websocket_server

from rise.client import pack, unpack
from rise.envs import make_env
from rise.evaluate import Planner
from rise.tasks import get
from rise.threads import pin as pin_threads

LOOPBACK = "127.0.0.1"
log = logging.getLogger("rise.serve")


def observation_shapes(task: str, cameras: bool) -> dict[str, list[int]]:
    """key -> per-step shape of a task's observations: its real robot's declaration, else
    what its simulated env returns (with the camera frames when `cameras`)."""
    spec = get(task)
    if spec.robot is not None:
        size = [spec.robot.image_size, spec.robot.image_size, 3]
        return {
            **{k: list(s) for k, s in spec.robot.lowdim},
            **dict.fromkeys(spec.robot.image_keys, size),
        }
    env = make_env(spec.env, cameras=cameras)
    obs = env.reset("expert", np.random.default_rng(0))
    env.close()
    return {k: list(np.shape(v)) for k, v in obs.items()}


class PolicyServer:
    """Answers requests with a Planner; one lock, so connections take turns on the model."""

    def __init__(self, planner: Planner, policy_sha256: str):
        self.planner, self.lock, self.requests = planner, threading.Lock(), 0
        meta = planner.meta
        keys = meta["lowdim_keys"] + meta["image_keys"]
        shapes = observation_shapes(meta["task"], bool(meta["image_keys"]))
        self.shapes = {k: shapes[k] for k in keys}
        self.metadata = {
            "task": meta["task"],
            "obs": meta["obs"],
            "observation_shapes": self.shapes,
            "action_dim": meta["action_dim"],
            "n_obs_steps": meta["n_obs_steps"],
            "n_action_steps": meta["n_action_steps"],
            "horizon": meta.get("horizon", 1),
            "candidates": planner.num_samples,
            "extraction": planner.critic is not None,
            "normalisation": "server",
            "policy_sha256": policy_sha256,
        }

    def check(self, message) -> list[dict]:
        """The request's observation history, or a ValueError naming what is wrong."""
        if not isinstance(message, dict) or "obs" not in message:
            raise ValueError("a request is a map with key 'obs': the observation history")
        history, n = message["obs"], self.metadata["n_obs_steps"]
        if not isinstance(history, list) or len(history) != n:
            raise ValueError(f"'obs' must list the last {n} observations, oldest first")
        for i, obs in enumerate(history):
            for key, shape in self.shapes.items():
                if key not in obs:
                    raise ValueError(f"obs[{i}] has no key {key!r}")
                if list(np.shape(obs[key])) != shape:
                    raise ValueError(
                        f"obs[{i}][{key!r}] has shape {list(np.shape(obs[key]))}, expected {shape}"
                    )
        return history

    def act(self, message) -> dict:
        history = self.check(message)
        with self.lock:
            actions = self.planner([history])[0]
        return {"actions": np.asarray(actions, np.float32)}

    def handle(self, ws: ServerConnection) -> None:
        ws.send(pack(self.metadata))
        for data in ws:
            start = time.perf_counter()
            try:
                reply = self.act(unpack(data))
            except (ValueError, TypeError, KeyError) as exc:
                reply = {"error": str(exc)}
            ws.send(pack(reply))
            self.requests += 1
            ms = 1000 * (time.perf_counter() - start)
            log.info("request %d: %.1f ms%s", self.requests, ms, " (error)" * ("error" in reply))


def make_server(
    *,
    policy: str,
    critic: str | None,
    num_samples: int,
    scheduler: str,
    inference_steps: int,
    seed: int = 0,
    host: str = LOOPBACK,
    port: int = 8765,
    device: str = "cpu",
    threads: int = 1,
    temperature: float = 1.0,
    precision: str = "fp32",
) -> Server:
    """A bound websocket server (port 0: any free port, `server.socket.getsockname()`);
    `serve_forever()` runs it, `shutdown()` stops it."""
    pin_threads(threads)
    planner = Planner(
        policy, critic, num_samples, scheduler, inference_steps, seed, device, temperature,
        precision,
    )  # fmt: skip
    sha256 = hashlib.sha256(Path(policy).read_bytes()).hexdigest()
    return websocket_server(PolicyServer(planner, sha256).handle, host, port, max_size=None)


@contextlib.contextmanager
def spawned(serve_args: list[str], stop_timeout: float = 30.0):
    """`rise serve SERVE_ARGS` as a child process on a free loopback port: yields its
    ws:// URL and stops it on leaving, whatever happened (a failed rollout, SIGTERM from
    Snakemake or DVC): SIGINT, then SIGKILL if it has not exited after `stop_timeout` s."""
    cmd = [sys.executable, "-m", "rise", "serve", *serve_args, "--host", LOOPBACK, "--port", "0"]
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run `finally` too
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "rise serve: P on ws://127.0.0.1:PORT ..." once bound
        url = re.search(r"ws://\S+", line)
        if url is None:
            raise RuntimeError(f"rise serve exited ({proc.wait()}) before listening: {line!r}")
        yield url.group(0)
    finally:
        how = "had exited by itself"
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            how = "stopped by SIGINT"
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                how = f"stopped by SIGKILL, {stop_timeout:g} s after SIGINT"
        print(f"rise serve {how}: exit code {proc.returncode}", file=sys.stderr, flush=True)
        proc.stdout.close()
        signal.signal(signal.SIGTERM, previous)
