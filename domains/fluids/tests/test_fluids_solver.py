"""The fluids solver against mathematics written here, independently of the code: the
Taylor–Green vortex, inviscid conservation, incompressibility, an independent integrator
(scipy's DOP853 on a numpy right-hand side), the CFL rule and the refusals.

Grids are 16²–32² and horizons short; the whole file runs in seconds (slow tests marked)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from noa_fluids.domain import Fluids
from noa_fluids.invariants import energy, enstrophy
from noa_fluids.parameters import FORCING_HIGH, NU_HIGH, NU_LOW
from noa_fluids.solver import FluidsSolver, velocity

from noa_platform.api import Grid
from noa_platform.errors import ParameterError, SolverError

DOMAIN = Fluids()
SOLVER = DOMAIN.solver


def grid(n):
    return Grid((n, n), (2 * math.pi, 2 * math.pi))


def xy(n):
    c = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return c[:, None].expand(n, n), c[None, :].expand(n, n)      # y (rows), x (columns)


def theta(nu=0.05, alpha=0.0, forcing=0.0, k=2):
    return torch.tensor([[nu, alpha, forcing, float(k)]], dtype=torch.float64)


def grf(n, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return DOMAIN.initial_condition("gaussian-random-field").sample(1, grid(n), g).to(dtype)


# --------------------------------------------------------------------------------------------
# Exact solutions and conservation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, nu, alpha", [(1, 0.05, 0.0), (3, 0.02, 0.0), (2, 0.1, 0.15)])
def test_taylor_green_vortex_decays_exactly(k, nu, alpha):
    """ω = 2k sin(kx) sin(ky) (ψ = sin(kx) sin(ky)/k) is a steady Euler flow (ω ∝ ψ, so
    u·∇ω = 0); viscosity and drag damp it as exp(−(2νk² + α) t)."""
    n = 16
    y, x = xy(n)
    w0 = (2 * k * torch.sin(k * x) * torch.sin(k * y))[None, None]
    traj = SOLVER.rollout(w0, theta(nu, alpha), 4, grid=grid(n), frame_dt=1.0)
    for f in range(5):
        exact = w0[0, 0] * math.exp(-(2 * nu * k * k + alpha) * f)
        rel = float((traj[0, f, 0] - exact).norm() / exact.norm())
        assert rel <= 1e-10, (f, rel)        # measured <= 4.1e-14


def test_inviscid_flow_conserves_energy_and_enstrophy_at_a_small_step():
    """ν = α = F = 0: the 2/3-truncated Euler equations conserve E and Z exactly; over 100
    frames of 0.05 at internal steps of 0.005 the drift is the integrator's."""
    n = 16
    w0 = grf(n, seed=4)
    traj = SOLVER.rollout(w0, theta(0.0), 100, grid=grid(n), frame_dt=0.05, internal_dt=0.005)
    e, z = energy(traj, grid(n))[0], enstrophy(traj, grid(n))[0]
    assert float(((e - e[0]).abs() / e[0]).max()) <= 1e-8      # measured 1.3e-10
    assert float(((z - z[0]).abs() / z[0]).max()) <= 1e-8      # measured 2.8e-10
    assert float((traj[0, -1] - traj[0, 0]).norm() / traj[0, 0].norm()) > 0.1  # it did move


def test_velocity_is_divergence_free_and_gives_back_the_vorticity():
    n = 32
    w = grf(n, seed=2)[0, 0] + 0.3
    u, v = velocity(w, grid(n))
    kk = np.fft.fftfreq(n, d=1.0 / n)
    ky, kx = kk[:, None], kk[None, :]
    nyq = np.abs(kk) == n // 2
    dx = 1j * np.where(nyq[None, :], 0, kx)
    dy = 1j * np.where(nyq[:, None], 0, ky)
    uh, vh = np.fft.fft2(u.numpy()), np.fft.fft2(v.numpy())
    div = np.fft.ifft2(dx * uh + dy * vh).real
    curl = np.fft.ifft2(dx * vh - dy * uh).real
    assert np.abs(div).max() <= 1e-13                               # measured 7.4e-15
    assert np.abs(curl - (w.numpy() - w.numpy().mean())).max() <= 1e-12   # measured 8.5e-15


# --------------------------------------------------------------------------------------------
# An independent integrator of the same semi-discrete ODE
# --------------------------------------------------------------------------------------------


def numpy_rhs(n, nu, alpha, forcing, k_f):
    """dω/dt on an n² grid, written with numpy's complex FFT: 2/3 rule (|m| <= n/3 per axis)
    on the transport term's input and output, ν Δω − α ω on every mode, f = −F cos(k_f y)."""
    m = np.fft.fftfreq(n, d=1.0 / n)
    ky, kx = m[:, None], m[None, :]
    k2 = kx**2 + ky**2
    keep = (np.abs(ky) <= n / 3) & (np.abs(kx) <= n / 3)
    inv = np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
    y = np.arange(n)[:, None] * (2 * np.pi / n)
    f = -forcing * np.cos(k_f * y) * np.ones((1, n))

    def rhs(_t, w_flat):
        wh = np.fft.fft2(w_flat.reshape(n, n))
        wk = wh * keep
        psi = wk * inv
        u = np.fft.ifft2(1j * ky * psi).real
        v = np.fft.ifft2(-1j * kx * psi).real
        wx = np.fft.ifft2(1j * kx * wk).real
        wy = np.fft.ifft2(1j * ky * wk).real
        adv = np.fft.fft2(f - (u * wx + v * wy)) * keep
        return np.fft.ifft2(-(nu * k2 + alpha) * wh + adv).real.ravel()

    return rhs


def test_agrees_with_solve_ivp_dop853():
    from scipy.integrate import solve_ivp

    n = 16
    row = (0.03, 0.1, 2.0, 2)
    w0 = grf(n, seed=7)
    t_end = 2.0
    sol = solve_ivp(numpy_rhs(n, *row), (0.0, t_end), w0[0, 0].numpy().ravel(),
                    method="DOP853", rtol=1e-12, atol=1e-12)
    ref = torch.from_numpy(sol.y[:, -1].reshape(n, n))
    th = theta(*row)

    def rel(out):
        return float((out[0, -1, 0] - ref).norm() / ref.norm())

    default = rel(SOLVER.rollout(w0, th, 2, grid=grid(n), frame_dt=1.0))
    fine = rel(SOLVER.rollout(w0, th, 2, grid=grid(n), frame_dt=1.0, internal_dt=0.002))
    assert default <= 1e-5       # measured 5.5e-6 (the CFL-planned step, from a raw GRF)
    assert fine <= 2e-10         # measured 1.0e-10 (fourth order: 4.0e-9 at dt = 0.005)


# --------------------------------------------------------------------------------------------
# The step: CFL of the current state, per sample
# --------------------------------------------------------------------------------------------


def independent_limit(w, n):
    """1.25 / (k_c (max|u| + max|v|) + max|ω|), k_c = floor(n/3), u and v by numpy."""
    m = np.fft.fftfreq(n, d=1.0 / n)
    ky, kx = m[:, None], m[None, :]
    k2 = kx**2 + ky**2
    psi = np.fft.fft2(w) * np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
    u = np.fft.ifft2(1j * ky * psi).real
    v = np.fft.ifft2(-1j * kx * psi).real
    rate = (n // 3) * (np.abs(u).max() + np.abs(v).max()) + np.abs(w).max()
    return 1.25 / rate


def test_the_courant_number_stays_inside_the_stability_margin():
    from noa_platform.numerics.stability import STABILITY_MARGIN

    assert SOLVER.courant == 1.25 <= STABILITY_MARGIN["etdrk4"]
    assert FluidsSolver("etdrk2").courant == STABILITY_MARGIN["etdrk2"]


def test_each_frame_respects_the_cfl_limit_of_its_own_state(monkeypatch):
    from noa_platform.testing import record_stepper_steps

    built = record_stepper_steps(monkeypatch)
    n = 16
    w0 = 6.0 * grf(n, seed=1)                   # RMS speed 6: the CFL limit binds
    traj = SOLVER.rollout(w0, theta(0.05, 0.2), 3, grid=grid(n), frame_dt=1.0)
    assert len(built) == 3                       # one plan per frame (one sample)
    for f, dt in enumerate(built):
        limit = independent_limit(traj[0, f, 0].numpy(), n)
        assert dt <= 0.7 * limit * (1 + 1e-9), (f, dt, limit)
        assert dt <= 0.25
    assert built[0] < built[-1]                  # drag slows the flow: fewer steps later


def test_an_extreme_state_is_refused_in_one_line_never_stored():
    w0 = 1e7 * grf(16, seed=3)
    with pytest.raises(SolverError, match=r"^fluids: frame 1 needs \d+ internal steps") as info:
        SOLVER.rollout(w0, theta(0.05), 2, grid=grid(16), frame_dt=1.0)
    assert "\n" not in str(info.value)


def test_a_sample_does_not_depend_on_its_batch_mates_even_when_their_steps_differ():
    n = 16
    u0 = torch.cat([grf(n, 1), 5.0 * grf(n, 2), 0.2 * grf(n, 3)]).to(torch.float32)
    th = torch.tensor([[0.05, 0.1, 2.0, 2], [0.02, 0.0, 4.0, 3], [0.1, 0.2, 0.0, 4]],
                      dtype=torch.float64)
    batch = SOLVER.rollout(u0, th, 3, grid=grid(n), frame_dt=1.0)
    for i in range(3):
        alone = SOLVER.rollout(u0[i:i + 1], th[i:i + 1], 3, grid=grid(n), frame_dt=1.0)
        assert torch.equal(alone[0], batch[i]), i


# --------------------------------------------------------------------------------------------
# Refusals (hypothesis draws the bad inputs)
# --------------------------------------------------------------------------------------------

U0 = grf(16, seed=0)


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.floats(min_value=1e-12, max_value=NU_LOW * (1 - 1e-6)),
                 st.floats(min_value=NU_HIGH * (1 + 1e-6), max_value=1e6),
                 st.floats(max_value=-1e-12, min_value=-1e6)))
def test_refuses_viscosity_outside_its_range_naming_it(nu):
    with pytest.raises(ParameterError, match="'nu'"):
        SOLVER.rollout(U0, theta(nu), 1, grid=grid(16), frame_dt=1.0)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(1, "alpha"), (2, "forcing"), (3, "forcing_k")]),
       st.one_of(st.floats(max_value=-1e-9, min_value=-1e3),
                 st.floats(min_value=FORCING_HIGH + 1e-3, max_value=1e3),
                 st.just(math.nan), st.just(math.inf)))
def test_refuses_other_parameters_outside_their_range_naming_them(column, value):
    j, name = column
    row = theta(0.05, 0.1, 1.0, 3)
    row[0, j] = value
    with pytest.raises(ParameterError, match=f"'{name}'"):
        SOLVER.rollout(U0, row, 1, grid=grid(16), frame_dt=1.0)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([math.nan, math.inf, -math.inf]), st.integers(0, 15),
       st.integers(0, 15))
def test_refuses_a_non_finite_initial_vorticity(bad, i, j):
    w = U0.clone()
    w[0, 0, i, j] = bad
    with pytest.raises(SolverError, match="not finite"):
        SOLVER.rollout(w, theta(), 1, grid=grid(16), frame_dt=1.0)


def test_refuses_wrong_shapes_and_frame_intervals():
    with pytest.raises(SolverError, match=r"\[B, 1, H, W\]"):
        SOLVER.rollout(torch.zeros(1, 2, 16, 16), theta(), 1, grid=grid(16), frame_dt=1.0)
    with pytest.raises(SolverError, match="frame_dt"):
        SOLVER.rollout(U0, theta(), 1, grid=grid(16), frame_dt=0.0)
    with pytest.raises(SolverError, match="periodic"):
        SOLVER.rollout(U0, theta(), 1, grid=Grid((16, 16), (1.0, 1.0), periodic=False),
                       frame_dt=1.0)
    with pytest.raises(SolverError, match="unknown integrator"):
        FluidsSolver("rk45")


# --------------------------------------------------------------------------------------------
# Statistically steady forced flow
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_forced_flow_reaches_a_statistically_steady_state_within_the_standard_horizon():
    """Burn-in plus stored frames of the standard preset (30 + 64 frames), at 32² in the part
    of the box the quick grid resolves: the energy's means over the third and the last quarter
    agree to 10 %, at a level the forcing sustains (without it the flow would have lost most
    of its energy to drag and viscosity over this horizon)."""
    std = DOMAIN.presets["standard"]["generation"]
    horizon = std["burn_in_frames"] + std["n_frames"]
    n = 32
    th = torch.tensor([[0.05, 0.05, 2.0, 2], [0.05, 0.15, 2.0, 3], [0.07, 0.1, 2.0, 2]],
                      dtype=torch.float64)
    u0 = torch.cat([DOMAIN.initial_condition("multiscale").sample(
        1, grid(n), torch.Generator().manual_seed(s)) for s in range(3)]).to(torch.float32)
    traj = SOLVER.rollout(u0, th, horizon, grid=grid(n), frame_dt=DOMAIN.frame_dt)
    e = energy(traj, grid(n))
    q = horizon // 4
    third, last = e[:, 2 * q:3 * q].mean(1), e[:, 3 * q:].mean(1)
    assert float(((third - last).abs() / last).max()) <= 0.1, (third, last)
    assert float(last.min()) >= 0.05
