"""θ of the fluids domain (NumPy only: importable without torch).

θ has four columns (physical values, float64)::

    column  name       range             meaning
    0       nu         [NU_LOW, NU_HIGH] kinematic viscosity ν (log scale); also exactly 0
    1       alpha      [0, ALPHA_HIGH]   linear (Ekman) drag α
    2       forcing    [0, FORCING_HIGH] Kolmogorov forcing amplitude F (of the vorticity)
    3       forcing_k  integers 2..4     Kolmogorov forcing wavenumber n

on the periodic square ``[0, 2π)²``::

    ω_t + u·∇ω = ν Δω − α ω + f,     u = ∇⊥ψ = (∂ψ/∂y, −∂ψ/∂x),     Δψ = −ω,
    f = −F cos(n y) = ∇×((F/n) sin(n y) e_x).

``nu = 0`` (with ``alpha = forcing = 0``: the Galerkin-truncated Euler equations, which
conserve energy and enstrophy) is accepted for verification but never sampled: the log scale
maps the unit cube to ``[NU_LOW, NU_HIGH]`` only, and conditioning maps 0 to the low end.
Why these ranges: ``docs/fluids.md`` (the resolution measurement sets ``NU_LOW``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from noa_platform.api import IntegerParameter, LinearParameter, LogParameter, ParameterSpace

NU_LOW, NU_HIGH = 2e-2, 1e-1
ALPHA_HIGH = 0.2
FORCING_HIGH = 4.0
FORCING_K_LOW, FORCING_K_HIGH = 2, 4

COL_NU, COL_ALPHA, COL_FORCING, COL_FORCING_K = range(4)


@dataclass(frozen=True)
class ViscosityParameter(LogParameter):
    """A log-scale viscosity that also accepts exactly 0 (the inviscid limit).

    Sampling (``from_unit``) never gives 0; ``to_unit(0)`` is 0, the low end, so a verification
    row with ν = 0 still has a conditioning in ``[0, 1]``.
    """

    kind: ClassVar[str] = "log"

    def contains(self, value: np.ndarray) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        return super().contains(v) | (v == 0.0)

    def to_unit(self, value: np.ndarray) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        safe = np.where(v == 0.0, self.low, v)
        return np.where(v == 0.0, 0.0, super().to_unit(safe))

    def range_text(self) -> str:
        return f"[{self.low:g}, {self.high:g}] or 0 (inviscid, for verification)"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "also": 0.0}


PARAMETER_SPACE = ParameterSpace([
    ViscosityParameter("nu", "kinematic viscosity ν", low=NU_LOW, high=NU_HIGH),
    LinearParameter("alpha", "linear (Ekman) drag α", low=0.0, high=ALPHA_HIGH),
    LinearParameter("forcing", "Kolmogorov forcing amplitude F: f = −F cos(n y) (body force "
                    "(F/n) sin(n y) e_x)", low=0.0, high=FORCING_HIGH),
    IntegerParameter("forcing_k", "Kolmogorov forcing wavenumber n",
                     low=FORCING_K_LOW, high=FORCING_K_HIGH),
])
