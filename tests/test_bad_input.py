"""The catalogue of bad input (issue 17, docs/reliability.md): each case is refused before
any work starts, with a message that names the file, key and value, and writes nothing.

Every case builds its bad input in a fresh folder and runs the stage that would read it
(`rise ...`, or `snakemake -n --config ...`); outputs go to `out/`, which must stay empty.
"""

import json
import pickle
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
import yaml
from workflow_helpers import ROOT, env

from rise.augment import augment
from rise.cli import main
from rise.data import read_dataset, write_dataset
from rise.embed import embed
from rise.rollout import ATTR as ROLLOUT_ATTR

TASK = "mini_square_peg"
EPS = 0.15
CASES = []


def case(name: str, message: str):
    """Register a case: `make(ctx)` builds the bad input and returns the command that reads it;
    `message` (formatted with ctx's paths) must appear in its error output."""

    def register(make):
        CASES.append(pytest.param(make, message, id=name))
        return make

    return register


@pytest.fixture(scope="module")
def good(cell, tmp_path_factory):
    """Valid inputs: the shared cell's data and checkpoints, its features and pairs."""
    tmp = tmp_path_factory.mktemp("good")
    files = {s: str(cell / f"{s}.hdf5") for s in ("expert", "play")}
    embed(task=TASK, obs="lowdim", files=files, weights="random", dim=16, batch_size=32,
          out=str(tmp / "features.npz"))  # fmt: skip
    augment(features=str(tmp / "features.npz"), epsilon=EPS, k=15, play_to_play=True,
            skip_play=5, skip_expert=2, out=str(tmp / "pairs.npz"),
            stats_out=str(tmp / "stats.json"))  # fmt: skip
    return SimpleNamespace(**files, critic=str(cell / "c.pt"), policy=str(cell / "p.pt"),
                           pairs=str(tmp / "pairs.npz"))  # fmt: skip


@pytest.fixture
def ctx(good, tmp_path):
    return SimpleNamespace(good=good, tmp=tmp_path, out=tmp_path / "out", bad=str(tmp_path / "bad"))


# --- params.yaml: `rise collect` (any stage) reads it first -------------------------------


def params_case(name, message, edit):
    def make(ctx):
        cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
        edit(cfg)
        Path(ctx.bad).write_text(yaml.safe_dump(cfg))
        return ["collect", "--params", ctx.bad, "--scale", "smoke", "--task", TASK, "--obs",
                "lowdim", "--source", "expert", "--out", f"{ctx.out}/expert.hdf5"]  # fmt: skip

    case(name, "{bad}: " + message)(make)


params_case("params-unknown-key", "key '(top level)': Additional properties are not allowed "
            "('lamda' was unexpected)", lambda c: c.__setitem__("lamda", 0.1))  # fmt: skip
params_case("params-unknown-key-in-section", "key 'policy': Additional properties are not "
            "allowed ('stepz' was unexpected)",
            lambda c: c["policy"].__setitem__("stepz", 3))  # fmt: skip
params_case("params-wrong-type", "key 'critic.steps': '20' is not of type 'integer'",
            lambda c: c["critic"].__setitem__("steps", "20"))  # fmt: skip
params_case("params-lambda-negative", "key 'lambda': -0.1 is less than the minimum of 0",
            lambda c: c.__setitem__("lambda", -0.1))  # fmt: skip
params_case("params-epsilon-too-large", "key 'epsilon': 2.5 is greater than the maximum of 2",
            lambda c: c.__setitem__("epsilon", 2.5))  # fmt: skip
params_case("params-steps-zero", "key 'scales.smoke.policy.steps': 0 is less than the minimum "
            "of 1", lambda c: c["scales"]["smoke"]["policy"].__setitem__("steps", 0))  # fmt: skip
params_case("params-unknown-task", "key 'tasks.1': unknown task 'mini_square_pge'",
            lambda c: c.__setitem__("tasks", [TASK, "mini_square_pge"]))  # fmt: skip
params_case("params-unknown-method", "key 'methods.1': 'DQN' is not one of",
            lambda c: c.__setitem__("methods", ["BC", "DQN"]))  # fmt: skip
params_case("params-empty-seeds", "key 'seeds': [] should be non-empty",
            lambda c: c.__setitem__("seeds", []))  # fmt: skip
params_case("params-duplicate-seeds", "key 'seeds': [0, 0] has non-unique elements",
            lambda c: c.__setitem__("seeds", [0, 0]))  # fmt: skip


# --- `snakemake --config` overrides: refused while the workflow is read (dry run) ----------


def config_case(name, message, override):
    def make(ctx):
        shutil.copy(ROOT / "params.yaml", ctx.tmp / "params.yaml")
        return ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(ctx.out), "-n",
                "--configfile", str(ctx.tmp / "params.yaml"), "--config", override]  # fmt: skip

    case(name, message)(make)


config_case("config-lambda-negative", "params.yaml: key 'lambda': -1 is less than the minimum",
            "lambda=-1")  # fmt: skip
config_case("config-duplicate-seeds", "params.yaml: key 'seeds': [1, 1] has non-unique elements",
            "seeds=[1, 1]")  # fmt: skip
config_case("config-hyperparameter-section", "--config override of 'policy' is not supported",
            "policy={steps: 1}")  # fmt: skip


# --- datasets (HDF5): `rise train-critic` reads them --------------------------------------


def train_critic(ctx, expert, *extra, obs="lowdim"):
    data = [f"expert={expert}"] + [f"play={ctx.good.play}"] * (obs == "lowdim")
    return ["train-critic", "--scale", "smoke", "--threads", "1", "--task", TASK, *extra,
            "--obs", obs, "--data", *data, "--seed", "0", "--out", f"{ctx.out}/c.pt",
            "--curve", f"{ctx.out}/c.csv"]  # fmt: skip


def dataset_case(name, message, edit):
    """`edit(file)` spoils a copy of the expert data (an open h5py file)."""

    def make(ctx):
        shutil.copy(ctx.good.expert, ctx.bad)
        with h5py.File(ctx.bad, "a") as f:
            edit(f)
        return train_critic(ctx, ctx.bad)

    case(name, "{bad}: " + message)(make)


def resize(key: str, width: int):
    """An edit: every demo's `key` (actions, or an observation in obs and next_obs) as
    zeros `width` wide."""

    def edit(f):
        for demo in f["data"].values():
            for name in ["actions"] if key == "actions" else [f"obs/{key}", f"next_obs/{key}"]:
                rows = len(demo[name])
                del demo[name]
                demo[name] = np.zeros((rows, width), np.float32)

    return edit


def shorten(f):
    del f["data/demo_0/obs/eef_pos"]
    f["data/demo_0/obs/eef_pos"] = np.zeros((3, 3), np.float32)


def another_env(f):
    f["data"].attrs["env_args"] = json.dumps({"env_name": "mini_threading", "type": "rise_mini"})


def robosuite_env(f):
    args = {"env_name": "NutAssemblySquare", "type": 1, "rise_env": "rs_square_peg"}
    f["data"].attrs["env_args"] = json.dumps(args)


dataset_case("data-nan", "demo_1/obs/eef_pos contains NaN or inf",
             lambda f: f["data/demo_1/obs/eef_pos"].__setitem__((0, 0), np.nan))  # fmt: skip
dataset_case("data-missing-key", "demo_0/next_obs/object is missing",
             lambda f: f.__delitem__("data/demo_0/next_obs/object"))  # fmt: skip
dataset_case("data-missing-actions", "demo_1 has no 'actions'",
             lambda f: f.__delitem__("data/demo_1/actions"))  # fmt: skip
dataset_case("data-num-samples", "demo_0 attrs num_samples=9 but it has",
             lambda f: f["data/demo_0"].attrs.__setitem__("num_samples", 9))  # fmt: skip
dataset_case("data-short-obs", "demo_0/obs/eef_pos has 3 rows, actions have", shorten)
dataset_case("data-no-demos", "'data' holds no demo_N groups",
             lambda f: [f.__delitem__(f"data/{d}") for d in ("demo_0", "demo_1")])  # fmt: skip
dataset_case("data-env-args-not-json", "data.attrs['env_args'] is not JSON",
             lambda f: f["data"].attrs.__setitem__("env_args", "{oops"))  # fmt: skip
dataset_case("data-wrong-action-dim", "actions are 7-d, task mini_square_peg takes 5-d actions",
             resize("actions", 7))  # fmt: skip
dataset_case("data-another-tasks-keys", "obs/object is (8,) per step, task mini_square_peg "
             "observes (7,)", resize("object", 8))  # the mug's object pose  # fmt: skip
dataset_case("data-another-tasks-env", "data.attrs['env_args'] records env 'mini_threading'; "
             "task mini_square_peg learns from mini_square_peg", another_env)  # fmt: skip
dataset_case("data-another-tiers-env", "data.attrs['env_args'] records env 'rs_square_peg'; "
             "task mini_square_peg learns from mini_square_peg", robosuite_env)  # fmt: skip


@case("data-truncated", "{bad}: cannot open as HDF5 (truncated or not HDF5)")
def _(ctx):
    Path(ctx.bad).write_bytes(Path(ctx.good.expert).read_bytes()[:2000])
    return train_critic(ctx, ctx.bad)


@case("data-missing-file", "{bad}: no such dataset file (does not exist)")
def _(ctx):
    return train_critic(ctx, ctx.bad)


@case("data-symlink-loop", "{bad}: no such dataset file (is a symlink loop)")
def _(ctx):
    Path(ctx.bad).symlink_to(ctx.bad)
    return train_critic(ctx, ctx.bad)


@case("data-image-frames-wrong-size", "{bad}: obs/agentview_image is (32, 32, 3) per step, "
      "task mini_square_peg observes (84, 84, 3)")  # fmt: skip
def _(ctx):
    ds = read_dataset(ctx.good.expert, ["eef_pos", "eef_quat", "gripper_qpos"])
    n = len(ds) + 1
    frames = np.zeros((n, 32, 32, 3), np.uint8)
    obs = {k: np.concatenate([v, ds.next_obs[k][-1:]]) for k, v in ds.obs.items()}
    episode = {"obs": {**obs, "agentview_image": frames, "eye_in_hand_image": frames},
               "actions": ds.actions, "states": np.zeros((n, 1)),
               "rewards": np.zeros(n - 1)}  # fmt: skip
    write_dataset(ctx.bad, [episode], ds.env_args, "expert")
    return train_critic(ctx, ctx.bad, obs="image")


# --- checkpoints: `rise train-policy --critic`, `rise evaluate --policy/--critic` ----------


def idql(ctx, critic):
    return ["train-policy", "--scale", "smoke", "--threads", "1", "--task", TASK, "--obs",
            "lowdim", "--method", "IDQL", "--critic", critic, "--data",
            f"expert={ctx.good.expert}", f"play={ctx.good.play}", "--seed", "0",
            "--out", f"{ctx.out}/p.pt", "--curve", f"{ctx.out}/p.csv"]  # fmt: skip


def evaluate(ctx, policy, critic):
    return ["evaluate", "--scale", "smoke", "--threads", "1", "--policy", policy, "--critic",
            critic, "--seed", "0", "--out", f"{ctx.out}/metrics.json", "--episodes-out",
            f"{ctx.out}/episodes.json", "--videos-out", f"{ctx.out}/videos"]  # fmt: skip


def another_task(ckpt):
    ckpt["meta"]["task"] = "mini_threading"


def edited_checkpoint(ctx, src, edit):
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, ctx.bad)


@case("ckpt-truncated", "{bad}: cannot read as a checkpoint (truncated or not a torch file)")
def _(ctx):
    Path(ctx.bad).write_bytes(Path(ctx.good.critic).read_bytes()[:4000])
    return idql(ctx, ctx.bad)


@case("ckpt-pickle-with-code", "{bad}: refused: not a plain checkpoint of tensors and numbers; "
      "loading it would run code")  # fmt: skip
def _(ctx):
    Path(ctx.bad).write_bytes(pickle.dumps({"kind": "critic", "run": print}))  # a callable
    return idql(ctx, ctx.bad)


@case("ckpt-not-a-rise-checkpoint", "{bad}: not a rise checkpoint (needs keys")
def _(ctx):
    torch.save({"weights": torch.zeros(3)}, ctx.bad)
    return idql(ctx, ctx.bad)


@case("ckpt-another-task", "{bad}: key 'meta.task' is 'mini_threading', this job's is "
      "'mini_square_peg'")  # fmt: skip
def _(ctx):
    edited_checkpoint(ctx, ctx.good.critic, another_task)
    return idql(ctx, ctx.bad)


@case("ckpt-another-obs-mode", "{bad}: key 'meta.obs' is 'image', this job's is 'lowdim'")
def _(ctx):
    edited_checkpoint(ctx, ctx.good.critic, lambda c: c["meta"].__setitem__("obs", "image"))
    return idql(ctx, ctx.bad)


@case("ckpt-another-kind", "{good.policy}: key 'kind' is 'policy', expected 'critic'")
def _(ctx):
    return idql(ctx, ctx.good.policy)


@case("ckpt-critic-as-policy", "{good.critic}: key 'kind' is 'critic', expected 'policy'")
def _(ctx):
    return evaluate(ctx, ctx.good.critic, ctx.good.critic)


@case("ckpt-critic-of-another-task-than-policy", "{bad}: key 'meta.task' is 'mini_threading', "
      "this job's is 'mini_square_peg'")  # fmt: skip
def _(ctx):
    edited_checkpoint(ctx, ctx.good.critic, another_task)
    return evaluate(ctx, ctx.good.policy, ctx.bad)


# --- augmentation pairs: `rise train-critic --pairs` --------------------------------------


@case("pairs-another-epsilon", f"{{good.pairs}}: pairs made with epsilon {EPS}, this job's "
      "epsilon is 0.08")  # fmt: skip
def _(ctx):
    return train_critic(ctx, ctx.good.expert, "--pairs", ctx.good.pairs, "--epsilon", "0.08")


@case("pairs-another-feature-set", "{good.pairs}: pairs of another feature set: made from")
def _(ctx):
    shutil.copy(ctx.good.expert, ctx.bad)
    with h5py.File(ctx.bad, "a") as f:  # the expert data without its second episode
        del f["data/demo_1"]
    return train_critic(ctx, ctx.bad, "--pairs", ctx.good.pairs)


@case("pairs-pickled-array", "{bad}: array 'sources': Object arrays cannot be loaded when "
      "allow_pickle=False")  # fmt: skip
def _(ctx):
    with open(ctx.bad, "wb") as f:
        np.savez(f, sources=np.array(["expert", None], dtype=object), state_source=[0])
    return train_critic(ctx, ctx.good.expert, "--pairs", ctx.bad)


@case("pairs-truncated", "{bad}: cannot read as an .npz archive of augmentation pairs")
def _(ctx):
    Path(ctx.bad).write_bytes(Path(ctx.good.pairs).read_bytes()[:300])
    return train_critic(ctx, ctx.good.expert, "--pairs", ctx.bad)


# --- recorded rollouts: `rise evaluate --recorded` -----------------------------------------


def recorded(ctx, labels, record=None):
    """The expert data as a robot's recorded rollouts, one `success` label per episode
    (None: unlabelled), `record` its data.attrs['rise_rollout'] (default: a valid one)."""
    ds = read_dataset(ctx.good.expert, ["eef_pos"])
    info = {"task": TASK, "region": "eval", "seed": 0, "round": 0, "policy_sha256": "0"}
    shutil.copy(ctx.good.expert, ctx.bad)
    with h5py.File(ctx.bad, "a") as f:
        f["data"].attrs[ROLLOUT_ATTR] = json.dumps(info) if record is None else record
        for name, label in zip(ds.demos, labels, strict=True):
            if label is not None:
                f["data"][name].attrs["success"] = label
    return ["evaluate", "--recorded", ctx.bad, "--out", f"{ctx.out}/metrics.json",
            "--episodes-out", f"{ctx.out}/episodes.json"]  # fmt: skip


@case("rollouts-without-success-labels", "{bad}: demo_1 has no 'success' attribute (label it)")
def _(ctx):
    return recorded(ctx, [True, None])


@case("rollouts-label-not-boolean", "{bad}: demo_1 attrs success='no': a label is true / false "
      "(or 1 / 0)")  # fmt: skip
def _(ctx):
    return recorded(ctx, [True, "no"])  # bool("no") would count it a success


@case("rollouts-record-not-json", "{bad}: data.attrs['rise_rollout'] is not JSON")
def _(ctx):
    return recorded(ctx, [True, False], record="{task: oops")


@case("rollouts-record-without-task", "{bad}: data.attrs['rise_rollout'] has no 'task'")
def _(ctx):
    return recorded(ctx, [True, False], record=json.dumps({"region": "eval"}))


@case("rollouts-not-recorded", "{good.expert}: no data.attrs['rise_rollout'] (not a recorded "
      "rollout)")  # fmt: skip
def _(ctx):
    return ["evaluate", "--recorded", ctx.good.expert, "--out", f"{ctx.out}/metrics.json",
            "--episodes-out", f"{ctx.out}/episodes.json"]  # fmt: skip


# --- the test -------------------------------------------------------------------------------


def run(argv: list[str], capsys) -> tuple[int, str]:
    if argv[0] == "snakemake":
        done = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr
    code = main(argv)
    return code, capsys.readouterr().err


def names(ctx) -> dict:
    return {"bad": ctx.bad, "good": ctx.good}


@pytest.mark.parametrize("make, message", CASES)
def test_bad_input_is_refused_by_name_before_any_work(ctx, make, message, capsys):
    argv = make(ctx)
    code, err = run(argv, capsys)
    expected = message.format(**names(ctx))
    assert code != 0 and expected in " ".join(err.split()), err[-2000:]
    written = [p for p in ctx.out.rglob("*") if p.is_file()] if ctx.out.exists() else []
    assert written == [], f"{argv[0]} wrote {written}"


def test_the_catalogue_has_at_least_25_cases():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


def test_the_good_inputs_pass_the_same_checks(good):
    """The checks refuse the cases above, not everything: the valid files go through."""
    from rise.pool import check_pairs, load_pool, read_checkpoint

    pool = load_pool({"expert": good.expert, "play": good.play}, TASK, "lowdim")
    check_pairs(good.pairs, pool.rows, EPS)
    assert read_checkpoint(good.critic, "critic", TASK, "lowdim")["kind"] == "critic"
    assert read_checkpoint(good.policy, "policy", TASK, "lowdim")["meta"]["task"] == TASK
