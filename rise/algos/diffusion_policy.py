"""Diffusion behaviour policy (Chi et al.) with RISE's spectral-norm penalty.

The observation history is encoded, flattened and passed through a Lipschitz head (an MLP
in -> 512 -> 512 -> in, as in the authors' code); the denoiser is Chi et al.'s temporal U-Net
(`unet`, the paper's) or IDQL's residual MLP (`mlp`, the `cpu` tier's, for low-dim inputs).
The largest singular value of the head's last weight matrix, times `lambda`, is added to the
loss (paper Eq. 7). The per-sample noise-prediction loss can be weighted by exp(A / beta)
from an IQL critic (authors' code) or left unweighted (paper text). Sampling uses diffusers'
DDIM (authors) or DDPM (paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rise.nets import ACTIVATIONS, ConditionalUnet1D, MLPDenoiser, ObsEncoder, mlp

LIPSCHITZ_HIDDEN = 512


def spectral_norm(weight: torch.Tensor) -> torch.Tensor:
    """Largest singular value of a weight matrix (differentiable)."""
    return torch.linalg.matrix_norm(weight, ord=2)


class DiffusionPolicy(nn.Module):
    def __init__(
        self,
        encoder: ObsEncoder,
        action_dim: int,
        horizon: int,
        n_obs_steps: int,
        down_dims: list[int],
        diffusion_steps: int,
        denoiser: str = "unet",
        mlp_width: int = 256,
        mlp_blocks: int = 3,
        lipschitz_hidden: int = LIPSCHITZ_HIDDEN,
        activation: str = "mish",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"policy.activation {activation!r}: expected one of {sorted(ACTIVATIONS)}"
            )
        act = ACTIVATIONS[activation]
        self.encoder = encoder
        self.action_dim, self.horizon, self.n_obs_steps = action_dim, horizon, n_obs_steps
        cond_dim = encoder.out_dim * n_obs_steps
        self.lipschitz_head = mlp([cond_dim, lipschitz_hidden, lipschitz_hidden, cond_dim])
        if denoiser == "unet":
            self.denoiser = ConditionalUnet1D(action_dim, cond_dim, down_dims, act=act)
        elif denoiser == "mlp":
            self.denoiser = MLPDenoiser(
                action_dim, horizon, cond_dim, mlp_width, mlp_blocks, act=act
            )
        else:
            raise ValueError(f"policy.denoiser {denoiser!r}: expected 'unet' or 'mlp'")
        from diffusers import DDPMScheduler  # here: it imports torch._dynamo (~2 s a job)

        self.train_scheduler = DDPMScheduler(
            num_train_timesteps=diffusion_steps,
            beta_schedule="squaredcos_cap_v2",
            clip_sample=True,
            prediction_type="epsilon",
        )

    def condition(self, lowdim: torch.Tensor, images: dict) -> torch.Tensor:
        """(B, n_obs, ...) history -> conditioning vector (B, n_obs * features)."""
        b, n = lowdim.shape[:2]
        flat_images = {k: v.flatten(0, 1) for k, v in images.items()}
        feat = self.encoder(lowdim.flatten(0, 1), flat_images).reshape(b, n * self.encoder.out_dim)
        return self.lipschitz_head(feat)

    def spectral_penalty(self) -> torch.Tensor:
        return spectral_norm(self.lipschitz_head[-1].weight)

    def loss(self, lowdim, images, actions, weights=None) -> torch.Tensor:
        """Noise-prediction MSE per sample, optionally weighted, averaged over the batch."""
        cond = self.condition(lowdim, images)
        noise = torch.randn_like(actions)
        t = torch.randint(
            0,
            self.train_scheduler.config.num_train_timesteps,
            (actions.shape[0],),
            device=actions.device,
        )
        noisy = self.train_scheduler.add_noise(actions, noise, t)
        per_sample = F.mse_loss(self.denoiser(noisy, t, cond), noise, reduction="none").mean((1, 2))
        if weights is not None:
            per_sample = per_sample * weights
        return per_sample.mean()

    def sampler(self, kind: str, steps: int):
        from diffusers import DDIMScheduler, DDPMScheduler

        cfg = self.train_scheduler.config
        cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
        sched = cls(
            num_train_timesteps=cfg.num_train_timesteps,
            beta_schedule=cfg.beta_schedule,
            clip_sample=True,
            prediction_type="epsilon",
        )
        sched.set_timesteps(steps if kind == "ddim" else cfg.num_train_timesteps)
        return sched

    @torch.no_grad()
    def sample(
        self, cond: torch.Tensor, sched, generator: torch.Generator, temperature: float = 1.0
    ) -> torch.Tensor:
        """Denoise (B, horizon, action_dim) chunks from Gaussian noise, one per cond row.
        `temperature` < 1 scales the starting noise down: DDIM then lands nearer the modes
        of the learnt distribution, so a best-of-N pick ranks chunks the data supports."""
        shape = (cond.shape[0], self.horizon, self.action_dim)
        x = temperature * torch.randn(shape, generator=generator).to(cond.device)  # any device
        for t in sched.timesteps:
            eps = self.denoiser(x, t.reshape(1).to(cond.device), cond)
            x = sched.step(eps, t, x, generator=generator).prev_sample
        return x
