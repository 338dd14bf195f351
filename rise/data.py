"""Datasets in robomimic's HDF5 layout: write, validate on read, and index for training.

Layout (robomimic v0.3): ``data/demo_N/{obs/<key>, next_obs/<key>, actions, rewards,
dones, states}``, ``demo_N.attrs["num_samples"]``, ``data.attrs["total"]``,
``data.attrs["env_args"]`` (JSON), ``mask/<filter_key>`` (demo names). Images are uint8
HWC. Whether a file is expert or non-expert is a property of the file (the source), turned
into 1/0 rewards at training time; the stored ``rewards`` are the environment's own
success signal and are never used for training.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import zipfile
from dataclasses import dataclass, field

import h5py
import numpy as np

from rise.atomic import atomic_hdf5


class DatasetError(ValueError):
    """A dataset file the workflow refuses to use; the message names file, demo and key."""


def write_dataset(
    path,
    episodes: list[dict],
    env_args: dict,
    source: str,
    valid_fraction: float = 0.1,
    attrs: dict | None = None,
) -> None:
    """Write episodes atomically. Each episode: obs {key: (T+1, ...)}, actions (T, A),
    states (T+1, S), rewards (T,), and optionally `attrs` (per-demo attributes, e.g. a
    recorded rollout's success label); `attrs` here are the file's (on the data group)."""
    if not episodes:
        raise DatasetError(f"{path}: refusing to write a dataset with no episodes")
    with atomic_hdf5(path) as f:
        data = f.create_group("data")
        total = 0
        for i, ep in enumerate(episodes):
            n = len(ep["actions"])
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            for key, value in ep.get("attrs", {}).items():
                demo.attrs[key] = value
            for key, value in ep["obs"].items():
                value = np.asarray(value)
                opts = {"compression": "gzip", "compression_opts": 4} if value.ndim == 4 else {}
                demo.create_dataset(f"obs/{key}", data=value[:-1], **opts)
                demo.create_dataset(f"next_obs/{key}", data=value[1:], **opts)
            demo.create_dataset("actions", data=np.asarray(ep["actions"], np.float32))
            demo.create_dataset("rewards", data=np.asarray(ep["rewards"], np.float32))
            dones = np.zeros(n, np.int64)
            dones[-1] = 1
            demo.create_dataset("dones", data=dones)
            demo.create_dataset("states", data=np.asarray(ep["states"])[:-1])
            total += n
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(env_args)
        data.attrs["rise_source"] = source
        for key, value in (attrs or {}).items():
            data.attrs[key] = value
        names = [f"demo_{i}" for i in range(len(episodes))]
        n_valid = int(round(valid_fraction * len(names)))
        f.create_dataset("mask/valid", data=np.array(names[len(names) - n_valid :], dtype="S"))
        f.create_dataset("mask/train", data=np.array(names[: len(names) - n_valid], dtype="S"))


def input_file(path, what: str) -> str:
    """`path` as a string if it is a regular file (after links); else DatasetError naming it:
    missing, a symlink loop, or not a file (a folder, a device)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        reason = "is a symlink loop" if exc.errno == errno.ELOOP else "does not exist"
        raise DatasetError(f"{path}: no such {what} file ({reason})") from None
    if not stat.S_ISREG(mode):
        raise DatasetError(f"{path}: no such {what} file (not a regular file)")
    return str(path)


def open_npz(path, what: str):
    """np.load of an .npz without pickles (object arrays are refused when read); a file that
    is not an .npz archive is refused naming it."""
    try:
        return np.load(input_file(path, what), allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: cannot read as an .npz archive of {what}: {exc}") from None


def npz_array(z, path, key: str) -> np.ndarray:
    """One array of an open .npz, refused naming file and key if missing or pickled."""
    try:
        return z[key]
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: array {key!r}: {exc}") from None


def demo_names(f: h5py.File, path) -> list[str]:
    """The file's demo_N groups in numeric order; a file without any is refused by name."""
    if "data" not in f:
        raise DatasetError(f"{path}: no 'data' group (not a robomimic-layout file)")
    names = [k for k in f["data"].keys() if k.startswith("demo_")]
    if not names:
        raise DatasetError(f"{path}: 'data' holds no demo_N groups")
    return sorted(names, key=lambda s: int(s.split("_")[1]) if s.split("_")[1].isdigit() else s)


def _check_array(path, where: str, arr: np.ndarray, n: int, image: bool) -> None:
    if len(arr) != n:
        raise DatasetError(f"{path}: {where} has {len(arr)} rows, actions have {n}")
    if image:
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            raise DatasetError(
                f"{path}: {where} must be uint8 images (T, H, W, 3), got {arr.dtype} {arr.shape}"
            )
    elif not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(f"{path}: {where} must be numeric, got {arr.dtype}")
    elif np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise DatasetError(f"{path}: {where} contains NaN or inf")


@dataclass
class Dataset:
    """All demos of one file, concatenated along time; `episode`/`step` locate each row."""

    path: str
    source: str
    env_args: dict
    obs: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray]
    actions: np.ndarray
    dones: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    demos: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.actions)

    def head(self, episodes: int) -> Dataset:
        """The first `episodes` episodes (rows stay where they were: a prefix)."""
        k = min(int(episodes), len(self.lengths))
        n = int(self.starts[k]) if k < len(self.lengths) else len(self)
        return Dataset(
            path=self.path,
            source=self.source,
            env_args=self.env_args,
            obs={key: v[:n] for key, v in self.obs.items()},
            next_obs={key: v[:n] for key, v in self.next_obs.items()},
            actions=self.actions[:n],
            dones=self.dones[:n],
            episode=self.episode[:n],
            step=self.step[:n],
            starts=self.starts[:k],
            lengths=self.lengths[:k],
            demos=self.demos[:k],
        )


def read_dataset(
    path, obs_keys, image_keys=(), demos=None, require=("actions", "dones")
) -> Dataset:
    """Read and validate a file; any defect raises DatasetError naming file, demo and key.

    `demos`: only these demo names (default: all); `require`: per-demo arrays that must be
    there with one row per action (importing demands the full robomimic set)."""
    path = input_file(path, "dataset")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open as HDF5 (truncated or not HDF5): {exc}") from exc
    keys = list(obs_keys) + list(image_keys)
    cols = {"obs": {k: [] for k in keys}, "next_obs": {k: [] for k in keys}}
    actions, dones, lengths = [], [], []
    with f:
        names = demo_names(f, path)
        if demos is not None:
            unknown = sorted(set(demos) - set(names))
            if unknown:
                raise DatasetError(f"{path}: no demos named {unknown[:3]} under 'data'")
            names = [n for n in names if n in set(demos)]
        try:
            env_args = json.loads(f["data"].attrs.get("env_args", "{}"))
        except (TypeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{path}: data.attrs['env_args'] is not JSON: {exc}") from exc
        source = f["data"].attrs.get("rise_source", "")
        for name in names:
            demo = f["data"][name]
            for required in ("actions", "dones", *require):
                if required not in demo:
                    raise DatasetError(f"{path}: {name} has no '{required}'")
            act = demo["actions"][()]
            n = len(act)
            if n == 0:
                raise DatasetError(f"{path}: {name} is empty (0 actions)")
            if act.ndim != 2:
                raise DatasetError(f"{path}: {name}/actions must be (T, A), got {act.shape}")
            _check_array(path, f"{name}/actions", act, n, image=False)
            if actions and act.shape[1] != actions[0].shape[1]:
                raise DatasetError(
                    f"{path}: {name}/actions are {act.shape[1]}-d, {names[0]}'s are "
                    f"{actions[0].shape[1]}-d"
                )
            if "num_samples" in demo.attrs and int(demo.attrs["num_samples"]) != n:
                raise DatasetError(
                    f"{path}: {name} attrs num_samples={int(demo.attrs['num_samples'])} "
                    f"but it has {n} actions"
                )
            for group in ("obs", "next_obs"):
                for key in keys:
                    where = f"{name}/{group}/{key}"
                    if f"{group}/{key}" not in demo:
                        raise DatasetError(f"{path}: {where} is missing")
                    arr = demo[group][key][()]
                    _check_array(path, where, arr, n, image=key in image_keys)
                    if key not in image_keys and arr.ndim == 1:
                        arr = arr[:, None]
                    cols[group][key].append(
                        arr.astype(np.float32) if key not in image_keys else arr
                    )
            for key in sorted(set(require) - {"actions", "dones"}):
                _check_array(path, f"{name}/{key}", demo[key][()], n, image=False)
            d = demo["dones"][()].astype(np.float32)
            _check_array(path, f"{name}/dones", d, n, image=False)
            actions.append(act.astype(np.float32))
            dones.append(d)
            lengths.append(n)
    lengths = np.asarray(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    dims = {k: {a.shape[1:] for a in cols["obs"][k]} for k in keys}
    for key, shapes in dims.items():
        if len(shapes) > 1:
            raise DatasetError(f"{path}: obs/{key} changes shape between demos: {sorted(shapes)}")
    return Dataset(
        path=path,
        source=str(source),
        env_args=env_args,
        obs={k: np.concatenate(v) for k, v in cols["obs"].items()},
        next_obs={k: np.concatenate(v) for k, v in cols["next_obs"].items()},
        actions=np.concatenate(actions),
        dones=np.concatenate(dones),
        episode=np.repeat(np.arange(len(lengths)), lengths),
        step=np.concatenate([np.arange(n) for n in lengths]),
        starts=starts,
        lengths=lengths,
        demos=names,
    )


def window_index(
    ds_episode: np.ndarray, starts: np.ndarray, lengths: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Row indices at `offsets` from every row, clamped to the row's own episode.

    History (offsets -1, 0) repeats the first frame at an episode start; an action chunk
    (offsets 0..H-1) repeats the last action at its end, as in Chi et al.'s sampler.
    """
    n = len(ds_episode)
    rows = np.arange(n)[:, None] + offsets[None, :]
    lo = starts[ds_episode][:, None]
    hi = (starts + lengths - 1)[ds_episode][:, None]
    return np.clip(rows, lo, hi)
