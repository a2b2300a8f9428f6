"""The waves CNO against mathematics written here, independently of the solver: exact standing
waves (undamped and damped), energy conservation and the damping law, an independent integrator
(scipy's DOP853 on the same semi-discrete system), order, stability at the step limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from noa_waves import Waves
from noa_waves.invariants import energy
from noa_waves.solver import WaveSolver, max_wavenumber
from noa_waves.speed import speed_fields

from noa_platform.api import Grid
from noa_platform.errors import SolverError
from noa_platform.numerics.etd import make_stepper

G16 = Grid((16, 16), (1.0, 1.0))
G32 = Grid((32, 32), (1.0, 1.0))


def _xy(grid):
    h, w = grid.shape
    y = torch.arange(h, dtype=torch.float64)[:, None] / h * grid.extent[0]
    x = torch.arange(w, dtype=torch.float64)[None, :] / w * grid.extent[1]
    return y, x


def _theta(c=1.0, a=0.0, ell=0.2, gamma=0.0):
    return np.array([[c, a, ell, gamma]])


def _relative(a, b):
    return float((a - b).norm() / b.norm())


# -- exact solutions (uniform medium) -------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, 0.6, 1.0])
def test_standing_wave_matches_the_exact_solution(gamma):
    """u = T(t) sin(2π(x + 2y)), u_t(0) = 0, in a uniform medium: T'' = −c²k² T − γ T',
    T(0) = 1, T'(0) = 0, so T = e^{−γt/2} (cos Ωt + γ/(2Ω) sin Ωt), Ω² = c²k² − γ²/4
    (every γ of the box is far below critical damping 2ck ≈ 22)."""
    c, n_frames, frame_dt = 0.8, 20, 0.05
    y, x = _xy(G32)
    shape = torch.sin(2 * math.pi * (x + 2 * y))
    k = 2 * math.pi * math.sqrt(5)
    u0 = torch.stack([shape, torch.zeros_like(shape)])[None]
    out = WaveSolver().rollout(u0, _theta(c=c, gamma=gamma), n_frames, grid=G32,
                               frame_dt=frame_dt)
    t = np.arange(n_frames + 1) * frame_dt
    om = math.sqrt((c * k) ** 2 - gamma**2 / 4)
    e = np.exp(-gamma / 2 * t)
    amp = e * (np.cos(om * t) + gamma / (2 * om) * np.sin(om * t))
    rate = -e * (om + gamma**2 / (4 * om)) * np.sin(om * t)
    exact = torch.stack([torch.as_tensor(amp)[:, None, None] * shape,
                         torch.as_tensor(rate)[:, None, None] * shape], dim=1)
    assert _relative(out[0, :, 0], exact[:, 0]) <= 1e-10
    assert _relative(out[0, :, 1], exact[:, 1]) <= 1e-10


def test_uniform_medium_takes_one_exact_step_per_frame_and_keeps_energy_to_rounding():
    solver = WaveSolver()
    assert solver.plan(_theta(a=0.0)[0], G32, 0.05) == (1, 0.05)
    assert solver.plan(_theta(a=0.2)[0], G32, 0.05)[0] > 1
    u0 = Waves().initial_condition("gaussian-pulse").sample(1, G32, torch.Generator().manual_seed(4))
    out = solver.rollout(u0, _theta(c=0.9, a=0.0), 200, grid=G32, frame_dt=0.05)
    e = energy(out, G32, torch.as_tensor(_theta(c=0.9)))[0]
    assert float((e / e[0] - 1).abs().max()) < 1e-12


# -- energy: conservation and the damping law ------------------------------------------------


def _plane_wave(grid, c=1.0):
    y, x = _xy(grid)
    k = 2 * math.pi * math.sqrt(2)
    arg = 2 * math.pi * (y + x)
    return torch.stack([torch.cos(arg), c * k * torch.sin(arg)])[None]


def _energy_series(integrator, theta, dt, steps, seed=3):
    u0 = _plane_wave(G16)
    out = WaveSolver(integrator=integrator).rollout(
        u0, theta, steps, grid=G16, frame_dt=dt, internal_dt=dt, seeds=torch.tensor([seed]))
    e = energy(out, G16, torch.as_tensor(theta), seeds=[seed])[0].numpy()
    return out, e


def test_heterogeneous_undamped_energy_oscillates_without_trend():
    """1000 strang steps (dt ρ = 0.16; the wave crosses the domain twice) in a heterogeneous
    medium: |E/E0 − 1| <= 1e-6 throughout (measured 6.1e-7), and a straight line fitted to it
    moves by < 5 % of that band over the run (measured 0.9 %). The same statistic sees the
    trend of a non-symplectic scheme (ETDRK2: 17 % of the band, 35 % of its own oscillation)."""
    theta, dt = _theta(c=1.0, a=0.1, ell=0.3), 2e-3
    _, e = _energy_series("strang", theta, dt, 1000)
    rel = e / e[0] - 1
    t = np.arange(len(e)) * dt
    assert np.abs(rel).max() <= 1e-6
    trend = abs(np.polyfit(t, rel, 1)[0]) * t[-1]
    assert trend < 0.05e-6
    _, e2 = _energy_series("etdrk2", theta, dt, 1000)
    assert abs(np.polyfit(t, e2 / e2[0] - 1, 1)[0]) * t[-1] > 0.1e-6


def test_damped_energy_decays_at_the_rate_the_equation_predicts():
    """dE/dt = −γ Σ u_t² dA: E(T) − E(0) + γ ∫ Σ u_t² dA dt = 0 (Simpson over the 1001 stored
    steps) to 1e-5 of E(0), while E itself falls by half."""
    from scipy.integrate import simpson

    gamma, dt = 0.7, 1e-3
    theta = _theta(c=0.8, a=0.3, ell=0.2, gamma=gamma)
    y, x = _xy(G16)
    pulse = torch.exp(-((y - 0.5) ** 2 + (x - 0.4) ** 2) / (2 * 0.12**2))
    u0 = torch.stack([pulse, torch.zeros_like(pulse)])[None]
    out = WaveSolver().rollout(u0, theta, 1000, grid=G16, frame_dt=dt, internal_dt=dt,
                               seeds=torch.tensor([3]))
    e = energy(out, G16, torch.as_tensor(theta), seeds=[3])[0].numpy()
    dissipation = (out[0, :, 1] ** 2).sum(dim=(-2, -1)).numpy() * (1 / 16) ** 2
    lost = gamma * simpson(dissipation, dx=dt)
    assert (e[0] - e[-1]) / e[0] > 0.4
    assert abs(e[-1] - e[0] + lost) / e[0] < 1e-5


# -- an independent integrator ------------------------------------------------------------


def _semi_discrete_rhs(grid, speed, cbar, gamma):
    """The semi-discrete system written again with numpy: u_t = v,
    v_t = c̄² Δu + ∂y(q ∂y u) + ∂x(q ∂x u) − γ v, q = c² − c̄², spectral derivatives (full FFT,
    first derivatives without the Nyquist mode)."""
    h, w = grid.shape
    ky = 2 * np.pi * np.fft.fftfreq(h, d=grid.extent[0] / h)[:, None]
    kx = 2 * np.pi * np.fft.fftfreq(w, d=grid.extent[1] / w)[None, :]
    lap = -(ky**2 + kx**2)
    dy = 1j * np.where(np.arange(h)[:, None] == h // 2, 0.0, ky)
    dx = 1j * np.where(np.arange(w)[None, :] == w // 2, 0.0, kx)
    q = speed**2 - cbar**2

    def rhs(_t, state):
        u, v = state[: h * w].reshape(h, w), state[h * w:].reshape(h, w)
        uh = np.fft.fft2(u)
        fy = np.fft.fft2(q * np.fft.ifft2(dy * uh).real)
        fx = np.fft.fft2(q * np.fft.ifft2(dx * uh).real)
        acc = np.fft.ifft2(cbar**2 * lap * uh + dy * fy + dx * fx).real - gamma * v
        return np.concatenate([v.ravel(), acc.ravel()])

    return rhs


@pytest.fixture(scope="module")
def dop853_reference():
    from scipy.integrate import solve_ivp

    theta = _theta(c=0.9, a=0.35, ell=0.15, gamma=0.3)
    seed = 11
    u0 = Waves().initial_condition("random-field").sample(1, G16, torch.Generator().manual_seed(2))
    speed = speed_fields(theta, G16, [seed])[0].numpy()
    rhs = _semi_discrete_rhs(G16, speed, 0.9, 0.3)
    t_end = 0.1
    sol = solve_ivp(rhs, (0, t_end), u0[0].reshape(-1).numpy(), method="DOP853", rtol=1e-13,
                    atol=1e-13 * float(u0.abs().max()) * 50)
    ref = torch.as_tensor(sol.y[:, -1]).reshape(2, *G16.shape)
    return theta, seed, u0, t_end, ref


def test_agrees_with_dop853_on_the_same_semi_discrete_system_at_second_order(dop853_reference):
    """Strang against DOP853 (rtol 1e-13) after t = 0.1 in a strongly heterogeneous, damped
    medium. Measured: order 2.00 over dt ρ = 0.54 .. 0.067, error 3.9e-5 at dt ρ = 0.067 and
    7.7e-4 at the default step (dt ρ = 0.3); Richardson-extrapolating two runs (Strang is
    symmetric: its error has only even powers of dt) leaves 8.7e-10 — the two integrators solve
    the same semi-discrete system."""
    theta, seed, u0, t_end, ref = dop853_reference
    solver = WaveSolver()
    rho = float(solver.frequency_bound(theta, G16)[0])
    runs, errs, dts = {}, [], []
    for n in (16, 32, 64, 128, 256):
        dt = t_end / n
        runs[n] = solver.rollout(u0, theta, 1, grid=G16, frame_dt=t_end, internal_dt=dt,
                                 seeds=torch.tensor([seed]))[0, 1]
        errs.append(_relative(runs[n], ref))
        dts.append(dt)
    order = np.polyfit(np.log(dts[:4]), np.log(errs[:4]), 1)[0]
    assert abs(order - 2.0) < 0.05, errs
    assert errs[3] < 5e-5 and 0.06 < dts[3] * rho < 0.07
    assert _relative((4 * runs[256] - runs[128]) / 3, ref) < 2e-9
    default = solver.rollout(u0, theta, 1, grid=G16, frame_dt=t_end, seeds=torch.tensor([seed]))
    assert _relative(default[0, 1], ref) < 1e-3


def test_uniform_medium_agrees_with_dop853_to_its_tolerance():
    """No heterogeneity: the step is the exact flow, so the agreement is DOP853's own."""
    from scipy.integrate import solve_ivp

    theta = _theta(c=0.7, a=0.0, gamma=0.4)
    u0 = Waves().initial_condition("random-field").sample(1, G16, torch.Generator().manual_seed(5))
    rhs = _semi_discrete_rhs(G16, np.full(G16.shape, 0.7), 0.7, 0.4)
    sol = solve_ivp(rhs, (0, 0.15), u0[0].reshape(-1).numpy(), method="DOP853", rtol=1e-13,
                    atol=1e-13 * float(u0.abs().max()) * 50)
    ref = torch.as_tensor(sol.y[:, -1]).reshape(2, *G16.shape)
    out = WaveSolver().rollout(u0, theta, 3, grid=G16, frame_dt=0.05)
    assert _relative(out[0, -1], ref) < 3e-11                   # measured 1.5e-11


# -- the step -------------------------------------------------------------------------------


def _one_step_radius(theta, dt, seed=3, grid=G16):
    """Spectral radius of the linear map of one strang step, built column by column."""
    solver = WaveSolver()
    lin = solver.linear_part(theta, grid)
    term = solver.nonlinear_term(theta, grid, torch.float64, torch.device("cpu"), seeds=[seed])
    stepper = make_stepper("strang", linear=lin, dt=dt, nonlinear=term, dtype=torch.float64)
    n = 2 * grid.shape[0] * grid.shape[1]
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 2, *grid.shape)
    m = torch.fft.irfft2(stepper.step(torch.fft.rfft2(basis)), s=grid.shape).reshape(n, n).T
    return float(np.abs(np.linalg.eigvals(m.numpy())).max())


def test_the_step_limit_is_stable_for_the_most_heterogeneous_medium():
    """At dt ρ = 1.5 (the limit) the one-step matrix of the roughest medium of the box has no
    eigenvalue outside the unit circle (to the 1e-8 an eigensolver resolves for this
    non-normal 512×512 matrix); near the flow's resonance dt c̄ |k|_max = π it has."""
    theta = _theta(c=1.0, a=0.4, ell=0.1)
    solver = WaveSolver()
    limit = solver.plan(theta[0], G16, 1.0)[1]
    assert limit <= 1.5 / float(solver.frequency_bound(theta, G16)[0])
    assert _one_step_radius(theta, limit) <= 1 + 1e-8
    resonant = (math.pi - 0.05) / (1.0 * max_wavenumber(G16))
    assert _one_step_radius(theta, resonant) > 1 + 1e-4


def test_internal_dt_above_the_limit_is_refused_by_one_clear_line():
    theta = _theta(c=1.0, a=0.4, ell=0.1)
    u0 = torch.zeros((1, 2, 16, 16), dtype=torch.float64)
    rho = float(WaveSolver().frequency_bound(theta, G16)[0])
    with pytest.raises(SolverError, match="exceeds the waves stability limit"):
        WaveSolver().rollout(u0, theta, 1, grid=G16, frame_dt=0.05, internal_dt=1.6 / rho)
    with pytest.raises(SolverError, match="depends on the grid"):
        WaveSolver().steps_per_frame(theta[0], 0.05)


def test_the_medium_comes_from_the_seed():
    """Heterogeneous: another seed is another medium (another trajectory), the same seed the
    same bits; uniform: the seed changes nothing."""
    u0 = Waves().initial_condition("plane-waves").sample(1, G16, torch.Generator().manual_seed(1))
    solver = WaveSolver()

    def run(theta, seed):
        return solver.rollout(u0, theta, 2, grid=G16, frame_dt=0.05, seeds=torch.tensor([seed]))

    het, uni = _theta(a=0.3), _theta(a=0.0)
    assert torch.equal(run(het, 5), run(het, 5))
    assert not torch.allclose(run(het, 5), run(het, 6))
    assert torch.equal(run(uni, 5), run(uni, 6))
    # No seeds: the reference medium (seed 0), which the energy invariant also uses.
    none = solver.rollout(u0, het, 2, grid=G16, frame_dt=0.05)
    assert torch.equal(none, run(het, 0))
