"""Encoders and decoders of one category, and the time resampling of temporal features.

A static category ``[N, d]`` goes through an MLP encoder to ``[N, latent_dim]`` and an MLP
decoder back to ``[N, d]``.

A temporal category ``[N, T+1, D]`` goes through a 1-D convolutional encoder over time, then a
mean over time, so any ``T + 1 >= 1`` frames give one ``[N, latent_dim]`` vector. A normalized
time coordinate ``t / T`` in ``[0, 1]`` is appended as an input channel: without it, mean pooling
of convolution outputs could not tell an early rise from a late one.

The temporal decoder cannot produce "the frames" because a token does not know ``T``. It
decodes to the *time profile*: the features resampled (linear interpolation) at
``temporal_points`` evenly spaced times over the trajectory, ``[N, P, D]``. The reconstruction
error of the temporal category is measured on that profile, against the profile of the input
(see :func:`resample_time`); ``Tokenizer.decode(..., n_frames=T)`` interpolates it to frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """``[N, d_in] -> [N, d_out]`` through two hidden layers.

    Two layers suffice for the smooth, low-dimensional maps between features and latents.
    """
    return nn.Sequential(
        nn.Linear(d_in, hidden),
        nn.GELU(),
        nn.Linear(hidden, hidden),
        nn.GELU(),
        nn.Linear(hidden, d_out),
    )


def resample_time(x: torch.Tensor, points: int) -> torch.Tensor:
    """``[N, T+1, D]`` -> ``[N, points, D]`` by linear interpolation over normalized time.

    The first and last points are the first and last frames (``align_corners``), so trajectories
    of different lengths map to profiles over the same ``[0, 1]``. One frame is held constant.
    Differentiable.
    """
    if x.shape[1] == 1:
        return x.expand(-1, points, -1)
    if x.shape[1] == points:
        return x
    return F.interpolate(
        x.transpose(1, 2), size=points, mode="linear", align_corners=True
    ).transpose(1, 2)


class TemporalEncoder(nn.Module):
    """``[N, T+1, D]`` -> ``[N, latent_dim]``: convolutions over time, mean over time, linear."""

    def __init__(self, channels: int, hidden: int, latent_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(channels + 1, hidden, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel_size=3, padding=2, dilation=2),
            nn.GELU(),
        )
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, latent_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, frames, _ = x.shape
        t = (
            torch.linspace(0.0, 1.0, frames, dtype=x.dtype, device=x.device)
            if frames > 1
            else (torch.zeros(1, dtype=x.dtype, device=x.device))
        )
        h = torch.cat([x, t[None, :, None].expand(n, frames, 1)], dim=2)
        h = self.conv(h.transpose(1, 2))
        return self.head(h.mean(dim=2))


class TemporalDecoder(nn.Module):
    """``[N, latent_dim]`` -> the time profile ``[N, points, D]``."""

    def __init__(self, latent_dim: int, hidden: int, channels: int, points: int) -> None:
        super().__init__()
        self.points, self.channels = points, channels
        self.net = mlp(latent_dim, hidden, points * channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], self.points, self.channels)
