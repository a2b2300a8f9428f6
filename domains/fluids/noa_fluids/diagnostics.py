"""Diagnostics of vorticity fields: the shell enstrophy spectrum and its fall-off at the
dealiasing cut-off (the resolution criterion of docs/fluids.md). torch is imported inside."""

from __future__ import annotations

import math
from typing import Any

from noa_platform.api import Grid


def enstrophy_spectrum(omega: Any, grid: Grid) -> Any:
    """Shell-summed enstrophy ``Z(k) = ½ Σ_{k−½ ≤ |n| < k+½} |ω̂_n|² / (HW)²`` for integer
    shells ``k = 0 .. min(H, W)//2`` of frames ``[..., H, W]`` on a ``2π`` box (``n`` integer
    frequencies); ``Σ_k Z(k) = ½⟨ω²⟩`` up to the corner modes beyond the last shell.
    Returns ``[..., K]`` float64."""
    import torch

    from noa_platform.numerics.spectral import integer_frequencies

    w = omega.to(torch.float64)
    h, wd = grid.shape
    spec = torch.fft.rfft2(w).abs() ** 2 / (h * wd) ** 2
    weight = torch.full(spec.shape[-2:], 2.0, dtype=torch.float64)
    weight[:, 0] = 1.0
    if wd % 2 == 0:
        weight[:, -1] = 1.0
    ny, nx = integer_frequencies(grid)
    shell = torch.sqrt(ny * ny + nx * nx).round().long()
    n_shells = min(h, wd) // 2 + 1
    keep = shell < n_shells
    flat = (0.5 * weight * spec)[..., keep]
    out = torch.zeros((*flat.shape[:-1], n_shells), dtype=torch.float64)
    return out.index_add_(-1, shell[keep], flat)


def cutoff_shell(grid: Grid) -> int:
    """The last integer shell inside the 2/3 rule's kept square: ``floor(min(H, W) / 3)``."""
    return math.floor(min(grid.shape) / 3)


def decades_at_cutoff(omega: Any, grid: Grid) -> Any:
    """``log10(max_k Z(k) / Z(k_c))`` per frame ``[...]``: how many decades the enstrophy
    spectrum falls from its peak to the cut-off shell ``k_c`` (:func:`cutoff_shell`)."""
    import torch

    z = enstrophy_spectrum(omega, grid)
    kc = cutoff_shell(grid)
    return torch.log10(z.amax(dim=-1) / z[..., kc].clamp_min(1e-300))
