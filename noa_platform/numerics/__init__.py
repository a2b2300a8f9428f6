"""Shared numerics for every domain: spectral symbols, ETD integrators, random fields.

Nothing here knows a specific physics. A domain composes a solver from a linear symbol
(:mod:`~noa_platform.numerics.spectral`), its own nonlinear function and an integrator
(:mod:`~noa_platform.numerics.etd`), and builds its initial conditions from the seeded fields of
:mod:`~noa_platform.numerics.random_fields`.
"""

from noa_platform.numerics.etd import INTEGRATORS, ETDIntegrator, make_stepper, phi_functions
from noa_platform.numerics.spectral import (
    dealias_mask,
    gradient,
    laplacian,
    laplacian_symbol,
    wavenumbers,
)

__all__ = [
    "ETDIntegrator",
    "INTEGRATORS",
    "dealias_mask",
    "gradient",
    "laplacian",
    "laplacian_symbol",
    "make_stepper",
    "phi_functions",
    "wavenumbers",
]
