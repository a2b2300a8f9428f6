"""The wave energy: the quantity the undamped equation conserves.

``E = ½ Σ_x (u_t² + c̄² u (−Δu) + q |∇̃u|²) dA``, ``q = c(x)² − c̄²``: the semi-discrete form of
``½ ∫ (u_t² + c(x)² |∇u|²) dx`` that the solver's spatial operator conserves exactly (see
:mod:`noa_waves.solver`; the two differ only in how the Nyquist modes count). ``Δ`` is the
spectral Laplacian, ``∇̃`` the spectral gradient without Nyquist modes.

``c(x)`` is regenerated from what the invariant gets: θ and the grid give ``c̄``, the amplitude
and the correlation length, and the medium's seed is the keyword ``seeds`` — the seeds the
solver was given (``None``, the default, is the reference medium of a rollout given no seeds,
which is what the conformance kit runs). For a dataset sample use
``seeds=[noa_waves.speed.solver_seed(stored_seed)]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from noa_platform.api import Grid
from noa_waves.parameters import columns
from noa_waves.speed import speed_fields

if TYPE_CHECKING:
    import torch


def energy(frames: torch.Tensor, grid: Grid, theta: torch.Tensor,
           seeds: Sequence[int] | None = None) -> torch.Tensor:
    """``E`` of frames ``[B, ..., 2, H, W]`` for θ ``[B, 4]`` -> ``[B, ...]`` (float64, on the
    frames' device); ``seeds``: the solver's seeds (see the module docstring)."""
    import torch

    from noa_platform.numerics.spectral import gradient, laplacian

    x = frames.to(torch.float64)
    b = x.shape[0]
    c, _, _, _ = columns(theta)
    if len(c) != b:
        raise ValueError(f"energy: θ has {len(c)} rows for {b} samples")
    q = speed_fields(theta, grid, seeds).square() - torch.as_tensor(c * c)[:, None, None]
    lead = (b,) + (1,) * (x.ndim - 4)                      # broadcast over the time axes
    q = q.reshape(*lead, *grid.shape).to(x.device)
    cbar2 = torch.as_tensor(c * c, dtype=torch.float64).reshape(lead + (1, 1)).to(x.device)
    u, v = x[..., 0, :, :], x[..., 1, :, :]
    gy, gx = gradient(u, grid)
    density = v * v + cbar2 * u * (-laplacian(u, grid)) + q * (gy * gy + gx * gx)
    dy, dx = grid.spacing
    return 0.5 * density.sum(dim=(-2, -1)) * (dy * dx)
