"""Stage `relabel`: round r+1's datasets from round r's data and its recorded rollouts.

As the paper does (Table II), a round's policy is rolled out (`rise rollout`, or a robot's
logger), its successful episodes join the expert data and its failures the non-expert data,
and the next round retrains on both; no new demonstrations. Failures go to the task's first
non-expert source (`play` for the coverage rows), so every later stage reads the same
sources as in round 0 and nothing downstream changes; the other non-expert sources are not
rewritten (round r+1 reads round 0's files for them, rise.paths.round_datasets).

One call writes one source's file: the round-r file copied unchanged (same demos, arrays,
masks) plus the picked episodes, each with its origin (file, demo, policy SHA-256, round);
`data.attrs["rise_relabel"]` lists every round's additions. Every recorded file is checked
first (success labels, no empty episode, the data's observation keys and shapes, the task
and round it records) and a defect stops the job naming file, episode and key, before
anything is written.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from rise.atomic import atomic_hdf5
from rise.data import DatasetError, demo_names, read_dataset
from rise.rollout import ATTR as ROLLOUT_ATTR
from rise.rollout import recording, require, success_label
from rise.tasks import EXPERT, failures_source

ATTR = "rise_relabel"
ARRAYS = ("actions", "rewards", "dones", "states")  # what a demo needs to be trained on


def _layout(demo: h5py.Group) -> dict[str, tuple]:
    """obs key -> (per-step shape, dtype) of one demo."""
    return {k: (v.shape[1:], v.dtype.str) for k, v in demo["obs"].items()}


def _open(path: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from None


def _check_rollouts(task: str, round_: int, files: list[str], layout: dict, action_dim: int):
    """[(file, info, [(demo, success)])] of recorded rollouts, or DatasetError naming the
    file, the episode and the key at fault."""
    checked = []
    for path in files:
        with _open(path) as f:
            info = recording(f, path, ("task", "round"))
            for key, want in (("task", task), ("round", round_)):
                if info.get(key) != want:
                    raise DatasetError(
                        f"{path}: {ROLLOUT_ATTR}[{key!r}] is {info.get(key)!r}, relabeling "
                        f"round {round_} of task {task} needs {want!r}"
                    )
            require(info, path, ("policy_sha256",))  # each added demo's origin names it
            demos = []
            for name in demo_names(f, path):
                demo = f["data"][name]
                success = success_label(demo, path)
                if "actions" not in demo or len(demo["actions"]) == 0:
                    raise DatasetError(f"{path}: {name} is empty (0 actions)")
                if "obs" not in demo:
                    raise DatasetError(f"{path}: {name} has no 'obs' group")
                got = _layout(demo)
                for key in sorted(set(layout) | set(got)):
                    if key not in got:
                        raise DatasetError(f"{path}: {name}/obs/{key} is missing (the data has it)")
                    if key not in layout:
                        raise DatasetError(
                            f"{path}: {name}/obs/{key} is not one of the data's observation "
                            f"keys {sorted(layout)}"
                        )
                    if got[key] != layout[key]:
                        raise DatasetError(
                            f"{path}: {name}/obs/{key} is {got[key]} (step shape, dtype), the "
                            f"data's is {layout[key]}"
                        )
                if demo["actions"].shape[1:] != (action_dim,):
                    raise DatasetError(
                        f"{path}: {name}/actions are {demo['actions'].shape[1:]}, the data's "
                        f"are ({action_dim},)"
                    )
                demos.append((name, success))
        # arrays: lengths, NaN, dtypes, as every stage checks them on reading
        images = [k for k, (shape, _) in layout.items() if len(shape) == 3]
        read_dataset(path, [k for k in layout if k not in images], images, require=ARRAYS)
        checked.append((path, info, demos))
    return checked


def relabel(
    *, task: str, source: str, data: str, rollouts: list[str], round_: int, out: str
) -> dict:
    """Write round `round_ + 1`'s `source` file to `out`: `data` (round `round_`'s) plus
    the successes (source `expert`) or the failures (the failures source) of `rollouts`."""
    target = failures_source(task)
    if source not in (EXPERT, target):
        raise DatasetError(
            f"--source {source}: relabeling writes {EXPERT} (+ successes) and {target} "
            f"(+ failures) of task {task}; its other sources stay as they are"
        )
    with _open(data) as f:
        names = demo_names(f, data)
        layout = _layout(f["data"][names[0]])
        action_dim = f["data"][names[0]]["actions"].shape[1]
        history = json.loads(f["data"].attrs.get(ATTR, "[]"))
    checked = _check_rollouts(task, round_, rollouts, layout, action_dim)
    keep = source == EXPERT  # successes to the expert data, failures to the non-expert data
    picked = [
        (path, info, name) for path, info, demos in checked for name, ok in demos if ok == keep
    ]
    last = max(int(n.split("_")[1]) for n in names if n.split("_")[1].isdigit())
    added = []
    with atomic_hdf5(out) as dst:
        with _open(data) as src:
            group = dst.create_group("data")
            for key, value in src["data"].attrs.items():
                group.attrs[key] = value
            for name in names:
                src.copy(src["data"][name], group, name=name)
            for i, (path, info, name) in enumerate(picked, start=last + 1):
                with _open(path) as f:
                    f.copy(f["data"][name], group, name=f"demo_{i}")
                demo = group[f"demo_{i}"]
                demo.attrs["num_samples"] = len(demo["actions"])
                origin = {"file": path, "episode": name, "policy_sha256": info["policy_sha256"],
                          "round": round_, "success": keep}  # fmt: skip
                demo.attrs[ATTR] = json.dumps(origin)
                added.append({"demo": f"demo_{i}", **origin})
            group.attrs["total"] = int(sum(len(group[n]["actions"]) for n in group))
            masks = {k: list(src["mask"][k][()]) for k in src["mask"]} if "mask" in src else {}
            masks.setdefault("train", [])
            masks["train"] += [a["demo"].encode() for a in added]
            for key, items in masks.items():
                dst.create_dataset(f"mask/{key}", data=np.array(items, dtype="S"))
            entry = {
                "round": round_ + 1,
                "source": source,
                "base": data,
                "labels": "success" if keep else "failure",
                "rollouts": [{"file": p, **i} for p, i, _ in checked],
                "added": [a["demo"] for a in added],
            }
            group.attrs[ATTR] = json.dumps(history + [entry])
    origins = [f"{a['file']}:{a['episode']}" for a in added]
    return {"out": out, "source": source, "round": round_ + 1, "kept": len(names),
            "added": len(added), "from": origins}  # fmt: skip
