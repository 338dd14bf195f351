"""Where the time of one Table I cell goes: profile one training job and one evaluation job.

    python bench/bench_train.py --task mini_square_peg --scale cpu --steps 300 --episodes 10

Builds the cell's inputs with the real stages (collect, embed, augment, critic) in a
temporary folder, then times a RISE policy training job and its evaluation under cProfile,
printing seconds per training step / per evaluation episode and the functions that
dominate. `--steps` / `--episodes` shorten the jobs (per-step costs do not depend on them);
`--batch-size` and `--threads` override the preset to compare settings, and
`--set SECTION.KEY=VALUE` any other setting (e.g. `--set baselines.cql_samples=4`). SQIL and
CQL (`--method CQL`) train their actor-critic instead of a critic and a diffusion policy.
`--inputs DIR` links the data, pairs and critic from a folder an earlier `--keep` wrote
instead of rebuilding them, so policy variants train on the same inputs (settings of
`collect`, `embed`, `augment` and the critic then do not apply: those files are the folder's):

    python bench/bench_train.py --inputs CELL --keep CELL_lam0 --method RISE --lam 0 \
        --steps 36000 --set policy.weighting=none evaluate.num_samples=1
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise import tasks as T  # noqa: E402
from rise.augment import augment  # noqa: E402
from rise.collect import collect  # noqa: E402
from rise.config import load, section, task_epsilon, task_lambda  # noqa: E402
from rise.embed import embed  # noqa: E402
from rise.evaluate import evaluate, sampler_settings  # noqa: E402
from rise.methods import METHODS  # noqa: E402
from rise.train import train_actor_critic, train_critic, train_policy  # noqa: E402


def timed(label: str, func, profile: bool = False, top: int = 12, **kwargs):
    """Run func(**kwargs); print wall time (and the cProfile top by own time)."""
    prof = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    result = func(**kwargs)
    if prof:
        prof.disable()
    elapsed = time.perf_counter() - start
    print(f"{label:40s} {elapsed:8.2f} s", flush=True)
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)
    return result, elapsed


def reuse_inputs(folder: str, task, method, tmp: str) -> dict[str, str]:
    """Link the datasets, pairs and critic an earlier `--keep` wrote to `folder` into `tmp`
    (those the method needs checked first), so `tmp` is a whole cell for bench_advantage.py;
    returns the datasets."""
    datasets = [f"{d.source}.hdf5" for d in task.data]
    needed = datasets + ["p.npz"] * method.augment + ["c.pt"] * method.critic
    missing = [n for n in needed if not Path(folder, n).is_file()]
    if missing:
        sys.exit(f"--inputs {folder}: no {', '.join(missing)} there (write a cell with --keep)")
    for n in datasets + ["p.npz", "c.pt"]:
        src, dst = Path(folder, n).resolve(), Path(tmp, n)
        if src.is_file() and dst.resolve() != src:
            dst.unlink(missing_ok=True)
            dst.symlink_to(src)
    return {d.source: f"{tmp}/{d.source}.hdf5" for d in task.data}


def built_inputs(tmp: str, name: str, task, hp: dict, eps: float) -> dict[str, str]:
    """Collect, embed and augment with the real stages into `tmp`; returns the datasets."""
    files = {}
    for d in task.data:
        files[d.source] = f"{tmp}/{d.source}.hdf5"
        n = T.scaled_episodes(d.episodes, hp["collect"]["episodes_scale"], 2)
        timed(
            f"collect {d.source} ({n} episodes)",
            collect,
            task=d.owner or name,
            env_name=task.env,
            source=d.source,
            episodes=n,
            seed=0,
            cameras=False,
            out=files[d.source],
        )
    e = hp["embed"]
    timed(
        "embed",
        embed,
        task=name,
        obs="lowdim",
        files=files,
        weights=e["weights"],
        dim=e["dim"],
        batch_size=e["batch_size"],
        out=f"{tmp}/f.npz",
    )
    a = hp["augment"]
    timed(
        "augment",
        augment,
        features=f"{tmp}/f.npz",
        epsilon=eps,
        k=a["k"],
        play_to_play=a["play_to_play"],
        skip_play=a["skip_play"],
        skip_expert=a["skip_expert"],
        out=f"{tmp}/p.npz",
        stats_out=f"{tmp}/s.json",
    )
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mini_square_peg", choices=list(T.TASKS))
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--steps", type=int, default=300, help="training steps to time")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--seed", type=int, default=0, help="training and evaluation seed (data: seed 0)"
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile tables")
    parser.add_argument("--method", default="RISE", choices=list(METHODS))
    parser.add_argument(
        "--region", nargs="+", default=[None], help="evaluation start regions (default: the task's)"
    )
    parser.add_argument("--critic-steps", type=int, help="critic steps (default: --steps)")
    parser.add_argument("--lam", type=float, help="override lambda (RISE's spectral penalty)")
    parser.add_argument("--eps", type=float, help="override epsilon (the augmentation's)")
    parser.add_argument("--keep", help="write the cell's files to this folder, not a temporary one")
    parser.add_argument("--inputs", help="take data, pairs and critic from an earlier --keep")
    parser.add_argument("--down-dims", type=int, nargs="+", help="override the U-Net widths")
    parser.add_argument("--lr", type=float, help="override the learning rates")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="override a setting"
    )
    args = parser.parse_args()

    cfg = load(args.params)
    names = ("collect", "embed", "augment", "critic", "policy", "evaluate", "baselines")
    hp = {s: section(cfg, args.scale, s) for s in names}
    for item in args.set:
        key, _, value = item.partition("=")
        name, _, field = key.partition(".")
        if name not in hp or field not in hp[name]:
            parser.error(f"--set {item}: no setting {key!r} in {args.params}")
        hp[name][field] = yaml.safe_load(value)
    pol, ev, base = hp["policy"], hp["evaluate"], hp["baselines"]
    pol["steps"] = base["steps"] = args.steps
    hp["critic"]["steps"] = args.critic_steps or args.steps
    if args.batch_size:
        pol["batch_size"] = hp["critic"]["batch_size"] = base["batch_size"] = args.batch_size
    if args.down_dims:
        pol["down_dims"] = args.down_dims
    if args.lr:
        pol["lr"] = hp["critic"]["lr"] = base["lr"] = args.lr
    task, eps, lam = T.get(args.task), task_epsilon(cfg, args.task), task_lambda(cfg, args.task)
    lam = lam if args.lam is None else args.lam
    eps = eps if args.eps is None else args.eps
    print(
        f"{args.task} at scale {args.scale}: {args.steps} steps, batch {pol['batch_size']}, "
        f"{args.threads} thread(s), eps {eps}, lambda {lam}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        m = METHODS[args.method]
        if args.inputs:
            files = reuse_inputs(args.inputs, task, m, tmp)
        else:
            files = built_inputs(tmp, args.task, task, hp, eps)
        pairs = f"{tmp}/p.npz" if m.augment else None
        common = dict(
            task=args.task, obs="lowdim", seed=args.seed, threads=args.threads, pairs=pairs
        )
        critic = f"{tmp}/c.pt" if m.critic else None
        if m.critic and not args.inputs:
            _, t = timed(
                "train-critic",
                train_critic,
                files=files,
                hp=hp["critic"],
                out=critic,
                curve=f"{tmp}/c.csv",
                **common,
            )
            print(f"  critic: {1000 * t / hp['critic']['steps']:.1f} ms per step")
        if m.family == "actor_critic":
            common.pop("pairs")
            train, kwargs = train_actor_critic, dict(method=m.name, hp=base)
        else:
            kwargs = dict(critic_path=critic, lam=lam if m.lipschitz else 0.0, hp=pol)
            train = train_policy
            if m.family == "ilid":
                kwargs["ilid"] = base
        _, t = timed(
            f"train-policy ({m.name})",
            train,
            profile=args.profile,
            files=files if m.nonexpert else {T.EXPERT: files[T.EXPERT]},
            out=f"{tmp}/p.pt",
            curve=f"{tmp}/p.csv",
            **kwargs,
            **common,
        )
        print(f"  policy: {1000 * t / args.steps:.1f} ms per step")
        with open(f"{tmp}/p.csv") as f:
            head, *_, last = f.read().strip().splitlines()
        print(f"  last curve row ({head}): {last}")
        for region in args.region:
            name = region or task.eval_region
            metrics, t = timed(
                f"evaluate from {name}",
                evaluate,
                profile=args.profile,
                policy=f"{tmp}/p.pt",
                critic=critic,
                episodes=args.episodes,
                **sampler_settings(ev, pol),
                seed=args.seed,
                videos=0,
                out=f"{tmp}/m_{name}.json",
                episodes_out=f"{tmp}/e_{name}.json",
                videos_out=f"{tmp}/v_{name}",
                threads=args.threads,
                region=region,
            )
            print(
                f"  evaluate from {name}: {t / args.episodes:.2f} s per episode "
                f"(mean {metrics['mean_steps']:.0f} steps, success {metrics['success_rate']:.0%})"
            )


if __name__ == "__main__":
    main()
