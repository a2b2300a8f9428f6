"""Fourier symbols on a periodic :class:`~noa_platform.api.Grid`.

Everything here uses the ``rfft2`` layout of a real field ``[..., H, W]``: its transform is
``[..., H, W // 2 + 1]``, the first Fourier axis (``y``, length ``H``) holds the integer
frequencies ``0, 1, ..., -1`` in :func:`torch.fft.fftfreq` order and the second (``x``) the
non-negative ones ``0 .. W // 2``. Physical wavenumbers are ``k = 2π n / L`` with ``L`` the
grid's extent along that axis, so a symbol built here is right for any extent, not only for
``2π``-periodic boxes.

Symbols are built in float64 on the CPU (they are small and computed once) and then moved;
callers cast them to the run's dtype and device.

Conventions (public helpers):

* axis 0 of a field is ``y`` (rows), axis 1 is ``x`` (columns); derivative pairs are returned
  ``(∂/∂y, ∂/∂x)`` in that order;
* first derivatives drop the Nyquist mode of an even-length axis (it has no sign, so ``i k``
  would make a real field complex);
* the inverse Laplacian sets the mean (``k = 0``) mode to 0: ``Δ⁻¹`` is only defined on
  zero-mean fields, and a periodic stream function or potential is defined up to a constant;
* velocity from a stream function ψ is ``(u, v) = (∂ψ/∂y, −∂ψ/∂x)``, with ``u`` the ``x``
  component and ``v`` the ``y`` component; then ``∂u/∂x + ∂v/∂y = 0`` and the vorticity
  ``∂v/∂x − ∂u/∂y = −Δψ``, so ``Δψ = −ω`` gives back ``ω``;
* dealiasing is a named rule, ``"none"`` or ``"2/3"`` (Orszag): :func:`dealiasing_mask`;
* :func:`batch_stable_rfft2` / :func:`batch_stable_irfft2` give a transform the same bits
  whatever else is in its batch (the CPU FFT takes another code path for a single transform).
"""

from __future__ import annotations

import math

import torch

from noa_platform.api import Grid

__all__ = [
    "DEALIASING_RULES",
    "batch_stable_irfft2",
    "batch_stable_rfft2",
    "dealias_mask",
    "dealiasing_mask",
    "derivative_symbol",
    "derivative_symbols",
    "gradient",
    "integer_frequencies",
    "inverse_laplacian",
    "inverse_laplacian_symbol",
    "laplacian",
    "laplacian_symbol",
    "rfft_shape",
    "velocity_from_stream_function",
    "wavenumbers",
]

#: Dealiasing rules a solver may name: no dealiasing, or Orszag's 2/3 rule.
DEALIASING_RULES = ("none", "2/3")


def _require_periodic(grid: Grid) -> None:
    if not grid.periodic:
        raise ValueError("Fourier symbols need a periodic grid")


def rfft_shape(grid: Grid) -> tuple[int, int]:
    """Shape ``(H, W // 2 + 1)`` of the ``rfft2`` of a field on ``grid``."""
    h, w = grid.shape
    return (h, w // 2 + 1)


def integer_frequencies(
    grid: Grid, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer frequencies ``(ny [H, 1], nx [1, W//2+1])`` (float64) in ``rfft2`` layout."""
    _require_periodic(grid)
    h, w = grid.shape
    ny = torch.fft.fftfreq(h, d=1.0 / h, dtype=torch.float64).round()
    nx = torch.fft.rfftfreq(w, d=1.0 / w, dtype=torch.float64).round()
    return ny.reshape(h, 1).to(device), nx.reshape(1, -1).to(device)


def wavenumbers(
    grid: Grid, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Physical wavenumbers ``(ky [H, 1], kx [1, W//2+1])`` (float64), ``k = 2π n / L``."""
    ny, nx = integer_frequencies(grid, device)
    ly, lx = grid.extent
    return ny * (2.0 * math.pi / ly), nx * (2.0 * math.pi / lx)


def laplacian_symbol(grid: Grid, device: torch.device | str | None = None) -> torch.Tensor:
    """The symbol ``-|k|² = -(ky² + kx²)`` of ``Δ``, shape ``[H, W//2+1]`` float64.

    This is the exact spectral Laplacian (not a finite-difference stencil), so pure diffusion
    ``u_t = D Δu`` is solved exactly by ``û(t) = exp(-D |k|² t) û(0)``.
    """
    ky, kx = wavenumbers(grid, device)
    return -(ky * ky + kx * kx)


def inverse_laplacian_symbol(grid: Grid,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """The symbol ``−1/|k|²`` of ``Δ⁻¹``, shape ``[H, W//2+1]`` float64, with the mean mode 0.

    ``k = 0`` has no inverse: the entry is set to exactly 0, i.e. the result is the zero-mean
    solution (see the module docstring). ``Δ⁻¹ Δ f = f − mean(f)`` for any resolved ``f``.
    """
    lap = laplacian_symbol(grid, device)
    safe = torch.where(lap == 0, torch.ones_like(lap), lap)
    return torch.where(lap == 0, torch.zeros_like(lap), 1.0 / safe)


def derivative_symbol(grid: Grid, axis: int,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """The symbol ``i k`` of ``∂/∂y`` (``axis=0``) or ``∂/∂x`` (``axis=1``), complex128
    ``[H, W//2+1]``, with the Nyquist mode of an even-length axis zeroed."""
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (y) or 1 (x), got {axis!r}")
    return _odd_derivative_symbol(grid, axis, device)


def derivative_symbols(grid: Grid, device: torch.device | str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(i k_y, i k_x)``: the symbols of ``(∂/∂y, ∂/∂x)``; see :func:`derivative_symbol`."""
    return _odd_derivative_symbol(grid, 0, device), _odd_derivative_symbol(grid, 1, device)


def _odd_derivative_symbol(grid: Grid, axis: int, device) -> torch.Tensor:
    """``i k`` along ``axis`` (0 = y, 1 = x), with the Nyquist mode zeroed.

    The Nyquist mode of an even-length axis has no sign: ``i k`` applied to it would produce a
    non-real field, so first derivatives drop it (the usual convention).
    """
    ky, kx = wavenumbers(grid, device)
    h, w = grid.shape
    if axis == 0:
        k = ky.clone()
        if h % 2 == 0:
            k[h // 2, 0] = 0.0
        k = k.expand(h, w // 2 + 1)
    else:
        k = kx.clone()
        if w % 2 == 0:
            k[0, w // 2] = 0.0
        k = k.expand(h, w // 2 + 1)
    return torch.complex(torch.zeros_like(k), k)


def gradient(u: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral gradient ``(∂u/∂y, ∂u/∂x)`` of a real field ``[..., H, W]``.

    Returns real tensors of ``u``'s shape, dtype and device. Exact (to rounding) for band-limited
    fields, i.e. for any field resolved by the grid.
    """
    if tuple(u.shape[-2:]) != tuple(grid.shape):
        raise ValueError(f"field of shape {list(u.shape)} does not live on grid {grid.shape}")
    u_hat = torch.fft.rfft2(u)
    out = []
    for axis in (0, 1):
        sym = _odd_derivative_symbol(grid, axis, u.device).to(u_hat.dtype)
        out.append(torch.fft.irfft2(sym * u_hat, s=grid.shape))
    return out[0], out[1]


def _check_field(u: torch.Tensor, grid: Grid) -> None:
    if tuple(u.shape[-2:]) != tuple(grid.shape):
        raise ValueError(f"field of shape {list(u.shape)} does not live on grid {grid.shape}")


def inverse_laplacian(f: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The zero-mean ``φ`` with ``Δφ = f − mean(f)``, for a real field ``f [..., H, W]``.

    Same shape, dtype and device as ``f``. E.g. the stream function of a vorticity ``ω`` is
    ``inverse_laplacian(−ω)`` (``Δψ = −ω``).
    """
    _check_field(f, grid)
    sym = inverse_laplacian_symbol(grid, f.device).to(f.dtype)
    return torch.fft.irfft2(sym * torch.fft.rfft2(f), s=grid.shape)


def velocity_from_stream_function(psi: torch.Tensor, grid: Grid
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, v) = (∂ψ/∂y, −∂ψ/∂x)``: the ``x`` and ``y`` velocity of a stream function.

    Divergence-free to rounding for any real ``ψ [..., H, W]`` (the spectral derivatives
    commute exactly); see the module docstring for the sign convention.
    """
    dpsi_dy, dpsi_dx = gradient(psi, grid)
    return dpsi_dy, -dpsi_dx


def dealiasing_mask(grid: Grid, rule: str,
                    device: torch.device | str | None = None) -> torch.Tensor | None:
    """The mask for a named rule in :data:`DEALIASING_RULES`: ``None`` for ``"none"`` (leave
    the spectrum alone), :func:`dealias_mask` for ``"2/3"``."""
    if rule == "none":
        return None
    if rule == "2/3":
        return dealias_mask(grid, 2.0 / 3.0, device)
    raise ValueError(f"unknown dealiasing rule {rule!r}; choose one of "
                     f"{', '.join(DEALIASING_RULES)}")


def laplacian(u: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Spectral Laplacian of a real field ``[..., H, W]`` (same shape, dtype and device)."""
    if tuple(u.shape[-2:]) != tuple(grid.shape):
        raise ValueError(f"field of shape {list(u.shape)} does not live on grid {grid.shape}")
    sym = laplacian_symbol(grid, u.device).to(u.dtype)
    return torch.fft.irfft2(sym * torch.fft.rfft2(u), s=grid.shape)


def dealias_mask(grid: Grid, fraction: float = 2.0 / 3.0,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean mask ``[H, W//2+1]`` of the modes kept by the (default 2/3) dealiasing rule.

    A mode is kept when ``|n_y| <= fraction · (H/2)`` and ``|n_x| <= fraction · (W/2)``
    (integer frequencies), i.e. Orszag's rule: products of two kept fields alias only into
    modes that the mask removes. Multiply a quadratic nonlinearity's transform by this mask.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"dealiasing fraction must be in (0, 1], got {fraction}")
    ny, nx = integer_frequencies(grid, device)
    h, w = grid.shape
    return (ny.abs() <= fraction * (h / 2)) & (nx.abs() <= fraction * (w / 2))


def _single_transform(x: torch.Tensor) -> bool:
    return x.ndim >= 2 and math.prod(x.shape[:-2]) == 1


def batch_stable_rfft2(x: torch.Tensor) -> torch.Tensor:
    """``torch.fft.rfft2(x)`` whose result for each ``[H, W]`` slice does not depend on how
    many other slices ``x`` holds.

    PyTorch's CPU FFT (pocketfft) runs a lone transform through another code path than a batch
    of two or more, and the last bits differ (measured with torch 2.13: a ``[1, 1, 16, 16]``
    field against the same field inside ``[3, 1, 16, 16]``, float32 and float64). A single
    slice is therefore transformed as a pair with itself. Slices of a batch of two or more are
    already transformed one by one with the batched path, so they are passed straight through
    (a solver with two or more channels never takes the extra copy).
    """
    if not _single_transform(x):
        return torch.fft.rfft2(x)
    flat = x.reshape(1, *x.shape[-2:])
    out = torch.fft.rfft2(torch.cat([flat, flat]))[:1]
    return out.reshape(*x.shape[:-1], out.shape[-1])


def batch_stable_irfft2(x_hat: torch.Tensor, s: tuple[int, int]) -> torch.Tensor:
    """``torch.fft.irfft2(x_hat, s=s)`` with the same per-slice bits in any batch (see
    :func:`batch_stable_rfft2`)."""
    if not _single_transform(x_hat):
        return torch.fft.irfft2(x_hat, s=s)
    flat = x_hat.reshape(1, *x_hat.shape[-2:])
    out = torch.fft.irfft2(torch.cat([flat, flat]), s=s)[:1]
    return out.reshape(*x_hat.shape[:-2], *out.shape[-2:])
