"""Initial-condition families of the reaction-diffusion domain.

Every family returns ``[n, 2, H, W]`` float64 on the CPU (channels ``u``, ``v``), drawing all
its randomness from the given CPU generator. The generic fields of
:mod:`noa_platform.numerics.random_fields` are turned into concentrations through an
*activation* ``a ∈ [0, 1]``: ``u = 1 − a/2``, ``v = a/4``. ``a = 0`` is Gray–Scott's uniform
rest state ``(1, 0)`` and ``a = 1`` the ``(1/2, 1/4)`` seed state from which its patterns grow,
so every family is a physically sensible mixture of the two; a small independent perturbation
per channel (std 0.01) breaks symmetries. The same values suit FitzHugh–Nagumo, whose dynamics
move any state in ``[0, 1]²`` towards its attractor within a frame or two.

Lengths are in grid units (the domain's grid keeps its spacing of 1 at every resolution), so a
family's features have the same physical size at 32² and 128².
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from noa_platform.api import Grid, InitialCondition

# The families are registered when plugins are discovered and sampled only when data is
# generated: torch and the core's random fields are imported inside the functions, so that
# listing domains does not import torch (see domain.py).
if TYPE_CHECKING:
    import torch

#: Std of the per-channel perturbation added to every family.
PERTURBATION = 0.01


def _concentrations(activation: torch.Tensor, grid: Grid, generator: torch.Generator
                    ) -> torch.Tensor:
    """``[n, 1, H, W]`` activation in ``[0, 1]`` to ``[n, 2, H, W]`` ``(u, v)`` in ``[0, 1]``."""
    import torch

    n = activation.shape[0]
    noise = PERTURBATION * torch.randn((n, 2, *grid.shape), generator=generator,
                                       dtype=torch.float64)
    u = 1.0 - 0.5 * activation
    v = 0.25 * activation
    return (torch.cat([u, v], dim=1) + noise).clamp(0.0, 1.0)


def _from_normalized(field: torch.Tensor, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    import torch

    # A steep sigmoid of a zero-mean, unit-std field: about half the area is seeded, with
    # fronts a fraction of the field's correlation length wide.
    return _concentrations(torch.sigmoid(3.0 * field), grid, generator)


def grf(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """Gaussian random field, correlation length 8 grid cells, spectral slope 4."""
    from noa_platform.numerics.random_fields import gaussian_random_field

    g = gaussian_random_field(n, grid, generator, length_scale=8.0 * grid.spacing[0], slope=4.0)
    return _from_normalized(g, grid, generator)


def multiscale(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """Sum of GRFs at 24, 8 and 3 grid cells: large seeded regions with fine texture."""
    from noa_platform.numerics.random_fields import multiscale_field

    d = grid.spacing[0]
    g = multiscale_field(n, grid, generator, length_scales=(24.0 * d, 8.0 * d, 3.0 * d),
                         weights=(1.0, 0.6, 0.3))
    return _from_normalized(g, grid, generator)


def sinusoids(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """Three random periodic plane waves of up to 3 wavelengths across the domain."""
    from noa_platform.numerics.random_fields import random_sinusoids

    g = random_sinusoids(n, grid, generator, n_modes=3, max_mode=3)
    return _from_normalized(g, grid, generator)


def blobs(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """Round seeds: periodic Gaussian bumps of width 2–5 cells, about one per 400 cells."""
    from noa_platform.numerics.random_fields import gaussian_blobs

    d = grid.spacing[0]
    count = max(2, round(grid.shape[0] * grid.shape[1] / 400))
    g = gaussian_blobs(n, grid, generator, n_blobs=count, width=(2.0 * d, 5.0 * d),
                       normalize=False)
    return _concentrations(g.clamp(0.0, 1.0), grid, generator)


def random_squares(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """Uniform ``(1, 0)`` with 1 to ~area/256 seeded squares of side 4–10 cells (wrapping).

    Inside a square ``(u, v) = (1/2, 1/4)``: the classic start from which Gray–Scott patterns
    (spots, stripes, solitons, chaos) grow or into which they decay.
    """
    import torch

    h, w = grid.shape
    dy, dx = grid.spacing
    max_squares = max(1, round(h * w / 256))
    activation = torch.zeros((n, 1, h, w), dtype=torch.float64)
    for i in range(n):
        count = int(torch.randint(1, max_squares + 1, (1,), generator=generator))
        draws = torch.rand((count, 4), generator=generator, dtype=torch.float64)
        for row in draws.tolist():
            cy, cx, side_y, side_x = row
            sy = max(1, round((4.0 + 6.0 * side_y) / dy))
            sx = max(1, round((4.0 + 6.0 * side_x) / dx))
            rows = (int(cy * h) + torch.arange(min(sy, h))) % h
            cols = (int(cx * w) + torch.arange(min(sx, w))) % w
            activation[i, 0, rows[:, None], cols[None, :]] = 1.0
    return _concentrations(activation, grid, generator)


INITIAL_CONDITIONS: dict[str, InitialCondition] = {
    ic.name: ic for ic in (
        InitialCondition.from_function("random-squares", random_squares),
        InitialCondition.from_function("gaussian-random-field", grf),
        InitialCondition.from_function("multiscale", multiscale),
        InitialCondition.from_function("sinusoids", sinusoids),
        InitialCondition.from_function("blobs", blobs),
    )
}
