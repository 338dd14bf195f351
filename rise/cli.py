"""One CLI, one sub-command per stage: `python -m rise <stage> ...` or `rise <stage> ...`.

Snakemake rules and DVC stages both call these with explicit arguments. Hyperparameters
come from the params file at the given scale (`--params params.yaml --scale cpu`); the
values that name artifacts (task, obs mode, lambda, epsilon, seed, paths) are arguments.
Inputs are checked before any work starts; outputs are written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys

from rise.atomic import OutputError, check_writable
from rise.config import ConfigError, load, section
from rise.data import DatasetError
from rise.methods import METHODS
from rise.tasks import EXPERT
from rise.threads import pin as pin_threads


def _hp(args, name: str) -> dict:
    return section(load(args.params), args.scale, name)


def _device(args) -> str:
    """--device, else params' `device`; checked here, before any data is read."""
    from rise.nets import resolve_device

    name = args.device or load(args.params)["device"]
    try:
        resolve_device(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return name


def _task(name: str):
    from rise import tasks

    try:
        return tasks.get(name)
    except ValueError as exc:
        raise ConfigError(f"--task: {exc}") from None


def _files(args) -> dict[str, str]:
    """`--data SOURCE=FILE ...` as a dict, expert first; the sources must be the task's."""
    task, files = _task(args.task), {}
    for item in args.data:
        source, sep, path = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--data {item!r}: expected SOURCE=FILE")
        if source not in task.sources:
            raise ConfigError(
                f"--data {item!r}: task {args.task} has no dataset {source!r}; "
                f"it has {', '.join(task.sources)}"
            )
        files[source] = path
    if EXPERT not in files:
        raise ConfigError(f"--data: no {EXPERT}=FILE given")
    return {EXPERT: files.pop(EXPERT), **files}


def _checkpoints(args, task: str | None = None, obs: str | None = None) -> None:
    """--policy and --critic (where given): readable without running code, of their kind,
    of `task` / `obs` where known, else of the policy's; checked before any work."""
    from rise.pool import read_checkpoint

    if getattr(args, "policy", None) is not None:
        meta = read_checkpoint(args.policy, "policy", task, obs)["meta"]
        task, obs = meta.get("task"), meta.get("obs")
    if args.critic is not None:
        read_checkpoint(args.critic, "critic", task, obs)


def _job(args) -> dict:
    """The arguments every training job takes from the command line, --pairs and --critic
    checked (a pairs file's feature set is checked against the data when it is read)."""
    if not 0.0 < args.nonexpert_fraction <= 1.0:
        raise ConfigError(f"--nonexpert-fraction {args.nonexpert_fraction}: must be in (0, 1]")
    if args.pairs is not None:
        from rise.pool import check_pairs

        check_pairs(args.pairs, {}, args.epsilon)
    elif args.epsilon is not None:
        raise ConfigError("--epsilon checks --pairs: give both or neither")
    if getattr(args, "critic", None) is not None:
        _checkpoints(args, args.task, args.obs)
    keys = ("task", "obs", "seed", "out", "curve", "threads", "nonexpert_fraction", "device")
    return {k: getattr(args, k) for k in keys}


def cmd_collect(args):
    from rise.collect import collect
    from rise.tasks import dataset_owner, scaled_episodes

    cfg, task = load(args.params), _task(args.task)
    if args.source not in task.sources:
        raise ConfigError(
            f"--source {args.source}: task {args.task} has no such dataset; "
            f"it has {', '.join(task.sources)}"
        )
    owner = dataset_owner(args.task, args.source)
    if owner != args.task:
        raise ConfigError(
            f"--source {args.source}: task {args.task} shares task {owner}'s dataset; "
            f"collect it with --task {owner}"
        )
    hp = section(cfg, args.scale, "collect")
    paper_size = next(d.episodes for d in task.data if d.source == args.source)
    return collect(
        task=args.task,
        env_name=task.env,
        source=args.source,
        episodes=scaled_episodes(paper_size, hp["episodes_scale"], hp["min_episodes"]),
        seed=cfg["data_seed"],
        cameras=args.obs == "image",
        out=args.out,
        valid_fraction=hp["valid_fraction"],
    )


def cmd_import(args):
    from rise.import_robomimic import import_dataset
    from rise.paths import dataset
    from rise.tasks import dataset_owner

    task = _task(args.task)
    if args.source not in task.sources:
        raise ConfigError(
            f"--source {args.source}: task {args.task} learns from {', '.join(task.sources)}"
        )
    out = args.out or dataset(dataset_owner(args.task, args.source), args.obs, args.source)
    return import_dataset(
        src=args.input,
        task=args.task,
        obs=args.obs,
        source=args.source,
        out=out,
        filter_key=args.filter_key,
        valid_fraction=_hp(args, "collect")["valid_fraction"],
    )


def cmd_coverage(args):
    from rise.coverage import coverage

    cfg = load(args.params)
    return coverage(
        task=args.task,
        files=_files(args),
        seeds=list(cfg["seeds"]),
        episodes=section(cfg, args.scale, "evaluate")["episodes"],
        out=args.out,
    )


def cmd_embed(args):
    from rise.embed import embed

    hp = _hp(args, "embed")
    return embed(
        task=args.task,
        obs=args.obs,
        files=_files(args),
        weights=hp["weights"],
        dim=hp["dim"],
        batch_size=hp["batch_size"],
        out=args.out,
        threads=args.threads,
        device=args.device,
    )


def cmd_augment(args):
    from rise.augment import augment

    hp = _hp(args, "augment")
    return augment(
        features=args.features,
        epsilon=args.epsilon,
        k=hp["k"],
        play_to_play=hp["play_to_play"],
        skip_play=hp["skip_play"],
        skip_expert=hp["skip_expert"],
        out=args.out,
        stats_out=args.stats,
    )


def cmd_train_critic(args):
    from rise.train import train_critic

    job = _job(args)
    train_critic(files=_files(args), pairs=args.pairs, hp=_hp(args, "critic"), **job)


def cmd_train_policy(args):
    from rise.train import train_policy

    m = METHODS[args.method]
    files = _files(args)
    job = _job(args)
    checks = [
        ("non-expert --data", m.nonexpert, len(files) > 1 or None),
        ("--critic", m.critic, args.critic),
        ("--pairs", m.augment, args.pairs),
    ]
    for flag, needed, value in checks:
        if needed != (value is not None):
            raise ConfigError(f"method {m.name} {'needs' if needed else 'does not take'} {flag}")
    if m.family == "actor_critic":
        from rise.train import train_actor_critic

        return train_actor_critic(files=files, method=m.name, hp=_hp(args, "baselines"), **job)
    if args.lam < 0 or (args.lam > 0 and not m.lipschitz):
        raise ConfigError(
            f"--lam {args.lam}: method {m.name} takes "
            f"{'lambda >= 0' if m.lipschitz else 'no spectral-norm penalty'}"
        )
    train_policy(
        files=files,
        pairs=args.pairs,
        critic_path=args.critic,
        lam=args.lam,
        hp=_hp(args, "policy"),
        ilid=_hp(args, "baselines") if m.family == "ilid" else None,
        **job,
    )


def _planner_args(args) -> dict:
    """What `evaluate` and `serve` build their Planner from: checkpoints, the preset's
    sampler, seed, device and threads."""
    from rise.evaluate import sampler_settings

    cfg = load(args.params)
    hp, pol = section(cfg, args.scale, "evaluate"), section(cfg, args.scale, "policy")
    return {
        "policy": args.policy,
        "critic": args.critic,
        **sampler_settings(hp, pol),
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
    }


def cmd_evaluate(args):
    if args.recorded:
        from rise.rollout import evaluate_recorded

        return evaluate_recorded(files=args.recorded, out=args.out, episodes_out=args.episodes_out)
    missing = [f for f in ("policy", "seed", "videos_out") if getattr(args, f) is None]
    if missing:
        flags = ", ".join("--" + f.replace("_", "-") for f in missing)
        raise ConfigError(f"evaluate needs {flags} (or --recorded FILE ... for a robot's rollouts)")
    _checkpoints(args)
    from rise.evaluate import evaluate

    hp = _hp(args, "evaluate")
    return evaluate(
        **_planner_args(args),
        episodes=hp["episodes"],
        videos=hp["videos"],
        out=args.out,
        episodes_out=args.episodes_out,
        videos_out=args.videos_out,
        region=args.region,
    )


def cmd_serve(args):
    import logging
    import os
    import signal

    from rise.serve import make_server

    for flag, path in (("--policy", args.policy), ("--critic", args.critic)):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{flag} {path}: no such file")
    _checkpoints(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = make_server(**_planner_args(args), host=args.host, port=args.port)
    host, port = server.socket.getsockname()[:2]
    # Ctrl-C / SIGINT stops it even when started from a background shell, which leaves
    # SIGINT ignored (and Python then keeps it ignored): `rise rollout` stops it so
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"rise serve: {args.policy} on ws://{host}:{port} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()


def cmd_rollout(args):
    import contextlib
    import os

    from rise.rollout import rollout
    from rise.serve import spawned

    _task(args.task)
    episodes = _hp(args, "relabel")["episodes"] if args.episodes is None else args.episodes
    if episodes < 1:
        raise ConfigError(f"--episodes {episodes}: must be at least 1")
    if (args.server is None) == (args.policy is None):
        raise ConfigError("rollout needs --server URL (a running `rise serve`) or --policy P")
    for flag, path in (("--policy", args.policy), ("--critic", args.critic)):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{flag} {path}: no such file")
    _checkpoints(args, args.task)
    if args.policy is None:
        server = contextlib.nullcontext(args.server)
    else:  # `rise serve` in its own process, stopped when the rollout ends or fails
        serve = ["--params", args.params, "--scale", args.scale, "--policy", args.policy,
                 "--seed", str(args.seed), "--threads", str(args.threads),
                 "--device", args.device]  # fmt: skip
        server = spawned(serve + ["--critic", args.critic] * (args.critic is not None))
    with server as url:
        return rollout(task=args.task, server=url, episodes=episodes, region=args.region,
                       seed=args.seed, round_=args.round, out=args.out)  # fmt: skip


def cmd_relabel(args):
    from rise.relabel import relabel

    _task(args.task)
    return relabel(task=args.task, source=args.source, data=args.data, rollouts=args.rollouts,
                   round_=args.round, out=args.out)  # fmt: skip


def cmd_table(args):
    from rise.tables import table1

    cells: dict[tuple[str, str], list[str]] = {}
    missing: dict[tuple[str, str], list[str]] = {}
    for flag, items, into in (("--cell", args.cell, cells), ("--missing", args.missing, missing)):
        for task, method, *files in items or []:
            if not files:
                raise ConfigError(f"{flag} {task} {method}: no files given")
            _task(task)
            into[(task, method)] = files
    if not cells and not missing:
        raise ConfigError("table needs --cell TASK METHOD FILE... (or --missing, for a real row)")
    if missing:
        needed = [f for files in missing.values() for f in files]
        print(f"rise table: {len(needed)} recorded rollout file(s) still needed, their cells "
              f"are left out: {' '.join(needed)}", file=sys.stderr)  # fmt: skip
    df = table1(cells, args.out, args.md, args.json, missing)
    return df.to_dict(orient="records")


def cmd_table2(args):
    from rise.figures import rounds_png
    from rise.tables import table2

    rounds: dict[int, list[str]] = {}
    for r, *files in args.round:
        if not r.isdigit() or not files:
            raise ConfigError(f"--round {r}: expected a round number and its metrics files")
        rounds[int(r)] = files
    df = table2(rounds, args.task, args.variant, args.out, args.md, args.json)
    rounds_png(df, args.png)
    return df.to_dict(orient="records")


def cmd_figure(args):
    from rise.figures import figure

    points = []
    for series, x, *files in args.point:
        if not files:
            raise ConfigError(f"--point {series} {x}: no metrics files given")
        points.append((series, x, files))
    df = figure(
        name=args.name, points=points, task=args.task, out_csv=args.out_csv, out_png=args.out_png
    )
    return df.to_dict(orient="records")


def cmd_dvc_yaml(args):
    from rise.dvcgen import render

    text = render(load(args.params), args.params)
    if args.check:
        with open(args.out) as f:
            if f.read() != text:
                raise ConfigError(
                    f"{args.out} is out of date with {args.params}: run "
                    f"`rise dvc-yaml --params {args.params} --out {args.out}`"
                )
        return {"up_to_date": args.out}
    from rise.atomic import write_text

    write_text(args.out, text)
    return {"written": args.out}


def cmd_share(args):
    from rise import share

    return getattr(share, args.stage)(args.targets, remote=args.remote, jobs=args.jobs)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rise", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="stage", required=True)

    def stage(name, func, help_):
        s = sub.add_parser(name, help=help_)
        s.set_defaults(func=func)
        s.add_argument("--params", default="params.yaml", help="params file (validated)")
        s.add_argument("--scale", choices=["smoke", "cpu", "paper"], help="size preset")
        s.add_argument(
            "--threads",
            type=int,
            default=0,
            help="threads of torch/OpenMP (0: $RISE_THREADS, else 1, right when jobs share cores)",
        )
        return s

    def device_arg(s):
        s.add_argument("--device", help="cpu | cuda | cuda:N | auto (default: params' device)")

    def task_args(s):
        s.add_argument("--task", required=True)
        s.add_argument("--obs", choices=["lowdim", "image"], required=True)

    s = stage("collect", cmd_collect, "scripted data collection -> robomimic HDF5")
    task_args(s)
    s.add_argument("--source", required=True, help="a dataset the task owns (rise.tasks)")
    s.add_argument("--out", required=True)

    s = stage("import", cmd_import, "import a robomimic-layout HDF5 as one dataset of a task")
    task_args(s)
    s.add_argument("--input", required=True, help="robomimic-layout HDF5 file")
    s.add_argument("--source", required=True, help="which of the task's datasets it becomes")
    s.add_argument("--filter-key", help="keep only the demos of mask/<key> (e.g. better)")
    s.add_argument("--out", help="default: the task's data/<task>/<obs>/<source>.hdf5")

    data_help = "SOURCE=FILE for each dataset (expert first by name, then non-expert)"
    s = stage("embed", cmd_embed, "per-frame features on the unit sphere")
    task_args(s)
    device_arg(s)
    s.add_argument("--data", nargs="+", required=True, metavar="SOURCE=FILE", help=data_help)
    s.add_argument("--out", required=True)

    s = stage("coverage", cmd_coverage, "PNG: data and evaluation start positions")
    task_args(s)
    s.add_argument("--data", nargs="+", required=True, metavar="SOURCE=FILE", help=data_help)
    s.add_argument("--out", required=True)

    s = stage("augment", cmd_augment, "kNN augmentation pairs within epsilon (faiss)")
    s.add_argument("--features", required=True)
    s.add_argument("--epsilon", type=float, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--stats", required=True)

    for name, func, help_ in (
        ("train-critic", cmd_train_critic, "IQL critic on 1/0 labels"),
        ("train-policy", cmd_train_policy, "diffusion policy"),
    ):
        s = stage(name, func, help_)
        task_args(s)
        device_arg(s)
        s.add_argument("--data", nargs="+", required=True, metavar="SOURCE=FILE", help=data_help)
        s.add_argument("--pairs")
        s.add_argument("--epsilon", type=float, help="the epsilon of --pairs (checked)")
        s.add_argument(
            "--nonexpert-fraction",
            type=float,
            default=1.0,
            help="use the first part of each non-expert dataset's episodes (Fig 6)",
        )
        s.add_argument("--seed", type=int, required=True)
        s.add_argument("--out", required=True)
        s.add_argument("--curve", required=True)
        if name == "train-policy":
            s.add_argument("--method", choices=sorted(METHODS), required=True)
            s.add_argument("--lam", type=float, default=0.0, help="spectral-norm strength")
            s.add_argument("--critic")

    s = stage("evaluate", cmd_evaluate, "rollouts from the evaluation region")
    device_arg(s)
    s.add_argument("--policy")
    s.add_argument("--critic")
    s.add_argument("--seed", type=int)
    s.add_argument("--recorded", nargs="+", metavar="FILE", help="recorded rollouts instead")
    s.add_argument("--out", required=True)
    s.add_argument("--episodes-out", required=True)
    s.add_argument("--videos-out")
    s.add_argument("--region", help="start region (default: the task's evaluation region)")

    s = stage("serve", cmd_serve, "a policy behind a websocket for a robot's control loop")
    device_arg(s)
    s.add_argument("--policy", required=True)
    s.add_argument("--critic", help="IDQL / RISE: the critic that picks among candidates")
    s.add_argument("--host", default="127.0.0.1", help="loopback unless opened on purpose")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")

    s = stage("rollout", cmd_rollout, "a simulated robot acting through `rise serve`, recorded")
    device_arg(s)
    s.add_argument("--task", required=True)
    s.add_argument("--server", help="ws://HOST:PORT of a running `rise serve`")
    s.add_argument("--policy", help="instead: serve this checkpoint on a free loopback port")
    s.add_argument("--critic", help="with --policy: IDQL / RISE's critic")
    s.add_argument("--episodes", type=int, help="default: params' relabel.episodes")
    s.add_argument("--region", help="start region (default: the task's evaluation region)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--round", type=int, default=0, help="relabeling round of the policy")
    s.add_argument("--out", required=True, help="robomimic-layout HDF5 of the episodes")

    s = stage("relabel", cmd_relabel, "round r+1's dataset: round r's + its recorded rollouts")
    s.add_argument("--task", required=True)
    s.add_argument("--source", required=True, help="expert (+ successes) or the failures' source")
    s.add_argument("--data", required=True, help="round r's dataset of that source")
    s.add_argument("--rollouts", nargs="+", required=True, help="round r's recorded rollouts")
    s.add_argument("--round", type=int, required=True, help="r: the round of --data, --rollouts")
    s.add_argument("--out", required=True)

    def repeated(s, flag, metavar, help_, required=True):
        """A flag given once per item, each with a label pair and metrics files."""
        s.add_argument(flag, nargs="+", action="append", required=required, metavar=metavar,
                       help=help_)  # fmt: skip

    s = sub.add_parser("table", help="Table I from evaluation metrics")
    s.set_defaults(func=cmd_table)
    repeated(s, "--cell", "TASK METHOD FILE", "a cell: task, method, metrics files", False)
    repeated(s, "--missing", "TASK METHOD FILE", "a real cell's recorded rollouts not yet there",
             False)  # fmt: skip
    s.add_argument("--out", required=True)
    s.add_argument("--md", required=True)
    s.add_argument("--json", required=True)

    s = sub.add_parser("table2", help="Table II: success per relabeling round (+ a PNG)")
    s.set_defaults(func=cmd_table2)
    s.add_argument("--task", required=True)
    s.add_argument("--variant", required=True, help="the policy that was relabeled and retrained")
    repeated(s, "--round", "ROUND FILE", "a round: its number, metrics files of every seed")
    for flag in ("--out", "--md", "--json", "--png"):
        s.add_argument(flag, required=True)

    s = sub.add_parser("figure", help="an ablation / sensitivity figure from metrics")
    s.set_defaults(func=cmd_figure)
    s.add_argument("--name", required=True, help="fig5b_ablation, fig6_lambda, ...")
    s.add_argument("--task", required=True)
    repeated(s, "--point", "SERIES X FILE", "a point: series label, x value, metrics files")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-png", required=True)

    for name, help_, default in (
        ("push", "dvc commit what Snakemake built, then dvc push it (targets with upstream)",
         "every stage of dvc.yaml"),
        ("pull", "dvc pull (targets with upstream), then mark it up to date for Snakemake",
         "every stage in dvc.lock"),
    ):  # fmt: skip
        s = sub.add_parser(name, help=help_)
        s.set_defaults(func=cmd_share)
        s.add_argument("targets", nargs="*", help=f"DVC stages or files (default: {default})")
        s.add_argument("--remote", "-r", help="DVC remote (default: the default remote)")
        s.add_argument("--jobs", "-j", type=int, help="parallel transfers (DVC's default)")

    s = sub.add_parser("dvc-yaml", help="write dvc.yaml from params.yaml's grids")
    s.set_defaults(func=cmd_dvc_yaml)
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--out", default="dvc.yaml")
    s.add_argument("--check", action="store_true", help="fail if --out is out of date")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        try:  # before any stage imports torch or faiss (rise.threads says why)
            args.threads = pin_threads(getattr(args, "threads", 0))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if getattr(args, "scale", "") is None:
            args.scale = load(args.params)["scale"]
        if hasattr(args, "device"):
            args.device = _device(args)
        for name in ("out", "curve"):  # a read-only output folder: before any work
            if isinstance(getattr(args, name, None), str):
                check_writable(getattr(args, name))
        result = args.func(args)
    except (ConfigError, DatasetError) as exc:
        print(f"rise {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"rise {args.stage}: error: {exc.strerror}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
