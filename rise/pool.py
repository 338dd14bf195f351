"""Training data: expert and non-expert files side by side, with 1/0 labels and windows.

A training sample is a pair of rows: the *state row* gives the observation history and the
next observation; the *action row* gives the action chunk, reward and done. Original
samples pair a row with itself; augmentation pairs (rise.augment) pair a non-expert state
with a nearby expert (or other play) state's action, as in the paper's Eq. 8.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import numpy as np
import torch

from rise.data import (
    Dataset,
    DatasetError,
    input_file,
    npz_array,
    open_npz,
    read_dataset,
    window_index,
)
from rise.envs import ENVS
from rise.tasks import EXPERT, dataset_owner, get


def observer(task: str):
    """What declares a task's observation keys and action size: its env's class, or the
    real robot's spec (a real robot declares them itself)."""
    spec = get(task)
    return spec.robot or ENVS[spec.env]


def obs_keys(task: str, obs_mode: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(low-dim keys, camera keys) a policy observes: `lowdim` sees the object pose,
    `image` sees the cameras plus proprioception, as in the paper."""
    cls = observer(task)
    if obs_mode == "lowdim":
        return tuple(cls.lowdim_keys), ()
    return tuple(cls.proprio_keys), tuple(cls.image_keys)


class Normalizer:
    """Low-dim observations to zero mean / unit std; actions from [min, max] to [-1, 1]."""

    def __init__(self, stats: dict[str, torch.Tensor]):
        self.stats = stats

    @classmethod
    def fit(cls, lowdim: np.ndarray, actions: np.ndarray) -> Normalizer:
        lo, hi = actions.min(0), actions.max(0)
        return cls(
            {
                "obs_mean": torch.as_tensor(lowdim.mean(0)),
                "obs_std": torch.as_tensor(lowdim.std(0) + 1e-6),
                "act_min": torch.as_tensor(lo),
                "act_scale": torch.as_tensor(np.maximum(hi - lo, 1e-6) / 2),
            }
        )

    def obs(self, x):
        return (torch.as_tensor(x) - self.stats["obs_mean"]) / self.stats["obs_std"]

    def act(self, a):
        return (torch.as_tensor(a) - self.stats["act_min"]) / self.stats["act_scale"] - 1.0

    def unact(self, a):
        return (torch.as_tensor(a) + 1.0) * self.stats["act_scale"] + self.stats["act_min"]


@dataclass
class Pool:
    lowdim: np.ndarray
    next_lowdim: np.ndarray
    images: dict[str, np.ndarray]
    next_images: dict[str, np.ndarray]
    actions: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    episode: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    offsets: dict[str, int]  # source -> its first row
    image_keys: tuple[str, ...]
    sizes: dict[str, int]  # source -> its number of rows
    rows: dict[str, int] = field(default_factory=dict)  # source -> rows in its file (all)
    # the expert file's env_args: the env its demos ran in, rebuilt to evaluate the policy
    env_args: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    def history_index(self, n_obs: int) -> np.ndarray:
        """(N, n_obs) rows of each row's observation history."""
        return window_index(self.episode, self.starts, self.lengths, np.arange(1 - n_obs, 1))

    def chunk_index(self, horizon: int) -> np.ndarray:
        """(N, horizon) rows of each row's action chunk."""
        return window_index(self.episode, self.starts, self.lengths, np.arange(horizon))

    def nstep(
        self, n: int, discount: float, absorbing: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every row t, the n-step backup of the IQL critic (rise.algos.iql): the row of
        the last step taken, t + m - 1 with m = min(n, the steps left in t's episode); the
        return sum_i<m gamma^i r_t+i; and the bootstrap factor gamma^m (1 - done_t+m-1).

        `absorbing`: an episode's `done` leads to an absorbing state that keeps paying its
        last reward, r / (1 - gamma) (SQIL's and DAC's treatment): a finished expert episode
        is worth the most, so the value rises towards success instead of falling to 0 at
        the expert's last step, where play that wanders off would outscore finishing."""
        window = self.chunk_index(n)
        valid = window == np.arange(len(self))[:, None] + np.arange(n)  # not clamped
        m = valid.sum(1)
        last = window[np.arange(len(self)), m - 1]
        ret = (valid * self.reward[window] * discount ** np.arange(n)).sum(1)
        if absorbing:
            ret = ret + discount**m * self.done[last] * self.reward[last] / (1.0 - discount)
        bootstrap = discount**m * (1.0 - self.done[last])
        return last, ret.astype(np.float32), bootstrap.astype(np.float32)


def _lowdim(ds: Dataset, keys, nxt: bool) -> np.ndarray:
    src = ds.next_obs if nxt else ds.obs
    return np.concatenate([src[k] for k in keys], -1).astype(np.float32)


def recorded_env(env_args: dict) -> str | None:
    """The env of ours a dataset was recorded in (a mini env, or a robosuite-tier env, which
    writes robomimic's env_args plus `rise_env`); None for a file from elsewhere."""
    if env_args.get("type") == "rise_mini":
        return env_args.get("env_name")
    return env_args.get("rise_env")


def check_task_data(sets: dict[str, Dataset], task: str, obs_mode: str) -> None:
    """Refuse a dataset of another task, naming file, key and value: recorded in an env the
    task does not learn from (files the workflow wrote say which), observations of other
    keys' shapes (image frames of another size included), actions of another size."""
    from rise.serve import observation_shapes  # the task's env (or robot) declares them

    spec = get(task)
    envs = {get(dataset_owner(task, s)).env for s in spec.sources}
    shapes = observation_shapes(task, obs_mode == "image")
    action_dim = observer(task).action_dim
    for ds in sets.values():
        env = recorded_env(ds.env_args)
        if env is not None and env not in envs:
            raise DatasetError(
                f"{ds.path}: data.attrs['env_args'] records env {env!r}; task {task} learns "
                f"from {', '.join(sorted(envs))}"
            )
        if ds.actions.shape[1] != action_dim:
            raise DatasetError(
                f"{ds.path}: actions are {ds.actions.shape[1]}-d, task {task} takes "
                f"{action_dim}-d actions"
            )
        for key, arr in ds.obs.items():
            want = tuple(shapes[key]) or (1,)  # read_dataset makes a scalar key (T, 1)
            if arr.shape[1:] != want:
                raise DatasetError(
                    f"{ds.path}: obs/{key} is {arr.shape[1:]} per step, task {task} observes {want}"
                )


def load_pool(
    files: dict[str, str], task: str, obs_mode: str, nonexpert_fraction: float = 1.0
) -> Pool:
    """Read the given sources (name -> path); rows of the `expert` source get reward 1.
    `nonexpert_fraction` keeps the first part of every non-expert source's episodes (the
    "amount of non-expert data" of the paper's Fig 6); at least one episode each."""
    lowdim_keys, image_keys = obs_keys(task, obs_mode)
    sets = {name: read_dataset(path, lowdim_keys, image_keys) for name, path in files.items()}
    check_task_data(sets, task, obs_mode)
    rows = {name: len(ds) for name, ds in sets.items()}
    if nonexpert_fraction < 1.0:
        sets = {
            name: ds
            if name == EXPERT
            else ds.head(max(1, round(nonexpert_fraction * len(ds.lengths))))
            for name, ds in sets.items()
        }
    offsets, n, ep_base = {}, 0, 0
    episode, starts = [], []
    for name, ds in sets.items():
        offsets[name] = n
        episode.append(ds.episode + ep_base)
        starts.append(ds.starts + n)
        n += len(ds)
        ep_base += len(ds.lengths)
    acts = {ds.actions.shape[1] for ds in sets.values()}
    if len(acts) > 1:
        raise DatasetError(f"action sizes differ between {list(files.values())}: {sorted(acts)}")
    return Pool(
        lowdim=np.concatenate([_lowdim(ds, lowdim_keys, False) for ds in sets.values()]),
        next_lowdim=np.concatenate([_lowdim(ds, lowdim_keys, True) for ds in sets.values()]),
        images={k: np.concatenate([ds.obs[k] for ds in sets.values()]) for k in image_keys},
        next_images={
            k: np.concatenate([ds.next_obs[k] for ds in sets.values()]) for k in image_keys
        },
        actions=np.concatenate([ds.actions for ds in sets.values()]),
        reward=np.concatenate(
            [np.full(len(ds), float(name == EXPERT), np.float32) for name, ds in sets.items()]
        ),
        done=np.concatenate([ds.dones for ds in sets.values()]),
        episode=np.concatenate(episode),
        starts=np.concatenate(starts),
        lengths=np.concatenate([ds.lengths for ds in sets.values()]),
        offsets=offsets,
        image_keys=image_keys,
        sizes={name: len(ds) for name, ds in sets.items()},
        rows=rows,
        env_args=sets[EXPERT].env_args if EXPERT in sets else {},
    )


PAIRS_ARRAYS = ("sources", "state_source", "state_index", "action_source", "action_index")


def pairs_info(path: str) -> dict:
    """What an augmentation pairs file was made from: {"sources", "rows" (source -> its
    feature rows), "epsilon"} ("rows" and "epsilon" None in files written before they were
    recorded). A file that is not a pairs archive is refused by name."""
    with open_npz(path, "augmentation pairs") as z:
        for key in PAIRS_ARRAYS:
            npz_array(z, path, key)
        info = {"sources": [str(s) for s in z["sources"]], "rows": None, "epsilon": None}
        if "rows" in z:
            rows = npz_array(z, path, "rows").tolist()
            if len(rows) != len(info["sources"]):
                raise DatasetError(f"{path}: array 'rows' has {len(rows)} entries, 'sources' "
                                   f"{len(info['sources'])}")  # fmt: skip
            info["rows"] = dict(zip(info["sources"], rows, strict=True))
            info["epsilon"] = float(npz_array(z, path, "epsilon"))
    return info


def check_pairs(path: str, rows: dict[str, int], epsilon: float | None = None) -> None:
    """Refuse pairs of another feature set (their sources' row counts are not the data's
    `rows`) or, when `epsilon` is given, of another epsilon; naming file, key and value."""
    info = pairs_info(path)
    for source, n in (info["rows"] or {}).items():
        if source in rows and rows[source] != n:
            raise DatasetError(
                f"{path}: pairs of another feature set: made from {n} {source} rows, the "
                f"{source} data has {rows[source]} (rerun augment on this data)"
            )
    if epsilon is not None and info["epsilon"] is not None:
        if not np.isclose(info["epsilon"], epsilon, rtol=0, atol=1e-9):
            raise DatasetError(
                f"{path}: pairs made with epsilon {info['epsilon']}, this job's epsilon "
                f"is {epsilon}"
            )


def augmented_rows(pool: Pool, pairs_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(state rows, action rows) of the augmentation pairs whose sources are in the pool."""
    if pairs_path is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    check_pairs(pairs_path, pool.rows)
    with open_npz(pairs_path, "augmentation pairs") as z:
        names = [str(s) for s in z["sources"]]
        keep = np.isin(z["state_source"], [names.index(s) for s in pool.offsets if s in names])
        keep &= np.isin(z["action_source"], [names.index(s) for s in pool.offsets if s in names])
        # rows beyond a source's kept prefix (nonexpert_fraction < 1) are not in the pool
        size = np.array([pool.sizes.get(s, 0) for s in names])
        keep &= z["state_index"] < size[z["state_source"]]
        keep &= z["action_index"] < size[z["action_source"]]
        base = np.array([pool.offsets.get(s, 0) for s in names])
        states = base[z["state_source"][keep]] + z["state_index"][keep]
        actions = base[z["action_source"][keep]] + z["action_index"][keep]
    return states.astype(np.int64), actions.astype(np.int64)


def alternating_batches(
    n_orig: int, n_aug: int, batch_size: int, steps: int, rng: np.random.Generator
):
    """Yield (kind, indices) for `steps` batches: one epoch of original samples, then one of
    augmented samples, and so on (the authors' schedule). Without augmentation, only originals."""
    kinds = [("orig", n_orig)] + ([("aug", n_aug)] if n_aug > 0 else [])
    done = 0
    while True:
        for kind, n in kinds:
            order = rng.permutation(n)
            for i in range(0, n, batch_size):
                if done == steps:
                    return
                yield kind, order[i : i + batch_size]
                done += 1


def expert_share_batches(
    expert: np.ndarray,
    n_aug: int,
    share: float,
    batch_size: int,
    steps: int,
    rng: np.random.Generator,
):
    """Yield ("all", indices) for `steps` batches over the original samples followed by the
    `n_aug` augmented ones: `share` of every batch from the expert rows (`expert`, a boolean
    mask over the originals), the rest uniformly from the non-expert rows and the augmented
    samples. However much non-expert and augmented data there is, the expert's rows keep
    their share of the loss (the `cpu` tier's `policy.expert_share`)."""
    n_expert = min(batch_size - 1, max(1, round(share * batch_size)))
    experts = np.flatnonzero(expert)
    others = np.concatenate([np.flatnonzero(~expert), len(expert) + np.arange(n_aug)])
    if len(experts) == 0 or len(others) == 0:
        raise ValueError("policy.expert_share needs expert and non-expert samples")
    for _ in range(steps):
        picks = rng.choice(experts, n_expert), rng.choice(others, batch_size - n_expert)
        yield "all", np.concatenate(picks)


def augment_share_batches(
    n_orig: int, n_aug: int, share: float, batch_size: int, steps: int, rng: np.random.Generator
):
    """Yield ("all", indices) for `steps` batches over the original samples followed by the
    `n_aug` augmented ones: `share` of every batch from the augmented samples, the rest from
    the originals. However few pairs the augmentation finds, they keep their share of the
    loss (`policy.augment_share`; the authors' schedule gives them one batch an epoch)."""
    n_aug_batch = min(batch_size - 1, max(1, round(share * batch_size)))
    for _ in range(steps):
        picks = (
            rng.choice(n_orig, batch_size - n_aug_batch),
            n_orig + rng.choice(n_aug, n_aug_batch),
        )
        yield "all", np.concatenate(picks)


CHECKPOINT_KEYS = ("kind", "meta", "state_dict", "normalizer")


def read_checkpoint(path: str, kind: str, task: str | None = None, obs: str | None = None):
    """A rise checkpoint as a dict, loaded without running code (`weights_only=True`: a
    pickle that would call anything is refused); DatasetError naming the file and the key if
    it is unreadable, truncated, not of `kind`, or of another `task` / observation mode."""
    input_file(path, f"{kind} checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1]
        raise DatasetError(
            f"{path}: refused: not a plain checkpoint of tensors and numbers; loading it "
            f"would run code ({first})"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... by format
        raise DatasetError(
            f"{path}: cannot read as a checkpoint (truncated or not a torch file): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        raise DatasetError(f"{path}: not a rise checkpoint (needs keys {CHECKPOINT_KEYS})")
    if ckpt["kind"] != kind:
        raise DatasetError(f"{path}: key 'kind' is {ckpt['kind']!r}, expected {kind!r}")
    for key, want in (("task", task), ("obs", obs)):
        if want is not None and ckpt["meta"].get(key) != want:
            raise DatasetError(
                f"{path}: key 'meta.{key}' is {ckpt['meta'].get(key)!r}, this job's is {want!r}"
            )
    return ckpt
