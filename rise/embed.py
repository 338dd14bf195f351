"""Stage `embed`: one feature vector per frame, on the unit sphere, for the kNN search.

- `lowdim`: the low-dim observation, standardised per dimension over all sources, then
  L2-normalised.
- `image`: DINOv2 ViT-S/14 patch tokens of each camera (transformers' Dinov2Model), each
  token L2-normalised, flattened, reduced by PCA (torch.pca_lowrank, fitted on all sources
  together) to `dim`, cameras concatenated, L2-normalised. Flattened 84x84 tokens are
  13,824 floats per camera; exact kNN at that size is too slow, hence the PCA.

`weights: random` builds an untrained ViT-S/14: its features are NOT semantic. It exists so
that the code path runs where no weights can be downloaded; the output records it.

Output: an .npz with, per source, `<source>` (N, D) float32 features and `<source>_gripper`
(N,) 0/1 gripper state (closed = finger opening below the midpoint of its observed range).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from tqdm import tqdm

from rise.atomic import atomic_path
from rise.data import read_dataset
from rise.nets import resolve_device
from rise.pool import obs_keys, observer
from rise.threads import pin as pin_threads

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def dinov2(weights: str, seed: int = 0):
    """DINOv2 ViT-S/14 from a hub id or local path; `random` = untrained (loudly flagged)."""
    from transformers import Dinov2Config, Dinov2Model

    if weights == "random":
        print(
            "=" * 78 + "\nWARNING: embed.weights=random: DINOv2 ViT-S/14 with RANDOM weights.\n"
            "Its features are NOT semantic; augmentation pairs from them only exercise the\n"
            "code path. Set embed.weights to facebook/dinov2-small or a local copy for real\n"
            "runs.\n" + "=" * 78,
            file=sys.stderr,
        )
        torch.manual_seed(seed)
        cfg = Dinov2Config(
            hidden_size=384,
            num_hidden_layers=12,
            num_attention_heads=6,
            intermediate_size=1536,
            patch_size=14,
        )
        return Dinov2Model(cfg).eval()
    return Dinov2Model.from_pretrained(weights).eval()


@torch.no_grad()
def patch_tokens(model, images: np.ndarray, batch_size: int, desc: str) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, patches * hidden) with each patch token L2-normalised."""
    out, device = [], next(model.parameters()).device
    for i in tqdm(range(0, len(images), batch_size), desc=desc):
        x = torch.from_numpy(images[i : i + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        x = ((x - IMAGENET_MEAN) / IMAGENET_STD).to(device)
        tokens = model(pixel_values=x).last_hidden_state[:, 1:]  # drop CLS
        out.append(torch.nn.functional.normalize(tokens, dim=-1).flatten(1).cpu().numpy())
    return np.concatenate(out)


def pca(x: np.ndarray, dim: int, seed: int, fit_rows: int = 20000) -> np.ndarray:
    """Project onto the top `dim` principal directions, fitted on up to `fit_rows` rows."""
    dim = min(dim, x.shape[0], x.shape[1])
    rng = np.random.default_rng(seed)
    fit = torch.from_numpy(x[rng.permutation(len(x))[:fit_rows]])
    mean = fit.mean(0, keepdim=True)
    torch.manual_seed(seed)
    _, _, v = torch.pca_lowrank(fit - mean, q=dim, center=False)
    return ((torch.from_numpy(x) - mean) @ v[:, :dim]).numpy()


def gripper_state(openings: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """0 = open, 1 = closed, split at the midpoint of the finger opening over all sources."""
    allv = np.concatenate(list(openings.values()))
    mid = (allv.min() + allv.max()) / 2
    return {k: (v < mid).astype(np.int8) for k, v in openings.items()}


def embed(
    *,
    task: str,
    obs: str,
    files: dict[str, str],
    weights: str,
    dim: int,
    batch_size: int,
    out: str,
    seed: int = 0,
    threads: int = 1,
    device: str = "cpu",
) -> dict:
    dev = resolve_device(device)
    pin_threads(threads)
    lowdim_keys = obs_keys(task, "lowdim")[0]  # features always see the full low-dim state
    image_keys = obs_keys(task, "image")[1] if obs == "image" else ()
    sets = {s: read_dataset(p, lowdim_keys, image_keys) for s, p in files.items()}
    sizes = [len(ds) for ds in sets.values()]
    splits = np.cumsum(sizes)[:-1]
    if obs == "lowdim":
        x = np.concatenate(
            [np.concatenate([ds.obs[k] for k in lowdim_keys], -1) for ds in sets.values()]
        )
        feats = unit((x - x.mean(0)) / (x.std(0) + 1e-6))
        info = {"features": "lowdim", "keys": list(lowdim_keys), "semantic": True}
    else:
        model = dinov2(weights, seed).to(dev)
        cams = []
        for key in image_keys:
            imgs = np.concatenate([ds.obs[key] for ds in sets.values()])
            cams.append(
                unit(pca(patch_tokens(model, imgs, batch_size, f"dinov2 {key}"), dim, seed))
            )
        feats = unit(np.concatenate(cams, -1))
        info = {
            "features": "dinov2-vits14",
            "weights": weights,
            "pca_dim": dim,
            "cameras": list(image_keys),
            "semantic": weights != "random",
        }
    grip = gripper_state({s: ds.obs[observer(task).gripper_key].mean(-1) for s, ds in sets.items()})
    arrays = {}
    for source, part in zip(sets, np.split(feats, splits), strict=True):
        arrays[source] = part
        arrays[f"{source}_gripper"] = grip[source]
        arrays[f"{source}_episode"] = sets[source].episode
        arrays[f"{source}_step"] = sets[source].step
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, info=json.dumps(info), sources=np.array(list(sets)), **arrays)
    return {**info, "rows": dict(zip(sets, sizes, strict=True)), "dim": int(feats.shape[1])}
