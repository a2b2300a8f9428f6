"""Spectral symbols on periodic grids (noa_platform.numerics.spectral)."""

from __future__ import annotations

import math

import pytest
import torch

from noa_platform.api import Grid
from noa_platform.numerics.spectral import (
    dealias_mask,
    gradient,
    laplacian,
    laplacian_symbol,
    rfft_shape,
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
