"""Network building blocks shared by every method.

- `ObsEncoder`: low-dim keys concatenated, plus one ResNet18 (GroupNorm, trained from
  scratch) with a spatial-softmax head per camera, as in Chi et al.'s diffusion policy.
- `ConditionalUnet1D`: the 1D temporal U-Net with FiLM conditioning on (diffusion step,
  observation features). diffusers' UNet1DModel has no conditioning input, so it is here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N`, or `auto` (the first GPU if torch sees one, else the CPU)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: not one of cpu, cuda, cuda:N, auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: torch sees no GPU on this machine (use cpu or auto)")
    return device


def autocast(device: torch.device, precision: str):
    """`precision` bf16: the matrix products inside run in bfloat16 (weights and optimizer
    stay fp32), ~1.6x faster on a CPU with avx512_bf16; fp32: a no-op."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision {precision!r}: expected 'fp32' or 'bf16'")
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")


def mlp(sizes: list[int], act=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, or AdamW when `weight_decay` is set, with fused kernels: on a CPU `foreach`
    falls back to a loop of small kernels per parameter (a seventh of a policy step)."""
    params = [p for p in params if p.requires_grad]
    if weight_decay:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    return torch.optim.Adam(params, lr=lr, fused=True)


def scheduled_lr(lr: float, step: int, steps: int, schedule: str, warmup: int) -> float:
    """The learning rate at `step`: constant, or Chi et al.'s schedule (a linear warm-up over
    `warmup` steps, then a cosine decay to 0 at `steps`), which lets a short run end on a
    settled model instead of one still jumping at the full rate. A function of the step
    alone, so a resumed job continues the same curve."""
    if schedule == "constant":
        return lr
    if step < warmup:
        return lr * (step + 1) / warmup
    done = (step - warmup) / max(1, steps - warmup)
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))


@torch.no_grad()
def polyak(pairs: list[tuple[nn.Module, nn.Module]], rate: float) -> None:
    """target <- target + rate * (online - target) for each (online, target) pair, in one
    fused call (a Python loop over parameters costs more than the update on a CPU)."""
    online = [p for net, _ in pairs for p in net.parameters()]
    target = [p for _, targ in pairs for p in targ.parameters()]
    torch._foreach_lerp_(target, online, rate)


def _groups(channels: int) -> int:
    return max(1, min(32, channels // 4))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.gn1 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.gn2 = nn.GroupNorm(_groups(c_out), c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.GroupNorm(_groups(c_out), c_out)
            )

    def forward(self, x):
        out = F.relu(self.gn1(self.conv1(x)))
        out = self.gn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class SpatialSoftmax(nn.Module):
    """Expected 2-D image coordinates of `keypoints` learned feature maps (Levine et al.)."""

    def __init__(self, channels: int, keypoints: int = 32):
        super().__init__()
        self.proj = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        heat = self.proj(x).flatten(2).softmax(-1)  # (B, K, H*W)
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=x.device),
            torch.linspace(-1, 1, w, device=x.device),
            indexing="ij",
        )
        grid = torch.stack([xs.flatten(), ys.flatten()], -1)  # (H*W, 2)
        return (heat @ grid).flatten(1)  # (B, 2K)


class ResNet18Encoder(nn.Module):
    """ResNet18 with GroupNorm and a spatial-softmax head; `width` 64 is the standard size."""

    def __init__(self, width: int = 64, keypoints: int = 32, out_dim: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False),
            nn.GroupNorm(_groups(width), width),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            stride = 1 if i == 0 else 2
            blocks += [
                BasicBlock(c, width * mult, stride),
                BasicBlock(width * mult, width * mult, 1),
            ]
            c = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.pool = SpatialSoftmax(c, keypoints)
        self.out = nn.Linear(2 * keypoints, out_dim)

    def forward(self, img):
        return self.out(self.pool(self.blocks(self.stem(img))))


class ObsEncoder(nn.Module):
    """Features of one observation frame: low-dim vector (already normalised) + cameras.

    Images arrive uint8 (B, H, W, 3); training takes a random `crop`, evaluation the centre.
    """

    def __init__(self, lowdim_dim: int, image_keys: tuple[str, ...], crop: int, width: int):
        super().__init__()
        self.image_keys = tuple(image_keys)
        self.crop = crop
        self.cams = nn.ModuleDict({k: ResNet18Encoder(width) for k in self.image_keys})
        self.out_dim = lowdim_dim + 64 * len(self.image_keys)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        c = min(self.crop, h, w)
        if self.training:
            i = int(torch.randint(0, h - c + 1, ()))
            j = int(torch.randint(0, w - c + 1, ()))
        else:
            i, j = (h - c) // 2, (w - c) // 2
        return x[..., i : i + c, j : j + c]

    def forward(self, lowdim: torch.Tensor, images: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [lowdim]
        for key in self.image_keys:
            img = images[key].permute(0, 3, 1, 2).float() / 255.0
            feats.append(self.cams[key](self._crop(img)))
        return torch.cat(feats, -1)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000) / (half - 1)))
        arg = t.float()[:, None] * freq[None, :]
        return torch.cat([arg.sin(), arg.cos()], -1)


# The denoisers' nonlinearity (`policy.activation`): Mish is Chi et al.'s and IDQL's; SiLU
# has the same shape and is ~5x cheaper forward and backward on a CPU core (bench/bench_step.py).
ACTIVATIONS: dict[str, type[nn.Module]] = {"mish": nn.Mish, "silu": nn.SiLU}


def step_embedding(dim: int, hidden: int, act: type[nn.Module] = nn.Mish) -> nn.Sequential:
    """Diffusion step -> sinusoidal features -> MLP (Chi et al.'s and IDQL's denoisers)."""
    return nn.Sequential(
        SinusoidalPosEmb(dim), nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim)
    )


class Conv1dBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, act: type[nn.Module] = nn.Mish):
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(8, c_out), act()
        )


class ConditionalResBlock1D(nn.Module):
    """Two conv blocks; FiLM (per-channel scale and bias) from the conditioning vector."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, act: type[nn.Module]):
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel, act)
        self.block2 = Conv1dBlock(c_out, c_out, kernel, act)
        self.film = nn.Sequential(act(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, cond):
        scale, bias = self.film(cond)[:, :, None].chunk(2, dim=1)
        out = self.block1(x) * scale + bias
        return self.block2(out) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Chi et al.'s temporal U-Net: input (B, T, A) noisy actions, output predicted noise."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        down_dims: list[int],
        step_embed_dim: int = 128,
        kernel: int = 5,
        act: type[nn.Module] = nn.Mish,
    ):
        super().__init__()
        self.step_embed = step_embedding(step_embed_dim, 4 * step_embed_dim, act)
        cdim = step_embed_dim + cond_dim

        def block(c_in: int, c_out: int) -> ConditionalResBlock1D:
            return ConditionalResBlock1D(c_in, c_out, cdim, kernel, act)

        dims = [action_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:], strict=True))
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        block(c_in, c_out),
                        block(c_out, c_out),
                        nn.Conv1d(c_out, c_out, 3, 2, 1) if not last else nn.Identity(),
                    ]
                )
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(pairs[1:]):  # every up level undoes one down-sampling
            self.up.append(
                nn.ModuleList(
                    [
                        block(2 * c_out, c_in),
                        block(c_in, c_in),
                        nn.ConvTranspose1d(c_in, c_in, 4, 2, 1),
                    ]
                )
            )
        self.final = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel, act),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(self, sample, timestep, cond):
        x = sample.transpose(1, 2)  # (B, A, T)
        t = timestep.expand(x.shape[0]) if timestep.ndim == 1 else timestep
        c = torch.cat([self.step_embed(t), cond], -1)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, c), c)
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, c)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], 1)
            x = up(res2(res1(x, c), c))
        return self.final(x).transpose(1, 2)


class ResidualMLPBlock(nn.Module):
    """LayerNorm -> Linear(w, 2w) -> Mish (or SiLU) -> Linear(2w, w), added to its input (IDQL)."""

    def __init__(self, width: int, act: type[nn.Module] = nn.Mish):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, 2 * width), act(), nn.Linear(2 * width, width)
        )

    def forward(self, x):
        return x + self.net(x)


class MLPDenoiser(nn.Module):
    """IDQL's residual MLP denoiser over the flattened action chunk: the `cpu` tier's model
    class for low-dim inputs, a few times cheaper per step than the U-Net on one core and as
    good per wall-clock minute (ENVIRONMENT.md). Same call as ConditionalUnet1D."""

    def __init__(self, action_dim: int, horizon: int, cond_dim: int, width: int, blocks: int,
                 step_embed_dim: int = 64, act: type[nn.Module] = nn.Mish):  # fmt: skip
        super().__init__()
        self.step_embed = step_embedding(step_embed_dim, 2 * step_embed_dim, act)
        flat = horizon * action_dim
        self.inp = nn.Linear(flat + step_embed_dim + cond_dim, width)
        self.blocks = nn.Sequential(*(ResidualMLPBlock(width, act) for _ in range(blocks)))
        self.out = nn.Sequential(act(), nn.Linear(width, flat))

    def forward(self, sample, timestep, cond):
        t = timestep.expand(sample.shape[0]) if timestep.ndim == 1 else timestep
        x = torch.cat([sample.flatten(1), self.step_embed(t), cond], -1)
        return self.out(self.blocks(self.inp(x))).view_as(sample)
