"""Stage `import`: bring a robomimic-layout dataset (a robomimic or MimicGen download, or a
file recorded on your robot) into the workflow as one source of a task.

The file is validated first with the same checks every stage applies on reading (plus the
full robomimic set: rewards and states), only the demos of `filter_key` (robomimic's
`mask/<key>`, e.g. `better`, `okay`, `worse`) are kept, and those demos are copied with
h5py unchanged: same names, arrays, dtypes, chunking and compression. The copy records its
source (expert or non-expert kind), keeps `env_args` and the masks restricted to the kept
demos, and gets `mask/train` / `mask/valid` if the original had none.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from rise.atomic import atomic_path
from rise.data import DatasetError, read_dataset
from rise.pool import obs_keys, observer
from rise.tasks import get

ROBOMIMIC_ARRAYS = ("actions", "rewards", "dones", "states")


def _mask(f: h5py.File, key: str, path) -> list[str]:
    if "mask" not in f or key not in f["mask"]:
        known = sorted(f["mask"].keys()) if "mask" in f else []
        raise DatasetError(f"{path}: no filter key mask/{key}; the file has {known}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in f["mask"][key][()]]


def import_dataset(
    *,
    src: str,
    task: str,
    obs: str,
    source: str,
    out: str,
    filter_key: str | None = None,
    valid_fraction: float = 0.1,
) -> dict:
    """Validate `src`, then write its (filtered) demos to `out` as `source` of `task`."""
    lowdim_keys, image_keys = obs_keys(task, "lowdim")[0], ()
    if obs == "image":
        image_keys = obs_keys(task, "image")[1]
    try:
        with h5py.File(src, "r") as f:
            demos = _mask(f, filter_key, src) if filter_key else None
    except OSError as exc:
        raise DatasetError(f"{src}: cannot open as HDF5 (truncated or not HDF5): {exc}") from exc
    ds = read_dataset(src, lowdim_keys, image_keys, demos=demos, require=ROBOMIMIC_ARRAYS)
    spec = get(task)
    action_dim = observer(task).action_dim
    if ds.actions.shape[1] != action_dim:
        raise DatasetError(
            f"{src}: {ds.actions.shape[1]}-d actions, but task {task} "
            f"({spec.env or 'a real robot'}) takes {action_dim}-d actions"
        )
    with atomic_path(out) as tmp:
        with h5py.File(src, "r") as f, h5py.File(tmp, "w") as g:
            data = g.create_group("data")
            for name, value in f["data"].attrs.items():
                data.attrs[name] = value
            for name in ds.demos:
                f.copy(f["data"][name], data, name=name)
            data.attrs["total"] = int(ds.lengths.sum())
            data.attrs["rise_source"] = source
            data.attrs["rise_imported_from"] = str(src)
            data.attrs.setdefault("env_args", json.dumps({}))
            kept = set(ds.demos)
            masks = {k: _mask(f, k, src) for k in (f["mask"].keys() if "mask" in f else [])}
            if "train" not in masks or "valid" not in masks:
                n_valid = int(round(valid_fraction * len(ds.demos)))
                masks["train"] = ds.demos[: len(ds.demos) - n_valid]
                masks["valid"] = ds.demos[len(ds.demos) - n_valid :]
            for key, names in masks.items():
                g.create_dataset(f"mask/{key}", data=np.array([n for n in names if n in kept], "S"))
    return {
        "imported": out,
        "from": src,
        "filter_key": filter_key,
        "demos": len(ds.demos),
        "samples": int(ds.lengths.sum()),
        "source": source,
        "obs_keys": list(lowdim_keys) + list(image_keys),
    }
