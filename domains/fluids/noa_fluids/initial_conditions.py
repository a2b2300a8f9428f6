"""Initial vorticity families of the fluids domain.

Every family returns ``[n, 1, H, W]`` float64 on the CPU, drawing all its randomness from the
given CPU generator (the generic fields of :mod:`noa_platform.numerics.random_fields`), and is
then made a resolved, physical vorticity: its mean is removed (a periodic vorticity has zero
mean), modes outside the 2/3 rule are dropped (the solver's dynamics lives on the kept modes)
and it is scaled to a root-mean-square speed of :data:`RMS_SPEED` (energy ``½``). Lengths are
fractions of the box, so a family keeps its look at every resolution.

torch is imported inside the functions: importing this module does not load it.
"""

from __future__ import annotations

from noa_platform.api import Grid, InitialCondition

#: Root-mean-square speed of every initial condition (the forcing then sets the flow's own).
RMS_SPEED = 1.0


def _physical(field, grid: Grid):
    """Zero mean, 2/3-dealiased, RMS speed :data:`RMS_SPEED`."""
    import torch

    from noa_fluids.invariants import energy
    from noa_platform.numerics.spectral import dealias_mask

    spec = torch.fft.rfft2(field)
    spec = spec.masked_fill(~dealias_mask(grid), 0)
    spec[..., 0, 0] = 0
    omega = torch.fft.irfft2(spec, s=tuple(grid.shape))
    e = energy(omega, grid)[..., None, None, None]                 # [n, 1, 1, 1]
    scale = torch.where(e > 0, RMS_SPEED / torch.sqrt(2.0 * e.clamp_min(1e-300)),
                        torch.zeros_like(e))
    return omega * scale


def grf(n: int, grid: Grid, generator):
    """Gaussian random vorticity, correlation length 1/8 of the box, spectral slope 4."""
    from noa_platform.numerics.random_fields import gaussian_random_field

    size = min(grid.extent)
    return _physical(gaussian_random_field(n, grid, generator, length_scale=size / 8.0,
                                           slope=4.0), grid)


def multiscale(n: int, grid: Grid, generator):
    """Sum of vorticity GRFs at 1/2, 1/6 and 1/12 of the box: large eddies with finer ones."""
    from noa_platform.numerics.random_fields import multiscale_field

    size = min(grid.extent)
    return _physical(multiscale_field(n, grid, generator,
                                      length_scales=(size / 2, size / 6, size / 12),
                                      weights=(1.0, 0.6, 0.3)), grid)


def vortices(n: int, grid: Grid, generator):
    """Ten Gaussian vortices of random sign, widths 1/24 to 1/10 of the box."""
    from noa_platform.numerics.random_fields import gaussian_blobs

    size = min(grid.extent)
    cell = max(grid.spacing)
    return _physical(gaussian_blobs(n, grid, generator, n_blobs=10, signed=True,
                                    width=(max(size / 24, 1.5 * cell), max(size / 10, 2 * cell))),
                     grid)


def shear(n: int, grid: Grid, generator):
    """Three random plane waves of up to 3 wavelengths across the box (shear layers and cells)."""
    from noa_platform.numerics.random_fields import random_sinusoids

    return _physical(random_sinusoids(n, grid, generator, n_modes=3, max_mode=3), grid)


INITIAL_CONDITIONS: dict[str, InitialCondition] = {
    ic.name: ic for ic in (
        InitialCondition.from_function("gaussian-random-field", grf),
        InitialCondition.from_function("multiscale", multiscale),
        InitialCondition.from_function("vortices", vortices),
        InitialCondition.from_function("shear", shear),
    )
}

__all__ = ["INITIAL_CONDITIONS", "RMS_SPEED"]
