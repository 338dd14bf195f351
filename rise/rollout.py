"""Stage `rollout`: the robot side of `rise serve`, for a simulated robot, and the reading of
recorded rollouts as evaluation results.

`rollout` runs the task's env and gets every action chunk from a policy server through
`rise.client`, as a robot's control loop would, and records each episode in robomimic's
HDF5 layout: per demo the attributes `success` and `chunk_starts` (the steps at which a
new chunk began), and on the data group `rise_rollout` (JSON: task, region, seed, round,
the served policy's SHA-256). A real robot's logger writes the same file with its own
success labels. `evaluate_recorded` turns such files into the same metrics.json /
episodes.json as a simulated evaluation.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from rise.atomic import write_json
from rise.client import PolicyClient
from rise.collect import rollout as run_episode
from rise.data import DatasetError, demo_names, write_dataset
from rise.envs import make_env
from rise.tasks import get

ATTR = "rise_rollout"


def require(info: dict, path, keys) -> dict:
    """`info` (a rollout record) if it has every one of `keys`, else DatasetError naming it."""
    missing = [k for k in keys if k not in info]
    if missing:
        raise DatasetError(f"{path}: data.attrs[{ATTR!r}] has no {missing[0]!r}")
    return info


def recording(f: h5py.File, path, keys) -> dict:
    """A recorded file's `rise_rollout` record with at least `keys`; DatasetError naming
    file and key if it is missing, not a JSON object or lacks one of them."""
    if "data" not in f or ATTR not in f["data"].attrs:
        raise DatasetError(f"{path}: no data.attrs[{ATTR!r}] (not a recorded rollout)")
    try:
        info = json.loads(f["data"].attrs[ATTR])
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: data.attrs[{ATTR!r}] is not JSON: {exc}") from None
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: data.attrs[{ATTR!r}] is not a JSON object")
    return require(info, path, keys)


def success_label(demo: h5py.Group, path) -> bool:
    """A recorded episode's `success` label: true/false or 1/0; DatasetError naming file,
    episode and value for a missing or other label (a string "no" is not a failure)."""
    name = demo.name.rsplit("/", 1)[-1]
    if "success" not in demo.attrs:
        raise DatasetError(f"{path}: {name} has no 'success' attribute (label it)")
    label = demo.attrs["success"]
    if not (isinstance(label, (bool, np.bool_, int, np.integer)) and label in (0, 1)):
        raise DatasetError(
            f"{path}: {name} attrs success={label!r}: a label is true / false (or 1 / 0)"
        )
    return bool(label)


class ServedController:
    """obs -> action through a policy server: a new chunk every `n_action_steps` steps from
    the last `n_obs_steps` observations, as `evaluate` plans."""

    def __init__(self, client: PolicyClient):
        self.client, meta = client, client.metadata
        self.keys, self.n_obs = list(meta["observation_shapes"]), meta["n_obs_steps"]
        self.history: list[dict] = []
        self.plan: list[np.ndarray] = []
        self.chunk_starts: list[int] = []
        self.steps = 0

    def __call__(self, obs: dict) -> np.ndarray:
        obs = {k: obs[k] for k in self.keys}
        self.history = (self.history or [obs] * self.n_obs)[1:] + [obs]
        if not self.plan:
            self.plan = list(self.client.infer(self.history))
            self.chunk_starts.append(self.steps)
        self.steps += 1
        return self.plan.pop(0)


def rollout(
    *, task: str, server: str, episodes: int, region: str | None, seed: int, round_: int, out: str
) -> dict:
    """Record `episodes` episodes of `task` from `region` (default: its evaluation region),
    acting only through the policy server at `server`."""
    spec = get(task)
    region = region or spec.eval_region
    with PolicyClient(server) as client:
        meta = client.metadata
        if meta["task"] != task:
            raise DatasetError(f"{server} serves a policy of task {meta['task']!r}, not {task!r}")
        env = make_env(spec.env, cameras=meta["obs"] == "image")
        if region not in env.regions:
            raise DatasetError(f"--region {region}: task {task} has regions {env.regions}")
        recorded = []
        for i in range(episodes):
            controller = ServedController(client)
            rng = np.random.default_rng([seed, round_, i])  # each round from fresh starts
            ep = run_episode(env, controller, region, rng, True)
            ep["attrs"] = {
                "success": bool(ep["success"]),
                "chunk_starts": np.asarray(controller.chunk_starts, np.int64),
            }
            recorded.append(ep)
        env_args = env.env_args()
        env.close()
    info = {"task": task, "region": region, "seed": seed, "round": round_,
            "policy_sha256": meta["policy_sha256"], "server": server}  # fmt: skip
    write_dataset(out, recorded, env_args, "rollout", 0.0, attrs={ATTR: json.dumps(info)})
    successes = sum(ep["attrs"]["success"] for ep in recorded)
    return {**info, "episodes": episodes, "successes": successes}


def evaluate_recorded(*, files: list[str], out: str, episodes_out: str) -> dict:
    """metrics.json and episodes.json from recorded rollouts: every demo needs a `success`
    attribute (a robot's label); files must record the same task and region."""
    records, infos = [], []
    for path in files:
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from None
        with f:
            infos.append(recording(f, path, ("task", "region", "policy_sha256")))
            for name in demo_names(f, path):
                demo = f["data"][name]
                record = {"episode": len(records), "file": path, "demo": name,
                          "success": success_label(demo, path),
                          "steps": int(len(demo["actions"]))}  # fmt: skip
                if "obs/object" in demo and "next_obs/object" in demo:  # where it left the object
                    record["init_object"] = np.round(demo["obs/object"][0], 4).tolist()
                    record["final_object"] = np.round(demo["next_obs/object"][-1], 4).tolist()
                records.append(record)
    for key in ("task", "region"):
        if len({info[key] for info in infos}) > 1:
            raise DatasetError(f"recorded files mix {key}s: {sorted({i[key] for i in infos})}")
    if not records:
        raise DatasetError(f"{files}: no recorded episodes")
    successes = sum(r["success"] for r in records)
    metrics = {
        "task": infos[0]["task"],
        "region": infos[0]["region"],
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / len(records),
        "mean_steps": float(np.mean([r["steps"] for r in records])),
        "recorded": list(files),
        "policy_sha256": sorted({i["policy_sha256"] for i in infos}),
    }
    write_json(episodes_out, records)
    write_json(out, metrics)
    return metrics
