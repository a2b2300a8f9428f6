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

Kick–flow–kick splitting (``strang``, :class:`~noa_platform.numerics.etd.StrangSplitting`) is
for oscillatory Hamiltonian problems, where the split kick has a nilpotent Jacobian (spectral
radius 0), so the half-disc argument says nothing. For it, ρ bounds the *frequencies* of the
whole linearised system: the moduli of the eigenvalues of ``L + N'`` *and* of ``L`` alone (for
the wave equation ``u_tt = ∇·(c²∇u)`` with ``L`` at the speed ``c̄``: ρ = max(c_max, c̄)·|k|_max).
Model problem: an oscillator ``q'' = −ω² q`` split into the exact flow at ``ω₀`` and kicks by
``ω² − ω₀²`` (of either sign). With ``x = dt ω₀`` and ``s = dt² (ω² − ω₀²)`` one step is

    M = K F K,   K = [[1, 0], [−s/2, 1]],   F = [[cos x, sin x / ω₀], [−ω₀ sin x, cos x]],

``det M = 1`` and ``tr M = 2 cos x − s sin x / x``; it is stable iff ``|tr M| < 2``. The flow
resonates with the kicks near ``x = π`` (a band of instability for ``s > 0`` just below
``x = π``), and as ``ω₀ → 0`` the scheme becomes Störmer–Verlet, stable iff ``dt ω < 2``.
Sampling ``dt ω₀ <= r``, ``dt ω <= r`` (with or without damping ``−γ q'`` in the flow) gives a
spectral radius of ``M`` at most 1 up to ``r = 2`` and above 1 beyond; the margin is 1.5,
leaving room for the coupling between wavenumbers that a spatially varying kick adds (which
the scalar model does not see; the waves domain checks its one-step matrix at its limit).

``tests/test_numerics_stability.py`` checks these statements by sampling the half-disc and the
oscillator's parameters. The margins are the largest ``dt·ρ``; :func:`stability_limit` turns
them into steps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROWTH_BUDGET", "STABILITY_MARGIN", "amplification", "splitting_amplification",
           "stability_limit"]

#: Largest ``dt·ρ`` per integrator (see the module docstring for the derivation; for
#: ``strang`` ρ bounds frequencies, not a reaction rate).
STABILITY_MARGIN: dict[str, float] = {"etdrk4": 2.5, "etdrk2": 0.40, "etdrk1": 0.018,
                                      "strang": 1.5}

#: β: the spurious growth rate allowed for etdrk1/etdrk2, as a fraction of the rate bound ρ.
GROWTH_BUDGET = 0.01

_TAYLOR_TERMS = {"etdrk1": 1, "etdrk2": 2, "etdrk4": 4}  # strang: see splitting_amplification


def amplification(integrator: str, z: np.ndarray | complex) -> np.ndarray:
    """``R(z)``: the integrator's amplification of a mode ``u' = λu`` per step, ``z = dt·λ``,
    when the linear part is zero (the explicit Runge–Kutta method it reduces to)."""
    if _known(integrator) not in _TAYLOR_TERMS:
        raise ValueError(f"{integrator} has no Runge–Kutta amplification R(z): its stability is "
                         "that of the split oscillator (splitting_amplification)")
    z = np.asarray(z, dtype=np.complex128)
    term = np.ones_like(z)
    total = np.ones_like(z)
    for j in range(1, _TAYLOR_TERMS[_known(integrator)] + 1):
        term = term * z / j
        total = total + term
    return total


def splitting_amplification(x: np.ndarray | float, s: np.ndarray | float,
                            damping: np.ndarray | float = 0.0) -> np.ndarray:
    """One ``strang`` step of the split oscillator (module docstring) as matrices ``[..., 2, 2]``.

    ``x = dt ω₀`` (the exact flow's frequency, > 0), ``s = dt² (ω² − ω₀²)`` (the kick's
    stiffness, any sign), ``damping = dt γ`` (the flow integrates ``q'' = −ω₀² q − γ q'``
    exactly). Acts on ``(q, dt·q')``.
    """
    x, s, g = np.broadcast_arrays(np.asarray(x, dtype=np.float64),
                                  np.asarray(s, dtype=np.float64),
                                  np.asarray(damping, dtype=np.float64))
    if np.any(x <= 0):
        raise ValueError("the flow's frequency dt·ω₀ must be > 0")
    # The flow of [[0, 1], [−x², −g]] over one (scaled) unit of time, from its eigenvalues.
    disc = np.sqrt((0.25 * g * g - x * x).astype(np.complex128))
    lam1, lam2 = -0.5 * g + disc, -0.5 * g - disc
    e1, e2 = np.exp(lam1), np.exp(lam2)
    # f(A) for a 2×2 A with distinct eigenvalues: (e1 − e2)/(λ1 − λ2) A + (λ1 e2 − λ2 e1)/(λ1 − λ2) I.
    a = np.where(disc == 0, e1, (e1 - e2) / np.where(disc == 0, 1, lam1 - lam2))
    b = np.where(disc == 0, e1 * (1 - lam1), (lam1 * e2 - lam2 * e1) / np.where(
        disc == 0, 1, lam1 - lam2))
    flow = np.empty((*x.shape, 2, 2), dtype=np.complex128)
    flow[..., 0, 0] = b
    flow[..., 0, 1] = a
    flow[..., 1, 0] = -x * x * a
    flow[..., 1, 1] = b - g * a
    kick = np.zeros((*x.shape, 2, 2))
    kick[..., 0, 0] = kick[..., 1, 1] = 1.0
    kick[..., 1, 0] = -0.5 * s
    return (kick @ flow @ kick).real


def stability_limit(rate_bound: np.ndarray | float, integrator: str) -> np.ndarray:
    """Largest internal step ``STABILITY_MARGIN[integrator] / ρ`` for rate bounds ``ρ > 0``."""
    return STABILITY_MARGIN[_known(integrator)] / np.asarray(rate_bound, dtype=np.float64)


def _known(integrator: str) -> str:
    if integrator not in STABILITY_MARGIN:
        raise ValueError(f"no stability margin for integrator {integrator!r}; known: "
                         f"{', '.join(STABILITY_MARGIN)}")
    return integrator
