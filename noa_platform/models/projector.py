"""Projection of the MNO bottleneck into the tokenizer's latent space (for ``L_latent``)."""

from __future__ import annotations

import torch
from torch import nn

#: Added to the variance before the square root: a constant feature map has zero variance and
#: ``sqrt`` has an infinite derivative there.
STD_EPS = 1e-6


class LatentProjector(nn.Module):
    """``latent [B, C_b, H_b, W_b] -> [B, out_dim]``: global mean+std pooling, then an MLP.

    Pooling makes the projection independent of the grid size, so the same projector serves
    every resolution; the standard deviation keeps information about spatial structure that
    the mean alone would average away.
    """

    def __init__(self, in_channels: int, out_dim: int, hidden: int | None = None) -> None:
        super().__init__()
        if in_channels < 1 or out_dim < 1:
            raise ValueError(
                f"in_channels and out_dim must be >= 1, got {in_channels} and {out_dim}"
            )
        hidden = hidden or max(out_dim, 2 * in_channels)
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.net = nn.Sequential(
            nn.Linear(2 * in_channels, hidden),
            nn.GELU(),
            nn.Linear(hidden, out_dim),
        )

    def pool(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, 2C]``: per-channel spatial mean and standard deviation."""
        if latent.ndim != 4 or latent.shape[1] != self.in_channels:
            raise ValueError(
                f"latent must be [B, {self.in_channels}, H, W], got shape {tuple(latent.shape)}"
            )
        var, mean = torch.var_mean(latent, dim=(2, 3), correction=0)
        return torch.cat([mean, torch.sqrt(var + STD_EPS)], dim=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(self.pool(latent))
