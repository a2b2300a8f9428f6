"""Initial-condition families of the waves domain: ``(u, u_t)`` at ``t = 0``.

Every family returns ``[n, 2, H, W]`` float64 on the CPU, drawing all its randomness from the
given CPU generator. Lengths are in domain units (the unit square at any resolution), so a
family looks the same at 32² and 64². Displacements are of order 1; velocities are those of
waves at the reference speed :data:`C_REF` (the middle of the θ box), so ``u_t`` is of order
``C_REF |k| u``: initial conditions know nothing of θ, and a wave launched at ``C_REF`` in a
medium of another speed splits into a main part and a weaker counter-propagating one.

Families:

* ``gaussian-pulse`` — 1 to 3 Gaussian bumps of width 0.08–0.15 at rest (``u_t = 0``): each
  splits into outgoing rings;
* ``plane-waves`` — 1 to 3 plane waves of wave vector ``2π n`` (``|n_i| <= 3``, not both 0),
  travelling: ``u = A cos(k·x + φ)``, ``u_t = C_REF |k| A sin(k·x + φ)``;
* ``random-field`` — smooth Gaussian random fields (correlation length 0.25) for ``u`` and,
  independently, ``u_t / (C_REF · 2π/0.25)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from noa_platform.api import Grid, InitialCondition

if TYPE_CHECKING:
    import torch

#: The speed initial velocities assume (the middle of the c range).
C_REF = 0.75


def gaussian_pulse(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """1 to 3 Gaussian pulses of width 0.08–0.15 at rest (u_t = 0)."""
    import torch

    from noa_platform.numerics.random_fields import cell_coordinates

    (ly, lx) = grid.extent
    y, x = cell_coordinates(grid)
    out = torch.zeros((n, 2, *grid.shape), dtype=torch.float64)
    for i in range(n):
        count = int(torch.randint(1, 4, (1,), generator=generator))
        p = torch.rand((count, 4), generator=generator, dtype=torch.float64)
        sign = torch.randint(0, 2, (count,), generator=generator).to(torch.float64) * 2 - 1
        for j in range(count):
            cy, cx = float(p[j, 0]) * ly, float(p[j, 1]) * lx
            width = 0.08 + 0.07 * float(p[j, 2])
            amp = float(sign[j]) * (0.5 + 0.5 * float(p[j, 3]))
            d_y = y - cy
            d_x = x - cx
            d_y = d_y - ly * torch.round(d_y / ly)          # nearest periodic image
            d_x = d_x - lx * torch.round(d_x / lx)
            out[i, 0] += amp * torch.exp(-(d_y * d_y + d_x * d_x) / (2 * width * width))
    return out


def plane_waves(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """1 to 3 travelling plane waves with up to 3 wavelengths across the domain per axis."""
    import torch

    from noa_platform.numerics.random_fields import cell_coordinates

    (ly, lx) = grid.extent
    y, x = cell_coordinates(grid)
    out = torch.zeros((n, 2, *grid.shape), dtype=torch.float64)
    for i in range(n):
        count = int(torch.randint(1, 4, (1,), generator=generator))
        modes = torch.randint(-3, 4, (count, 2), generator=generator).to(torch.float64)
        p = torch.rand((count, 2), generator=generator, dtype=torch.float64)
        for j in range(count):
            ny, nx = float(modes[j, 0]), float(modes[j, 1])
            if ny == 0 and nx == 0:
                nx = 1.0
            ky, kx = 2 * math.pi * ny / ly, 2 * math.pi * nx / lx
            arg = ky * y + kx * x + 2 * math.pi * float(p[j, 0])
            amp = 0.5 + 0.5 * float(p[j, 1])
            out[i, 0] += amp * torch.cos(arg)
            out[i, 1] += C_REF * math.hypot(ky, kx) * amp * torch.sin(arg)
    return out


def random_field(n: int, grid: Grid, generator: torch.Generator) -> torch.Tensor:
    """Smooth Gaussian random fields (correlation length 0.25) for u and u_t."""
    from noa_platform.numerics.random_fields import gaussian_random_field

    fields = gaussian_random_field(n, grid, generator, length_scale=0.25, slope=6.0, channels=2)
    fields[:, 1] *= C_REF * 2 * math.pi / 0.25
    return fields


INITIAL_CONDITIONS: dict[str, InitialCondition] = {
    ic.name: ic for ic in (
        InitialCondition.from_function("gaussian-pulse", gaussian_pulse),
        InitialCondition.from_function("plane-waves", plane_waves),
        InitialCondition.from_function("random-field", random_field),
    )
}
