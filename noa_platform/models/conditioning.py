"""θ-conditioning: a shared θ embedding and per-layer FiLM.

θ arrives in the unit cube (``theta_unit [B, P]``, see :mod:`noa_platform.api`). One MLP turns it
into an embedding ``[B, cond_dim]`` once per forward pass; every conditioned layer owns a small
:class:`FiLM` head that maps that embedding to a per-channel scale and shift. Sharing the embedding
keeps the parameter cost per layer at ``cond_dim * 2C`` instead of a full MLP each.
"""

from __future__ import annotations

import torch
from torch import nn

#: Standard deviation of the FiLM heads' initial weights. Small enough that scale ≈ 1 and
#: shift ≈ 0 at the start (the network begins as its unconditioned self), but not zero: with a
#: zero head no gradient would reach the θ-MLP until the head itself had moved, and the θ-MLP's
#: parameters would look dead on the first step.
FILM_INIT_STD = 1e-2


class ThetaEmbedding(nn.Module):
    """``theta_unit [B, P] -> embedding [B, cond_dim]``.

    θ is recentred from ``[0, 1]`` to ``[-1, 1]`` so that the first layer sees zero-mean inputs
    whatever the parameter box; two GELU layers give a smooth, nonlinear code.
    """

    def __init__(self, n_params: int, cond_dim: int) -> None:
        super().__init__()
        if n_params < 1:
            raise ValueError(f"ThetaEmbedding needs n_params >= 1, got {n_params}")
        if cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1, got {cond_dim}")
        self.n_params = n_params
        self.cond_dim = cond_dim
        self.net = nn.Sequential(
            nn.Linear(n_params, cond_dim),
            nn.GELU(),
            nn.Linear(cond_dim, cond_dim),
            nn.GELU(),
        )

    def forward(self, theta_unit: torch.Tensor) -> torch.Tensor:
        return self.net(2.0 * theta_unit - 1.0)


class FiLM(nn.Module):
    """Feature-wise affine modulation ``x * (1 + γ(e)) + β(e)`` of ``x [B, C, H, W]``.

    ``e [B, cond_dim]`` is the θ embedding; ``γ, β [B, C]`` broadcast over space. Writing the
    scale as ``1 + γ`` with a near-zero head makes the layer start as (almost) the identity, so
    adding conditioning does not perturb the unconditioned network's initialisation.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.normal_(self.proj.weight, std=FILM_INIT_STD)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(emb).chunk(2, dim=-1)
        return x * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]


class MaybeFiLM(nn.Module):
    """:class:`FiLM` when the model is conditioned, the identity otherwise.

    A domain with no parameters (``P = 0``) has nothing to condition on; building FiLM heads
    anyway would leave parameters that never receive a gradient.
    """

    def __init__(self, cond_dim: int | None, channels: int) -> None:
        super().__init__()
        self.film = FiLM(cond_dim, channels) if cond_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        if self.film is None or emb is None:
            return x
        return self.film(x, emb)
