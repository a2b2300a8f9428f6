"""The one autoregressive rollout of a learned operator, used by training and evaluation.

``rollout(operator, u0, theta, n_steps)`` applies the operator ``n_steps`` times. Training calls
it with gradients on a window; validation and the report call it without. When
``latent_steps`` is given, the operator's bottleneck is kept at those steps (1-based: step t is
the state after t applications), for the latent-alignment loss and its report.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import torch
from torch import nn


class Rollout(NamedTuple):
    frames: torch.Tensor  # [B, n_steps + 1, C, H, W]; frame 0 is u0
    latents: dict[int, torch.Tensor]  # step -> bottleneck [B, C_b, H_b, W_b]


def rollout(operator: nn.Module, u0: torch.Tensor, theta: torch.Tensor, n_steps: int, *,
            latent_steps: Collection[int] = ()) -> Rollout:
    """``n_steps`` applications of ``operator`` from ``u0`` (gradients as the caller's mode)."""
    frames, latents = [u0], {}
    u = u0
    for t in range(1, n_steps + 1):
        if t in latent_steps:
            u, latents[t] = operator.forward_with_latent(u, theta)
        else:
            u = operator(u, theta)
        frames.append(u)
    return Rollout(torch.stack(frames, dim=1), latents)
