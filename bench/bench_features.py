"""Throughput of the feature and augmentation stages (prints figures; not a test).

    python bench/bench_features.py --images 256 --play 15000 --expert 2700

DINOv2 ViT-S/14 runs with random weights here (same cost as trained weights; no download).
"""

import argparse
import time

import numpy as np

from rise.augment import find_pairs
from rise.embed import dinov2, patch_tokens, pca, unit
from rise.threads import pin as pin_threads


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--size", type=int, default=84)
    p.add_argument("--play", type=int, default=15000)
    p.add_argument("--expert", type=int, default=2700)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    pin_threads(args.threads)
    rng = np.random.default_rng(0)
    model = dinov2("random")
    imgs = rng.integers(0, 255, (args.images, args.size, args.size, 3), dtype=np.uint8)
    t = time.perf_counter()
    tokens = patch_tokens(model, imgs, 64, "dinov2")
    dt = time.perf_counter() - t
    print(
        f"DINOv2 ViT-S/14 {args.size}x{args.size}: {args.images / dt:.1f} images/s "
        f"({tokens.shape[1]} floats per image, {args.threads} threads)"
    )
    t = time.perf_counter()
    pca(tokens, 256, 0)
    print(f"PCA {tokens.shape[1]} -> 256 on {len(tokens)} rows: {time.perf_counter() - t:.2f} s")
    n = {"expert": args.expert, "play": args.play}
    feats = {s: unit(rng.normal(size=(k, args.dim))) for s, k in n.items()}
    grip = {s: rng.integers(0, 2, k) for s, k in n.items()}
    episode = {s: np.arange(k) // 200 for s, k in n.items()}
    step = {s: np.arange(k) % 200 for s, k in n.items()}
    for play_to_play in (False, True):
        t = time.perf_counter()
        pairs = find_pairs(
            feats,
            grip,
            episode,
            step,
            epsilon=0.5,
            k=15,
            play_to_play=play_to_play,
            skip_play=50,
            skip_expert=20,
        )
        print(
            f"augment {args.play} play x {args.expert} expert, {args.dim}-d, play_to_play="
            f"{play_to_play}: {time.perf_counter() - t:.2f} s, {len(pairs['distance'])} pairs"
        )


if __name__ == "__main__":
    main()
