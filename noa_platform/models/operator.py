"""The MNO as the platform uses it: an architecture wrapped with field normalization.

Architectures see fields normalized per channel (zero mean, unit std over the training split)
so one set of hyper-parameters suits domains whose fields live on different scales; callers
see physical fields. The statistics are buffers, so they travel with the state dict.
"""

from __future__ import annotations

import torch
from torch import nn


class NeuralOperator(nn.Module):
    """``(u [B, C, H, W], θ_unit [B, P]) -> u_next [B, C, H, W]`` in physical units."""

    def __init__(self, architecture: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.architecture = architecture
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())

    def normalize(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.mean) / self.std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def forward_with_latent(self, u: torch.Tensor, theta_unit: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        z, latent = self.architecture.forward_with_latent(self.normalize(u), theta_unit)
        return self.denormalize(z), latent

    def forward(self, u: torch.Tensor, theta_unit: torch.Tensor) -> torch.Tensor:
        return self.denormalize(self.architecture(self.normalize(u), theta_unit))

    @torch.no_grad()
    def rollout(self, u0: torch.Tensor, theta_unit: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Autoregressive rollout ``[B, n_steps + 1, C, H, W]`` without gradients."""
        frames = [u0]
        u = u0
        for _ in range(n_steps):
            u = self(u, theta_unit)
            frames.append(u)
        return torch.stack(frames, dim=1)


def channel_statistics(trajectories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std ``[C]`` of ``[N, T+1, C, H, W]``, std floored away from 0."""
    x = trajectories.transpose(0, 2).reshape(trajectories.shape[2], -1).double()
    mean, std = x.mean(dim=1), x.std(dim=1)
    std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
    return mean.float(), std.float()
