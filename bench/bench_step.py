"""Where one diffusion-policy training step goes, at a scale's sizes: the loss (forward,
under bf16 autocast when `policy.precision` says so), backward, the optimizer and the
weight EMA, with Adam's `fused` kernels (what training uses) and its `foreach` kernels,
timed in one process in interleaved blocks so that a busy machine slows both alike.
Random inputs of a task's real dimensions: the step's cost does not depend on the data.

    python bench/bench_step.py [--scale cpu] [--task mini_square_peg] [--blocks 10] \
        [--set activation=mish]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from rise import tasks as T  # noqa: E402
from rise.config import load, section  # noqa: E402
from rise.envs import make_env  # noqa: E402
from rise.pool import obs_keys  # noqa: E402
from rise.threads import pin as pin_threads  # noqa: E402
from rise.train import DENOISER_KEYS, POLICY_WEIGHT_DECAY, WeightEMA, build_policy  # noqa: E402

PHASES = ("loss", "backward", "optimizer", "ema")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--task", default="mini_square_peg", choices=sorted(T.TASKS))
    ap.add_argument("--blocks", type=int, default=10, help="timed blocks per variant")
    ap.add_argument("--steps", type=int, default=20, help="steps per block")
    ap.add_argument("--lam", type=float, default=0.1, help="spectral penalty (0: none)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="policy setting")
    args = ap.parse_args()
    hp = section(load(args.params), args.scale, "policy")
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in hp:
            ap.error(f"--set {item}: no policy setting {key!r}")
        hp[key] = yaml.safe_load(value)
    pin_threads(1)
    torch.manual_seed(0)

    lowdim_keys, _ = obs_keys(args.task, "lowdim")
    env = make_env(T.get(args.task).env)
    obs = env.reset("expert", np.random.default_rng(0))
    lowdim_dim = sum(np.asarray(obs[k]).size for k in lowdim_keys)
    meta = {
        "lowdim_dim": lowdim_dim,
        "image_keys": [],
        "crop": hp["crop"],
        "width": hp["encoder_width"],
        "action_dim": env.action_dim,
        **{k: hp[k] for k in ("horizon", "n_obs_steps", "down_dims", "diffusion_steps")},
        **{k: hp[k] for k in DENOISER_KEYS},
    }
    env.close()
    b = hp["batch_size"]
    lowdim = torch.randn(b, hp["n_obs_steps"], lowdim_dim)
    actions = torch.rand(b, hp["horizon"], meta["action_dim"]) * 2 - 1
    weights = torch.rand(b) * 2

    def variant(kind: str):
        policy = build_policy(meta).train()
        ema = WeightEMA(policy, hp["ema_power"])
        opt = torch.optim.AdamW(
            policy.parameters(), lr=hp["lr"], weight_decay=POLICY_WEIGHT_DECAY, **{kind: True}
        )

        def block(n: int) -> dict[str, float]:
            spent = dict.fromkeys(PHASES, 0.0)
            for _ in range(n):
                t0 = time.perf_counter()
                with torch.autocast("cpu", torch.bfloat16, enabled=hp["precision"] == "bf16"):
                    loss = policy.loss(lowdim, {}, actions, weights)
                loss = loss + args.lam * policy.spectral_penalty()
                t1 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                t2 = time.perf_counter()
                opt.step()
                t3 = time.perf_counter()
                ema.update()
                t4 = time.perf_counter()
                for phase, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    spent[phase] += dt * 1e3 / n
            return spent

        return block

    variants = {kind: variant(kind) for kind in ("fused", "foreach")}
    for block in variants.values():
        block(5)  # warm-up
    times = {kind: [] for kind in variants}
    for _ in range(args.blocks):
        for kind, block in variants.items():
            times[kind].append(block(args.steps))
    denoiser = (
        f"U-Net {hp['down_dims']}"
        if hp["denoiser"] == "unet"
        else f"MLP {hp['mlp_width']} x {hp['mlp_blocks']}, head {hp['lipschitz_hidden']}"
    ) + f", {hp['activation']}, {hp['precision']}"
    n_params = sum(p.numel() for p in build_policy(meta).parameters())
    print(
        f"{args.task} at scale {args.scale}: batch {b}, {denoiser}, "
        f"{n_params:,} parameters, lowdim {lowdim_dim}, one thread; "
        f"median over {args.blocks} blocks of {args.steps} steps, ms"
    )
    print(f"{'Adam':<10}" + "".join(f"{p:>11}" for p in (*PHASES, "step")))
    for kind, blocks in times.items():
        med = {p: statistics.median(blk[p] for blk in blocks) for p in PHASES}
        total = statistics.median(sum(blk.values()) for blk in blocks)
        print(f"{kind:<10}" + "".join(f"{med[p]:>11.1f}" for p in PHASES) + f"{total:>11.1f}")


if __name__ == "__main__":
    main()
