"""ETD integrators and φ-functions (noa_platform.numerics.etd)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noa_platform.numerics.etd import INTEGRATORS, CoupledLinear, make_stepper, phi_functions

mpmath = pytest.importorskip("mpmath")


def _phi_exact(z: complex, k: int) -> complex:
    with mpmath.workdps(60):
        z = mpmath.mpc(z)
        if abs(z) < 1:
            # The closed form cancels catastrophically near 0 even at 60 digits: sum the series.
            return complex(sum(z**j / mpmath.factorial(j + k) for j in range(60)))
        taylor = sum(z**j / mpmath.factorial(j) for j in range(k))
        return complex((mpmath.exp(z) - taylor) / z**k)


@pytest.mark.parametrize("z", [0, 1e-12, -1e-6, -0.5, -1.0, -1.0001, 0.99, 2.0001, -1.999, -10,
                               -1e3, -1e5, 3j, -3 + 4j, 20.0, -1e-3 + 1e-3j])
def test_phi_functions_match_high_precision(z):
    phis = phi_functions(z, 3)
    for k, p in enumerate(phis):
        exact = _phi_exact(z, k)
        assert abs(complex(p) - exact) <= 1e-13 * abs(exact) + 1e-300


@settings(max_examples=60, deadline=None)
@given(st.floats(-50, 5), st.floats(-50, 50))
def test_phi_functions_are_accurate_everywhere(re, im):
    z = complex(re, im)
    phis = phi_functions(torch.tensor([z], dtype=torch.complex128), 3)
    for k in range(4):
        exact = _phi_exact(z, k)
        assert abs(complex(phis[k][0]) - exact) <= 1e-12 * abs(exact)


def _bernoulli_exact(lam, u0, t):
    """u' = λu + u²: u(t) = λ u0 e^{λt} / (λ + u0 (1 − e^{λt}))."""
    e = np.exp(lam * t)
    return lam * u0 * e / (lam + u0 * (1 - e))


#: Orders on the Bernoulli problem: strang's kick is one Euler step of u' = u², whose flow it
#: is not (N'N = 2u³ ≠ 0), so it is first order there (see test_strang_* for its own class).
BERNOULLI_ORDER = {name: cls.order for name, cls in INTEGRATORS.items()} | {"strang": 1}


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
@pytest.mark.parametrize("lam", [np.array([-1.0, -20.0]), np.array([-1 + 2j, -8 - 30j])])
def test_order_of_convergence_on_an_exact_solution(name, lam):
    """Per-sample (and for the complex case, oscillatory) L; stiff second sample."""
    u0 = np.array([0.5, 0.3 + 0.1j])
    linear = torch.tensor(lam).reshape(2, 1, 1, 1)
    t_end, steps = 1.0, [8, 16, 32, 64]
    errs = []
    for n in steps:
        stepper = make_stepper(name, linear=linear, dt=t_end / n, nonlinear=lambda x: x * x,
                               dtype=torch.float64)
        u = stepper.advance(torch.tensor(u0, dtype=torch.complex128).reshape(2, 1, 1, 1), n)
        errs.append(np.abs(u.reshape(2).numpy() - _bernoulli_exact(lam, u0, t_end)).max())
    measured = np.polyfit(np.log(steps), -np.log(errs), 1)[0]
    assert abs(measured - BERNOULLI_ORDER[name]) <= 0.3, errs


@pytest.mark.parametrize("complex_l", [False, True])
def test_per_sample_coefficients_do_not_depend_on_the_batch(complex_l):
    g = torch.Generator().manual_seed(0)
    lin = -torch.rand((5, 2, 8, 5), generator=g, dtype=torch.float64) * 30
    if complex_l:
        lin = torch.complex(lin, torch.randn((5, 2, 8, 5), generator=g, dtype=torch.float64))
    x = torch.randn((5, 2, 8, 5), generator=g, dtype=torch.complex128)
    batch = make_stepper("etdrk4", linear=lin, dt=0.3, nonlinear=lambda u: 0.1 * u * u,
                         dtype=torch.float64).advance(x, 3)
    for i in range(5):
        alone = make_stepper("etdrk4", linear=lin[i:i + 1], dt=0.3,
                             nonlinear=lambda u: 0.1 * u * u, dtype=torch.float64)
        assert torch.equal(alone.advance(x[i:i + 1], 3), batch[i:i + 1])


def test_linear_part_is_exact_and_subnormals_are_flushed():
    lin = torch.tensor([0.0, -1.0, -200.0], dtype=torch.float64).reshape(3, 1, 1, 1)
    x = torch.ones((3, 1, 1, 1), dtype=torch.complex64)
    stepper = make_stepper("etdrk4", linear=lin, dt=1.0,
                           nonlinear=lambda u: torch.zeros_like(u), dtype=torch.float32)
    out = stepper.advance(x, 1).reshape(3)
    assert out[0] == 1 and abs(complex(out[1]) - math.exp(-1)) < 1e-7
    # exp(-200) is below float32's normal range: flushed to an exact zero.
    assert out[2] == 0


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown integrator"):
        make_stepper("rk45", linear=0.0, dt=1.0, nonlinear=lambda u: u)
    for dt in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="time step"):
            make_stepper("etdrk4", linear=0.0, dt=dt, nonlinear=lambda u: u)


# -- kick–flow–kick splitting --------------------------------------------------------------------


def _split_oscillator(omega0, omega, dt):
    """q'' = −ω² q in (q, p = q') per sample ``[b]``: exact flow at ω₀ (coupled L), kick by the
    rest, N(q, p) = (0, −(ω² − ω₀²) q) — a kick whose Jacobian annihilates its output."""
    omega0 = torch.as_tensor(omega0, dtype=torch.float64).reshape(-1)
    stiff = (torch.as_tensor(omega, dtype=torch.float64).reshape(-1) ** 2 - omega0**2)
    m = torch.zeros((len(omega0), 1, 1, 2, 2), dtype=torch.float64)
    m[:, 0, 0, 0, 1] = 1.0
    m[:, 0, 0, 1, 0] = -omega0**2
    s = stiff.reshape(-1, 1, 1).to(torch.complex128)

    def kick(x):
        return torch.stack([torch.zeros_like(x[:, 0]), -s * x[:, 0]], dim=1)

    return make_stepper("strang", linear=CoupledLinear(m), dt=dt, nonlinear=kick,
                        dtype=torch.float64)


def test_strang_is_exact_for_the_linear_flow_alone():
    """No kick: q = cos(ωt), p = −ω sin(ωt), per sample, to rounding after 100 steps."""
    omega = np.array([0.0, 0.7, 13.0])
    stepper = _split_oscillator(omega, omega, dt=0.05)
    x = torch.zeros((3, 2, 1, 1), dtype=torch.complex128)
    x[:, 0] = 1.0
    out = stepper.advance(x, 100).real.reshape(3, 2).numpy()
    t = 5.0
    assert np.abs(out[:, 0] - np.cos(omega * t)).max() < 1e-13
    assert np.abs(out[:, 1] + omega * np.sin(omega * t)).max() < 1e-12


def test_strang_is_second_order_and_keeps_the_energy_of_a_split_oscillator():
    """ω₀ = 2 flowed exactly, the rest (ω² − ω₀² of either sign) kicked: order 2 against
    cos(ωt); over 2000 steps the energy ½(p² + ω²q²) oscillates without drift."""
    omega0, omega = np.array([2.0, 2.0]), np.array([3.0, 1.5])
    t_end, steps = 2.0, [20, 40, 80, 160]
    errs = []
    for n in steps:
        x = torch.zeros((2, 2, 1, 1), dtype=torch.complex128)
        x[:, 0] = 1.0
        out = _split_oscillator(omega0, omega, t_end / n).advance(x, n).real.reshape(2, 2)
        errs.append(np.abs(out[:, 0].numpy() - np.cos(omega * t_end)).max())
    measured = np.polyfit(np.log(steps), -np.log(errs), 1)[0]
    assert abs(measured - 2.0) <= 0.1, errs

    stepper = _split_oscillator(omega0, omega, dt=0.1)
    x = torch.zeros((2, 2, 1, 1), dtype=torch.complex128)
    x[:, 0] = 1.0
    energy = []
    for _ in range(2000):
        x = stepper.step(x)
        q, p = x.real.reshape(2, 2).T.numpy()
        energy.append(0.5 * (p**2 + omega**2 * q**2))
    rel = np.array(energy) / (0.5 * omega**2) - 1.0           # [steps, 2]
    assert np.abs(rel).max() < 0.02                          # O((dt ω)²) oscillation
    slope = np.polyfit(np.arange(2000) * 0.1, rel, 1)[0]       # per unit time
    assert np.abs(slope).max() < 1e-6


def test_strang_per_sample_coupled_coefficients_do_not_depend_on_the_batch():
    omega = np.array([0.5, 1.0, 4.0])
    x = torch.randn((3, 2, 1, 1), generator=torch.Generator().manual_seed(3),
                    dtype=torch.complex128)
    batch = _split_oscillator(omega, 1.3 * omega, 0.2).advance(x, 7)
    for i in range(3):
        alone = _split_oscillator(omega[i:i + 1], 1.3 * omega[i:i + 1], 0.2)
        assert torch.equal(alone.advance(x[i:i + 1], 7), batch[i:i + 1])


@pytest.mark.parametrize("name", ["etdrk1", "etdrk2", "etdrk4", "strang"])
def test_dealias_mask_folded_into_the_stepper_equals_masking_the_output(name):
    """``make_stepper(dealias=mask)`` zeroes the coefficients that multiply N̂ outside the mask
    (the splitting masks its kick): the same numbers as a term whose output is masked."""
    g = torch.Generator().manual_seed(5)
    lin = -torch.rand((1, 2, 8, 5), generator=g, dtype=torch.float64) * 4
    x = torch.randn((3, 2, 8, 5), generator=g, dtype=torch.complex128)
    mask = torch.rand((8, 5), generator=g) < 0.6
    removed = ~mask

    def term(u):
        return 0.1 * u * u + 0.05

    folded = make_stepper(name, linear=lin, dt=0.2, nonlinear=term, dtype=torch.float64,
                          dealias=mask).advance(x, 4)
    masked = make_stepper(name, linear=lin, dt=0.2, dtype=torch.float64,
                          nonlinear=lambda u: term(u).masked_fill(removed, 0)).advance(x, 4)
    assert torch.equal(folded, masked)


def test_strang_evaluates_a_kick_invariant_term_once_per_step_with_the_same_result():
    """A term declaring ``kick_invariant`` (its output is zero in the channels it reads) is
    evaluated n + 1 times for n steps instead of 2n, and the trajectory is the same numbers."""
    omega = np.array([0.5, 1.0, 4.0])
    x = torch.randn((3, 2, 1, 1), generator=torch.Generator().manual_seed(4),
                    dtype=torch.complex128)
    calls = []

    def kick(u):                       # reads channel 0, writes channel 1 only
        calls.append(1)
        out = torch.zeros_like(u)
        out[:, 1] = -0.3 * u[:, 0]
        return out

    m = torch.zeros((3, 1, 1, 2, 2), dtype=torch.float64)
    m[..., 0, 1] = 1.0
    m[..., 1, 0] = -torch.as_tensor(omega**2)[:, None, None]
    plain = make_stepper("strang", linear=CoupledLinear(m), dt=0.1, nonlinear=kick,
                         dtype=torch.float64).advance(x, 7)
    assert len(calls) == 14
    kick.kick_invariant = True
    calls.clear()
    once = make_stepper("strang", linear=CoupledLinear(m), dt=0.1, nonlinear=kick,
                        dtype=torch.float64).advance(x, 7)
    assert len(calls) == 8
    assert torch.equal(once, plain)
