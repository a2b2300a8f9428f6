"""Stability margins of the ETD integrators (noa_platform.numerics.stability), checked by
sampling the closed left half-disc that the module docstring reasons about."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noa_platform.numerics.stability import (
    GROWTH_BUDGET,
    STABILITY_MARGIN,
    amplification,
    splitting_amplification,
    stability_limit,
)


def _half_disc(r: float, n: int = 801) -> np.ndarray:
    """Boundary of the closed left half-disc of radius r (the maximum of |R| lies on it)."""
    arc = r * np.exp(1j * np.linspace(math.pi / 2, 3 * math.pi / 2, n))
    segment = 1j * np.linspace(-r, r, n)
    return np.concatenate([arc, segment])


def _spurious_growth_rate(integrator: str, r: float) -> float:
    """ln max|R| / (dt ρ) over the half-disc of radius r = dt ρ: growth per unit ρ·t."""
    return math.log(np.abs(amplification(integrator, _half_disc(r))).max()) / r


def test_etdrk4_margin_is_strictly_stable_on_the_left_half_disc():
    assert np.abs(amplification("etdrk4", _half_disc(STABILITY_MARGIN["etdrk4"]))).max() <= 1
    # ... with room: the largest such radius is 2.615.
    assert np.abs(amplification("etdrk4", _half_disc(2.61))).max() <= 1
    assert np.abs(amplification("etdrk4", _half_disc(2.65))).max() > 1


@pytest.mark.parametrize("integrator, bound", [("etdrk1", 0.0200), ("etdrk2", 0.431)])
def test_low_order_margins_bound_the_spurious_growth(integrator, bound):
    margin = STABILITY_MARGIN[integrator]
    assert _spurious_growth_rate(integrator, margin) <= GROWTH_BUDGET
    assert margin < bound
    assert _spurious_growth_rate(integrator, bound * 1.01) > GROWTH_BUDGET
    # No step is strictly stable for an imaginary eigenvalue: |R(iy)| > 1 for every y != 0.
    assert abs(amplification(integrator, 1e-3j)) > 1


def test_old_margin_was_unsafe_for_complex_eigenvalues():
    """The former margin 1.0 amplifies z = i by 1.41 (Euler) and 1.12 (Heun) per step."""
    assert abs(amplification("etdrk1", 1j)) == pytest.approx(math.sqrt(2))
    assert abs(amplification("etdrk2", 1j)) == pytest.approx(math.sqrt(1.25))


def test_stability_limit_and_unknown_integrator():
    assert stability_limit(np.array([2.0, 0.5]), "etdrk4").tolist() == [1.25, 5.0]
    with pytest.raises(ValueError, match="no stability margin"):
        stability_limit(1.0, "rk45")


def _worst_split_radius(r: float, damping: float = 0.0) -> float:
    """Largest spectral radius of one strang step of the split oscillator over dt·ω₀ <= r and
    dt·ω <= r (ω² − ω₀² of either sign), for a flow damping dt·γ."""
    x = np.linspace(1e-3, r, 300)[:, None]
    ratio = np.concatenate([np.linspace(0.0, 1.0, 40), np.linspace(1.0, 1e6, 4000)])[None]
    omega = np.minimum(x * np.sqrt(ratio), r)               # dt ω, capped by r
    m = splitting_amplification(x, omega**2 - x**2, damping)
    return float(np.abs(np.linalg.eigvals(m)).max())


def test_splitting_amplification_is_the_product_of_kick_flow_kick():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    for x, s, g in [(0.3, 0.1, 0.0), (1.2, -0.5, 0.3), (2.0, 0.7, 2.5), (1.0, 0.0, 2.0)]:
        flow = scipy_linalg.expm(np.array([[0.0, 1.0], [-x * x, -g]]))
        kick = np.array([[1.0, 0.0], [-0.5 * s, 1.0]])
        assert np.abs(kick @ flow @ kick - splitting_amplification(x, s, g)).max() < 1e-14


def test_strang_margin_is_stable_for_the_split_oscillator():
    margin = STABILITY_MARGIN["strang"]
    for damping in (0.0, 0.1, 1.0):
        assert _worst_split_radius(margin, damping) <= 1 + 1e-12
    # ... with room: stable up to dt·ρ = 2 (Störmer–Verlet's limit as ω₀ → 0), not beyond.
    assert _worst_split_radius(1.99) <= 1 + 1e-12
    assert _worst_split_radius(2.05) > 1.05


def test_strang_resonates_near_dt_omega0_equal_pi():
    """Why ρ must bound the flow's frequencies too: a weak positive kick just below
    dt·ω₀ = π is unstable, though the kick alone (dt²·s = 0.05) is far inside Verlet's limit."""
    m = splitting_amplification(np.pi - 0.01, 0.05)
    assert np.abs(np.linalg.eigvals(m)).max() > 1.005   # grows 0.78 % per step
    with pytest.raises(ValueError, match="split oscillator"):
        amplification("strang", 0.5j)
    assert stability_limit(np.array([3.0]), "strang").tolist() == [0.5]
