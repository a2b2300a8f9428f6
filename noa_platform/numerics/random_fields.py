"""Seeded random fields: the generic building blocks of initial conditions.

Every function draws all its random numbers from the CPU :class:`torch.Generator` it is given
and computes in float64 on the CPU, so a field is a pure function of the generator's state (and
of the arguments), whatever the device or dtype the run later casts it to. Each returns
``[n, channels, H, W]`` float64; channels are independent draws. Fields are periodic on the grid.

With ``normalize=True`` (the default) each ``(sample, channel)`` slice is shifted and scaled to
zero mean and unit (population) standard deviation, so a domain maps them to its physical
ranges with one affine or sigmoid map per channel. Lengths (``length_scale``, blob widths) are in
the grid's physical units, so a field keeps its look when a domain changes resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from noa_platform.api import Grid
from noa_platform.numerics.spectral import wavenumbers

__all__ = [
    "cell_coordinates",
    "gaussian_blobs",
    "gaussian_random_field",
    "multiscale_field",
    "normalize_fields",
    "random_sinusoids",
]


def _check(n: int, channels: int, generator: torch.Generator) -> None:
    if int(n) < 0 or int(channels) < 1:
        raise ValueError(f"need n >= 0 and channels >= 1, got n={n}, channels={channels}")
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("random fields draw from a CPU torch.Generator")


def normalize_fields(x: torch.Tensor, eps: float = 1e-300) -> torch.Tensor:
    """Zero mean, unit population std per ``[..., H, W]`` slice; a constant slice becomes 0."""
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    # Divide by max|x| first: squaring a field of size 1e-160 (a blob narrower than a cell)
    # underflows and would give a wrong std.
    peak = x.abs().amax(dim=(-2, -1), keepdim=True)
    x = torch.where(peak > 0, x / peak.clamp_min(eps), x)
    std = x.square().mean(dim=(-2, -1), keepdim=True).sqrt()
    return torch.where(std > eps, x / std.clamp_min(eps), torch.zeros_like(x))


def gaussian_random_field(n: int, grid: Grid, generator: torch.Generator, *,
                          length_scale: float | None = None, slope: float = 4.0,
                          channels: int = 1, normalize: bool = True) -> torch.Tensor:
    """Stationary Gaussian random field with a Matérn-type power spectrum.

    Power spectral density ``P(k) ∝ (1 + (ℓ|k|/2π)²)^(-slope/2)``: flat for wavelengths longer than
    ``ℓ = length_scale`` and falling as ``|k|^(-slope)`` below it (``slope`` is the spectral
    slope; larger is smoother). ``length_scale`` defaults to an eighth of the shorter extent. The
    mean (``k = 0``) mode is removed. Built by filtering white noise drawn in physical space, which
    keeps the transform Hermitian without bookkeeping.
    """
    _check(n, channels, generator)
    if slope < 0 or not math.isfinite(slope):
        raise ValueError(f"spectral slope must be finite and >= 0, got {slope}")
    ell = min(grid.extent) / 8.0 if length_scale is None else float(length_scale)
    if not (ell > 0 and math.isfinite(ell)):
        raise ValueError(f"length_scale must be positive and finite, got {length_scale}")
    h, w = grid.shape
    white = torch.randn((n, channels, h, w), generator=generator, dtype=torch.float64)
    ky, kx = wavenumbers(grid)
    k2 = ky * ky + kx * kx
    amplitude = (1.0 + k2 * (ell / (2.0 * math.pi)) ** 2) ** (-slope / 4.0)
    amplitude[0, 0] = 0.0
    field = torch.fft.irfft2(torch.fft.rfft2(white) * amplitude, s=(h, w))
    return normalize_fields(field) if normalize else field


def multiscale_field(n: int, grid: Grid, generator: torch.Generator, *,
                     length_scales: Sequence[float] | None = None,
                     weights: Sequence[float] | None = None, slope: float = 4.0,
                     channels: int = 1, normalize: bool = True) -> torch.Tensor:
    """Weighted sum of independent normalized GRFs at several length scales.

    Defaults: scales of 1/2, 1/6 and 1/16 of the shorter extent with equal weights, i.e. a large
    structure with finer texture on top, which a single power law does not give.
    """
    _check(n, channels, generator)
    size = min(grid.extent)
    scales = list(length_scales) if length_scales is not None else [size / 2, size / 6, size / 16]
    wts = list(weights) if weights is not None else [1.0] * len(scales)
    if not scales or len(wts) != len(scales):
        raise ValueError("need one weight per length scale and at least one scale")
    total = torch.zeros((n, channels, *grid.shape), dtype=torch.float64)
    for ell, wt in zip(scales, wts):
        total += float(wt) * gaussian_random_field(
            n, grid, generator, length_scale=ell, slope=slope, channels=channels)
    return normalize_fields(total) if normalize else total


def cell_coordinates(grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell positions ``y [H, 1]``, ``x [1, W]`` in physical units, float64."""
    dy, dx = grid.spacing
    h, w = grid.shape
    y = torch.arange(h, dtype=torch.float64).reshape(h, 1) * dy
    x = torch.arange(w, dtype=torch.float64).reshape(1, w) * dx
    return y, x


def random_sinusoids(n: int, grid: Grid, generator: torch.Generator, *, n_modes: int = 4,
                     max_mode: int = 4, channels: int = 1,
                     normalize: bool = True) -> torch.Tensor:
    """Sum of ``n_modes`` plane waves ``a sin(2π(m_y y/L_y + m_x x/L_x) + φ)``.

    Integer mode numbers ``m`` in ``[-max_mode, max_mode]`` (not both 0) make every wave periodic
    on the grid; amplitudes are uniform in ``[0.5, 1]``, phases uniform.
    """
    _check(n, channels, generator)
    if n_modes < 1 or max_mode < 1:
        raise ValueError("need n_modes >= 1 and max_mode >= 1")
    shape = (n, channels, n_modes)
    # Draw a nonzero mode vector directly: index into the (2M+1)² - 1 nonzero pairs.
    side = 2 * max_mode + 1
    pick = torch.randint(0, side * side - 1, shape, generator=generator)
    pick = pick + (pick >= (side * side) // 2).long()  # skip the (0, 0) pair at the centre
    my = (pick // side - max_mode).to(torch.float64)
    mx = (pick % side - max_mode).to(torch.float64)
    amp = 0.5 + 0.5 * torch.rand(shape, generator=generator, dtype=torch.float64)
    phase = 2.0 * math.pi * torch.rand(shape, generator=generator, dtype=torch.float64)
    y, x = cell_coordinates(grid)
    ly, lx = grid.extent
    arg = 2.0 * math.pi * (my[..., None, None] * (y / ly) + mx[..., None, None] * (x / lx))
    field = (amp[..., None, None] * torch.sin(arg + phase[..., None, None])).sum(dim=2)
    return normalize_fields(field) if normalize else field


def gaussian_blobs(n: int, grid: Grid, generator: torch.Generator, *, n_blobs: int = 6,
                   width: tuple[float, float] | None = None, signed: bool = False,
                   channels: int = 1, normalize: bool = True) -> torch.Tensor:
    """Sum of ``n_blobs`` periodic Gaussian bumps ``a exp(-|x - c|² / (2σ²))``.

    Centres uniform on the torus (distances by minimum image, so bumps wrap around), widths σ
    uniform in ``width`` (default 1/32 to 1/12 of the shorter extent, at least one grid spacing), amplitudes uniform in
    ``[0.5, 1]`` and, with ``signed``, a random sign. Unnormalized, the field is >= 0 unless
    ``signed``, which makes it directly usable as a concentration.
    """
    _check(n, channels, generator)
    if n_blobs < 1:
        raise ValueError("need n_blobs >= 1")
    size = min(grid.extent)
    if width is None:
        # At least one grid spacing: a narrower bump falls between grid points and the field
        # would be numerically zero on a coarse or very anisotropic grid.
        cell = max(grid.spacing)
        lo, hi = max(size / 32.0, cell), max(size / 12.0, cell)
    else:
        lo, hi = width
    if not (0 < lo <= hi):
        raise ValueError(f"blob widths need 0 < low <= high, got {(lo, hi)}")
    shape = (n, channels, n_blobs)
    ly, lx = grid.extent
    cy = ly * torch.rand(shape, generator=generator, dtype=torch.float64)
    cx = lx * torch.rand(shape, generator=generator, dtype=torch.float64)
    sigma = lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=torch.float64)
    amp = 0.5 + 0.5 * torch.rand(shape, generator=generator, dtype=torch.float64)
    if signed:
        sign = torch.randint(0, 2, shape, generator=generator).to(torch.float64) * 2 - 1
        amp = amp * sign
    y, x = cell_coordinates(grid)
    d_y = y - cy[..., None, None]
    d_x = x - cx[..., None, None]
    d_y = d_y - ly * torch.round(d_y / ly)
    d_x = d_x - lx * torch.round(d_x / lx)
    s2 = 2.0 * sigma[..., None, None] ** 2
    field = (amp[..., None, None] * torch.exp(-(d_y * d_y + d_x * d_x) / s2)).sum(dim=2)
    return normalize_fields(field) if normalize else field
