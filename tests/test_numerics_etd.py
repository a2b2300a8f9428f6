"""ETD integrators and φ-functions (noa_platform.numerics.etd)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noa_platform.numerics.etd import INTEGRATORS, make_stepper, phi_functions

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
    assert abs(measured - INTEGRATORS[name].order) <= 0.3, errs


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
