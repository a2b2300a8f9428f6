"""How large an internal step each ETD integrator may take, given a bound on the reaction rate.

The linear part of ``u_t = L u + N(u)`` is integrated exactly by every ETD scheme, so only the
nonlinear part limits the step. Let ρ bound the spectral radius of ``N``'s Jacobian over the
states a solution can reach (the domain's *rate bound*) and ``z = dt·λ`` for an eigenvalue λ of
that Jacobian. Where the linear part vanishes (the mean mode, slowly damped modes) an ETD scheme
reduces to an explicit Runge–Kutta method with stability polynomial ``R(z)``:

==========  ==========================  =====================================
integrator  reduces to                  ``R(z)``
==========  ==========================  =====================================
etdrk1      forward Euler               ``1 + z``
etdrk2      Heun (trapezoidal RK2)      ``1 + z + z²/2``
etdrk4      classical RK4               ``1 + z + z²/2 + z³/6 + z⁴/24``
==========  ==========================  =====================================

The Jacobian of a reaction law is not symmetric, so λ may be complex with any argument; all we
know is ``|λ| <= ρ``. A step is safe when every ``z`` in the closed left half-disc of radius
``r = dt·ρ`` (the modes that the exact flow does not amplify) is amplified at most a little:

* etdrk4: RK4's region contains the closed left half-disc of radius 2.615 (it reaches the
  imaginary axis up to 2√2), so ``|R(z)| <= 1`` there: strictly stable. Margin 2.5.
* etdrk1, etdrk2: Euler's and Heun's regions touch the imaginary axis only at 0
  (``|R(iy)|² = 1 + y²`` and ``1 + y⁴/4``), so *no* step is strictly stable for an oscillatory
  eigenvalue. The old margin 1.0 (from the real interval ``[-2, 0]``) amplifies
  ``z = i`` by 1.41 (Euler) and 1.12 (Heun) per step. Instead we bound the spurious growth:
  over the half-disc, ``ln max|R(z)| / dt <= β ρ`` with ``β = 0.01``, i.e. an undamped
  oscillation at the bound's frequency ρ grows by at most ``e^{2π β}`` (6.5 %) per period.
  This holds up to ``r = 0.0200`` (Euler) and ``r = 0.431`` (Heun); margins 0.018 and 0.40.

``tests/test_numerics_stability.py`` checks these statements by sampling the half-disc.
The margins are the largest ``dt·ρ``; :func:`stability_limit` turns them into steps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROWTH_BUDGET", "STABILITY_MARGIN", "amplification", "stability_limit"]

#: Largest ``dt·ρ`` per integrator (see the module docstring for the derivation).
STABILITY_MARGIN: dict[str, float] = {"etdrk4": 2.5, "etdrk2": 0.40, "etdrk1": 0.018}

#: β: the spurious growth rate allowed for etdrk1/etdrk2, as a fraction of the rate bound ρ.
GROWTH_BUDGET = 0.01

_TAYLOR_TERMS = {"etdrk1": 1, "etdrk2": 2, "etdrk4": 4}


def amplification(integrator: str, z: np.ndarray | complex) -> np.ndarray:
    """``R(z)``: the integrator's amplification of a mode ``u' = λu`` per step, ``z = dt·λ``,
    when the linear part is zero (the explicit Runge–Kutta method it reduces to)."""
    z = np.asarray(z, dtype=np.complex128)
    term = np.ones_like(z)
    total = np.ones_like(z)
    for j in range(1, _TAYLOR_TERMS[_known(integrator)] + 1):
        term = term * z / j
        total = total + term
    return total


def stability_limit(rate_bound: np.ndarray | float, integrator: str) -> np.ndarray:
    """Largest internal step ``STABILITY_MARGIN[integrator] / ρ`` for rate bounds ``ρ > 0``."""
    return STABILITY_MARGIN[_known(integrator)] / np.asarray(rate_bound, dtype=np.float64)


def _known(integrator: str) -> str:
    if integrator not in STABILITY_MARGIN:
        raise ValueError(f"no stability margin for integrator {integrator!r}; known: "
                         f"{', '.join(STABILITY_MARGIN)}")
    return integrator
