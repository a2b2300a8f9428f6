"""Spectral symbols on periodic grids (noa_platform.numerics.spectral)."""

from __future__ import annotations

import math

import pytest
import torch

from noa_platform.api import Grid
from noa_platform.numerics.spectral import (
    dealias_mask,
    dealiasing_mask,
    derivative_symbol,
    derivative_symbols,
    gradient,
    inverse_laplacian,
    inverse_laplacian_symbol,
    laplacian,
    laplacian_symbol,
    rfft_shape,
    velocity_from_stream_function,
    wavenumbers,
)


def _field(grid: Grid, my: int, mx: int):
    h, w = grid.shape
    ly, lx = grid.extent
    y = torch.arange(h, dtype=torch.float64)[:, None] * (ly / h)
    x = torch.arange(w, dtype=torch.float64)[None, :] * (lx / w)
    ky, kx = 2 * math.pi * my / ly, 2 * math.pi * mx / lx
    return torch.sin(ky * y + kx * x), ky, kx, (ky * y + kx * x)


@pytest.mark.parametrize("shape, extent", [((16, 16), (16.0, 16.0)), ((12, 20), (3.0, 7.5)),
                                           ((9, 15), (2 * math.pi, 1.0))])
def test_wavenumbers_are_physical(shape, extent):
    grid = Grid(shape, extent)
    ky, kx = wavenumbers(grid)
    assert ky.shape == (shape[0], 1) and kx.shape == (1, shape[1] // 2 + 1)
    assert rfft_shape(grid) == (shape[0], shape[1] // 2 + 1)
    assert float(ky[1, 0]) == pytest.approx(2 * math.pi / extent[0])
    assert float(ky[-1, 0]) == pytest.approx(-2 * math.pi / extent[0])
    assert float(kx[0, -1]) == pytest.approx(2 * math.pi / extent[1] * (shape[1] // 2))


@pytest.mark.parametrize("shape, extent", [((16, 16), (16.0, 16.0)), ((12, 20), (3.0, 7.5))])
def test_laplacian_and_gradient_are_exact_on_resolved_modes(shape, extent):
    grid = Grid(shape, extent)
    f, ky, kx, arg = _field(grid, 2, -3)
    torch.testing.assert_close(laplacian(f, grid), -(ky**2 + kx**2) * f, atol=1e-10, rtol=0)
    dy, dx = gradient(f, grid)
    torch.testing.assert_close(dy, ky * torch.cos(arg), atol=1e-10, rtol=0)
    torch.testing.assert_close(dx, kx * torch.cos(arg), atol=1e-10, rtol=0)
    assert laplacian_symbol(grid)[0, 0] == 0


def test_dealias_mask_keeps_two_thirds():
    grid = Grid((48, 48), (1.0, 1.0))
    mask = dealias_mask(grid)
    assert mask.shape == (48, 25)
    # |n| <= 16 kept along each axis: 33 rows, 17 columns.
    assert int(mask[:, 0].sum()) == 33 and int(mask[0].sum()) == 17
    assert bool(dealias_mask(grid, 1.0).all())
    with pytest.raises(ValueError):
        dealias_mask(grid, 0.0)


def test_non_periodic_grid_is_refused():
    with pytest.raises(ValueError, match="periodic"):
        wavenumbers(Grid((8, 8), (1.0, 1.0), periodic=False))


# --------------------------------------------------------------------------------------------
# Public helpers: derivative symbols, inverse Laplacian, velocity from a stream function
# --------------------------------------------------------------------------------------------


def _xy(grid: Grid):
    h, w = grid.shape
    y = (torch.arange(h, dtype=torch.float64)[:, None] * (grid.extent[0] / h)).expand(h, w)
    x = (torch.arange(w, dtype=torch.float64)[None, :] * (grid.extent[1] / w)).expand(h, w)
    return y, x


GRID_RECT = Grid((16, 24), (3.0, 5.0))


def _psi(grid: Grid):
    """A zero-mean field and its exact derivatives and Laplacian, written by hand."""
    y, x = _xy(grid)
    a, b = 2 * math.pi / grid.extent[0], 2 * math.pi / grid.extent[1]
    psi = torch.sin(2 * a * y) * torch.cos(3 * b * x) + 0.5 * torch.cos(a * y + 5 * b * x)
    dpsi_dy = 2 * a * torch.cos(2 * a * y) * torch.cos(3 * b * x) \
        - 0.5 * a * torch.sin(a * y + 5 * b * x)
    dpsi_dx = -3 * b * torch.sin(2 * a * y) * torch.sin(3 * b * x) \
        - 2.5 * b * torch.sin(a * y + 5 * b * x)
    lap = -((2 * a) ** 2 + (3 * b) ** 2) * torch.sin(2 * a * y) * torch.cos(3 * b * x) \
        - 0.5 * (a * a + (5 * b) ** 2) * torch.cos(a * y + 5 * b * x)
    return psi, dpsi_dy, dpsi_dx, lap


def test_derivative_symbols_differentiate_exactly():
    psi, dpsi_dy, dpsi_dx, _ = _psi(GRID_RECT)
    sy, sx = derivative_symbols(GRID_RECT)
    assert torch.equal(sy, derivative_symbol(GRID_RECT, 0))
    psi_hat = torch.fft.rfft2(psi)
    got_y = torch.fft.irfft2(sy * psi_hat, s=GRID_RECT.shape)
    got_x = torch.fft.irfft2(sx * psi_hat, s=GRID_RECT.shape)
    # measured <= 2.7e-14 absolute on derivatives of size ~5
    torch.testing.assert_close(got_y, dpsi_dy, atol=1e-13, rtol=0)
    torch.testing.assert_close(got_x, dpsi_dx, atol=1e-13, rtol=0)
    with pytest.raises(ValueError, match="axis"):
        derivative_symbol(GRID_RECT, 2)


def test_inverse_laplacian_inverts_the_laplacian_on_zero_mean_fields():
    psi, _, _, lap = _psi(GRID_RECT)
    torch.testing.assert_close(inverse_laplacian(lap, GRID_RECT), psi, atol=1e-14, rtol=0)
    # The mean mode is set to 0: a constant added to f changes nothing.
    torch.testing.assert_close(inverse_laplacian(lap + 7.0, GRID_RECT), psi, atol=1e-14, rtol=0)
    sym = inverse_laplacian_symbol(GRID_RECT)
    assert sym[0, 0] == 0
    assert torch.all(sym.flatten()[1:] < 0)


def test_velocity_from_stream_function_is_divergence_free_with_the_stated_signs():
    psi, dpsi_dy, dpsi_dx, lap = _psi(GRID_RECT)
    u, v = velocity_from_stream_function(psi, GRID_RECT)
    torch.testing.assert_close(u, dpsi_dy, atol=1e-13, rtol=0)
    torch.testing.assert_close(v, -dpsi_dx, atol=1e-13, rtol=0)
    du_dy, du_dx = gradient(u, GRID_RECT)
    dv_dy, dv_dx = gradient(v, GRID_RECT)
    # measured 3e-14 and 3e-13 on second derivatives of size ~50
    assert float((du_dx + dv_dy).abs().max()) <= 2e-13
    # Vorticity ∂v/∂x − ∂u/∂y = −Δψ.
    torch.testing.assert_close(dv_dx - du_dy, -lap, atol=2e-12, rtol=0)


def test_dealiasing_rules_by_name():
    grid = Grid((12, 12), (1.0, 1.0))
    assert dealiasing_mask(grid, "none") is None
    assert torch.equal(dealiasing_mask(grid, "2/3"), dealias_mask(grid))
    with pytest.raises(ValueError, match="unknown dealiasing rule"):
        dealiasing_mask(grid, "3/2")
