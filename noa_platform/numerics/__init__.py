"""Shared numerics for every domain: spectral helpers, ETD integrators, the spectral solver
template, stability margins, nonlinear-term building blocks, random fields.

Nothing here knows a specific physics. A domain builds its solver by subclassing
:class:`~noa_platform.numerics.template.SpectralSolver` and supplying its linear part (a symbol
from :mod:`~noa_platform.numerics.spectral`, or a :class:`CoupledLinear` matrix per wavenumber),
its nonlinear term (:mod:`~noa_platform.numerics.nonlinear`), a rate bound, a default step and a
dealiasing rule; the integrators are :mod:`~noa_platform.numerics.etd`, the step limits
:mod:`~noa_platform.numerics.stability`. Initial conditions come from the seeded fields of
:mod:`~noa_platform.numerics.random_fields`. See ``docs/numerics.md``.
"""

from noa_platform.numerics.etd import (
    INTEGRATORS,
    CoupledLinear,
    ETDIntegrator,
    make_stepper,
    matrix_phi_functions,
    phi_functions,
)
from noa_platform.numerics.nonlinear import dealiased, pointwise
from noa_platform.numerics.spectral import (
    DEALIASING_RULES,
    batch_stable_irfft2,
    batch_stable_rfft2,
    dealias_mask,
    dealiasing_mask,
    derivative_symbol,
    derivative_symbols,
    gradient,
    inverse_laplacian,
    inverse_laplacian_symbol,
    laplacian,
    laplacian_symbol,
    velocity_from_stream_function,
    wavenumbers,
)
from noa_platform.numerics.stability import STABILITY_MARGIN, stability_limit
from noa_platform.numerics.template import (
    MAX_STEPS_PER_FRAME,
    SpectralSolver,
    ladder_steps,
    static_field_generator,
)

__all__ = [
    "DEALIASING_RULES",
    "INTEGRATORS",
    "MAX_STEPS_PER_FRAME",
    "STABILITY_MARGIN",
    "CoupledLinear",
    "ETDIntegrator",
    "SpectralSolver",
    "batch_stable_irfft2",
    "batch_stable_rfft2",
    "dealias_mask",
    "dealiased",
    "dealiasing_mask",
    "derivative_symbol",
    "derivative_symbols",
    "gradient",
    "inverse_laplacian",
    "inverse_laplacian_symbol",
    "ladder_steps",
    "laplacian",
    "laplacian_symbol",
    "make_stepper",
    "matrix_phi_functions",
    "phi_functions",
    "pointwise",
    "stability_limit",
    "static_field_generator",
    "velocity_from_stream_function",
    "wavenumbers",
]
