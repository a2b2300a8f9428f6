"""The heterogeneous wave speed ``c(x)``: a smooth random field drawn from a sample's seed.

Definition. ``c(x) = c̄ (1 + a tanh g(x))`` (θ columns ``c``, ``speed_amplitude``), where ``g`` is
a smooth stationary Gaussian random field with the Gaussian spectrum of the correlation
function ``exp(−r² / (2ℓ²))`` (``ℓ = correlation_length``) on the periodic box, without its mean
mode — so its correlation is ``Σ_{n≠0} F_n² cos(k_n·r) / Σ_{n≠0} F_n²``, the periodic, zero-mean
version of that Gaussian — normalised to unit variance::

    g(x) = Σ_n F_n (A_n cos(φ_n(x)) + B_n sin(φ_n(x))) / sqrt(Σ_n F_n²),
    φ_n(x) = 2π (n_y y / L_y + n_x x / L_x),   F_n = exp(−ℓ² |k_n|² / 4),   k_n = 2π n / L,

over the integer wave vectors ``n`` of one half-plane with ``0 < |n| <= MODE_RADIUS`` (no mean
mode), ``A_n, B_n`` standard normal. The ``F_n`` are the square root of the Gaussian spectrum of
that correlation function; at ``ℓ = 0.1`` (the smallest) the last kept ring has ``F = 5e-5``,
so the field is smooth and band-limited. ``tanh`` keeps ``c̄ (1 − a) < c < c̄ (1 + a)`` for every
draw, which is what lets the step be chosen from θ alone (:mod:`noa_waves.solver`).

Determinism. The coefficients come, in a fixed order, from
``static_field_generator(seed)`` (:mod:`noa_platform.numerics.template`: a stream of the sample's
seed independent of its solver noise); ``A_n, B_n`` do not depend on ℓ, so one seed's field
changes smoothly with θ. The field is evaluated by summation over the modes at the grid points
(separated into ``y`` and ``x`` factors: two matrix products), so it is the same function at
every resolution (a 32² and a 64² run of one sample see one medium).

Which seed. The solver receives one seed per sample (``rollout(..., seeds=)``); a dataset's
generation and replay pass ``derive_seed(sample_seed, NOISE)``
(:mod:`noa_platform.data.simulate`), see :func:`solver_seed`. A rollout given no seeds uses the
reference medium of :data:`REFERENCE_SEED`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from noa_platform.api import Grid
from noa_waves.parameters import columns

if TYPE_CHECKING:  # torch is imported where a function needs it
    import torch

#: Wave vectors ``0 < |n| <= MODE_RADIUS`` (integer, one half-plane) carry the field ``g``.
MODE_RADIUS = 10
#: The medium of a rollout that was given no seeds (``seeds=None``).
REFERENCE_SEED = 0


def solver_seed(sample_seed: int) -> int:
    """The seed the solver receives for a dataset sample whose stored seed is ``sample_seed``
    (``noa_platform.data.simulate`` passes the sample's noise seed)."""
    from noa_platform.data.sampling import NOISE, derive_seed

    return derive_seed(int(sample_seed), NOISE)


def _modes() -> np.ndarray:
    """``[M, 2]`` integer wave vectors ``(n_y, n_x)`` of one half-plane, fixed order."""
    r = MODE_RADIUS
    out = [(ny, nx) for nx in range(r + 1) for ny in range(-r, r + 1)
           if (nx > 0 or ny > 0) and ny * ny + nx * nx <= r * r]
    return np.array(out, dtype=np.float64)


def unit_field(grid: Grid, length: float, seed: int) -> torch.Tensor:
    """``g``: the unit-variance smooth field ``[H, W]`` (float64, CPU) of one sample."""
    import torch

    from noa_platform.numerics.template import static_field_generator

    if not (math.isfinite(length) and length > 0):
        raise ValueError(f"correlation length must be positive and finite, got {length}")
    modes = torch.as_tensor(_modes())
    gen = static_field_generator(int(seed))
    coeff = torch.randn((2, len(modes)), generator=gen, dtype=torch.float64)
    (ly, lx), (h, w) = grid.extent, grid.shape
    k2 = (2 * math.pi) ** 2 * ((modes[:, 0] / ly) ** 2 + (modes[:, 1] / lx) ** 2)
    f = torch.exp(-0.25 * length * length * k2)
    f = f / f.square().sum().sqrt()
    dy, dx = grid.spacing
    y = torch.arange(h, dtype=torch.float64) * (dy / ly)
    x = torch.arange(w, dtype=torch.float64) * (dx / lx)
    # φ_n = α_n(y) + β_n(x): with cos(α + β) and sin(α + β) expanded, the sum over modes is
    # two matrix products [H, M] @ [M, W] (trigonometry on M·(H + W) points instead of
    # M·H·W: 40x faster at 64², the same function to rounding).
    alpha = 2 * math.pi * modes[:, 0, None] * y[None, :]                      # [M, H]
    beta = 2 * math.pi * modes[:, 1, None] * x[None, :]                       # [M, W]
    a = (f * coeff[0])[:, None]
    b = (f * coeff[1])[:, None]
    cos_b, sin_b = torch.cos(beta), torch.sin(beta)
    return (torch.cos(alpha).T @ (a * cos_b + b * sin_b)
            + torch.sin(alpha).T @ (b * cos_b - a * sin_b))


def speed_fields(theta: np.ndarray, grid: Grid,
                 seeds: Sequence[int] | None = None) -> torch.Tensor:
    """``c(x)`` ``[b, H, W]`` (float64, CPU) for θ rows ``[b, 4]`` and the solver's seeds
    (``None``: every row gets the reference medium). Each row is computed alone."""
    import torch

    c, a, ell, _ = columns(theta)
    if seeds is None:
        seeds = [REFERENCE_SEED] * len(c)
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(c):
        raise ValueError(f"speed field: {len(seeds)} seeds for {len(c)} θ rows")
    out = torch.empty((len(c), *grid.shape), dtype=torch.float64)
    for i in range(len(c)):
        if a[i] == 0.0:
            out[i] = c[i]        # uniform medium: no field to draw
            continue
        g = unit_field(grid, float(ell[i]), seeds[i])
        out[i] = c[i] * (1.0 + a[i] * torch.tanh(g))
    return out


def speed_field_of_sample(theta_row: np.ndarray, grid: Grid, sample_seed: int) -> torch.Tensor:
    """``c(x)`` ``[H, W]`` of a stored dataset sample, from its θ row and its stored seed."""
    return speed_fields(np.atleast_2d(theta_row), grid, [solver_seed(sample_seed)])[0]
