"""The spectral solver template (noa_platform.numerics.template) on made-up equations with exact
solutions: per-channel diffusion (diagonal linear part) and the damped wave system (a linear
part coupling (u, u_t) per wavenumber), plus the template's own duties (plan, noise, refusals).

Grids are 8²–16²; the whole file runs in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from noa_platform.api import Grid, LinearParameter, ParameterSpace
from noa_platform.errors import SolverError
from noa_platform.numerics.etd import CoupledLinear, matrix_phi_functions
from noa_platform.numerics.nonlinear import pointwise
from noa_platform.numerics.spectral import laplacian_symbol
from noa_platform.numerics.template import SpectralSolver
from noa_platform.testing import record_stepper_steps

GRID = Grid((16, 16), (2 * math.pi, 2 * math.pi))


class Diffusion(SpectralSolver):
    """``u_t = D_u Δu``, ``v_t = D_v Δv``: θ = (D_u, D_v)."""

    name = "test-diffusion"
    channels = 2
    parameter_space = ParameterSpace([LinearParameter("Du", "", low=0.0, high=1.0),
                                      LinearParameter("Dv", "", low=0.0, high=1.0)])

    def linear_part(self, theta, grid):
        return torch.as_tensor(theta)[:, :, None, None] * laplacian_symbol(grid)

    def nonlinear_term(self, theta, grid, dtype, device):
        return torch.zeros_like

    def rate_bound(self, theta):
        return np.full(len(theta), 1e-3)

    def default_dt(self, theta):
        return np.full(len(theta), 10.0)


class Wave(SpectralSolver):
    """``u_tt = c² Δu − γ u_t + N``: state (u, u_t), θ = (c, γ), linear part
    ``[[0, 1], [−c²|k|², −γ]]`` per wavenumber; ``N = −β u³`` with ``beta``."""

    name = "test-wave"
    channels = 2
    parameter_space = ParameterSpace([LinearParameter("c", "", low=0.1, high=2.0),
                                      LinearParameter("gamma", "", low=0.0, high=4.0)])

    def __init__(self, integrator="etdrk4", beta=0.0, dealiasing="none"):
        self.dealiasing = dealiasing
        super().__init__(integrator)
        self.beta = beta

    def linear_part(self, theta, grid):
        lap = laplacian_symbol(grid)
        c, gamma = (torch.as_tensor(theta[:, i])[:, None, None] for i in (0, 1))
        m = torch.zeros((len(theta), *lap.shape, 2, 2), dtype=torch.float64)
        m[..., 0, 1] = 1.0
        m[..., 1, 0] = c * c * lap
        m[..., 1, 1] = -gamma.expand(-1, *lap.shape)
        return CoupledLinear(m)

    def nonlinear_term(self, theta, grid, dtype, device):
        beta = self.beta

        def cubic(x):
            return torch.stack([torch.zeros_like(x[:, 0]), -beta * x[:, 0] ** 3], dim=1)

        return pointwise(cubic, grid)

    def rate_bound(self, theta):
        return np.full(len(theta), 3.0 * abs(self.beta) + 1e-3)

    def default_dt(self, theta):
        return np.full(len(theta), 0.05)


def _xy(grid):
    h, w = grid.shape
    y = torch.arange(h, dtype=torch.float64)[:, None] * grid.spacing[0]
    x = torch.arange(w, dtype=torch.float64)[None, :] * grid.spacing[1]
    return y.expand(h, w), x.expand(h, w)


def rel(a, b):
    return float((a - b).norm() / b.norm())


# --------------------------------------------------------------------------------------------
# Exact solutions
# --------------------------------------------------------------------------------------------


def test_diffusion_decays_each_fourier_mode_exactly():
    y, x = _xy(GRID)
    u0 = torch.stack([torch.sin(3 * x) + torch.cos(2 * y), torch.cos(x + 4 * y)])[None]
    th = torch.tensor([[0.3, 0.05]], dtype=torch.float64)
    frame_dt, n_frames = 0.7, 3
    traj = Diffusion().rollout(u0, th, n_frames, grid=GRID, frame_dt=frame_dt)
    for f in range(1, n_frames + 1):
        t = f * frame_dt
        exact = torch.stack([math.exp(-0.3 * 9 * t) * torch.sin(3 * x)
                             + math.exp(-0.3 * 4 * t) * torch.cos(2 * y),
                             math.exp(-0.05 * 17 * t) * torch.cos(x + 4 * y)])
        # measured <= 3.5e-15
        assert rel(traj[0, f], exact) <= 1e-14


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_standing_wave_matches_the_closed_form(gamma):
    """``u = e^{−γt/2} (cos Ωt + γ/(2Ω) sin Ωt) sin(kx)``, ``Ω = √(c²k² − γ²/4)``; with γ = 0
    the mean mode is a Jordan block (mean of u grows as t · mean of u_t), also checked."""
    c, k = 1.3, 3
    y, x = _xy(GRID)
    u0 = torch.stack([torch.sin(k * x) + 0.5, torch.full_like(x + y, 0.2)])[None]
    frame_dt, n_frames = 0.4, 5
    traj = Wave().rollout(u0, torch.tensor([[c, gamma]], dtype=torch.float64), n_frames, grid=GRID,
                          frame_dt=frame_dt)
    omega = math.sqrt(c * c * k * k - gamma * gamma / 4)
    for f in range(1, n_frames + 1):
        t = f * frame_dt
        decay = math.exp(-gamma * t / 2)
        amp = decay * (math.cos(omega * t) + gamma / (2 * omega) * math.sin(omega * t))
        # d/dt of amp: −(γ²/4 + Ω²)/Ω · e^{−γt/2} sin Ωt = −c²k²/Ω e^{−γt/2} sin Ωt
        amp_t = -decay * (c * c * k * k / omega) * math.sin(omega * t)
        if gamma == 0:
            mean_u, mean_ut = 0.5 + 0.2 * t, 0.2
        else:
            mean_u, mean_ut = 0.5 + 0.2 * (1 - math.exp(-gamma * t)) / gamma, 0.2 * math.exp(
                -gamma * t)
        exact = torch.stack([amp * torch.sin(k * x) + mean_u,
                             amp_t * torch.sin(k * x) + mean_ut + 0 * y])
        # measured <= 7.7e-14 (8 coupled steps per frame, 40 in all)
        assert rel(traj[0, f], exact) <= 2e-13, f


def test_critically_damped_mode_is_exact():
    """γ = 2ck makes mode k a Jordan block (no eigenbasis): u = (1 + ckt) e^{−ckt} sin(kx)."""
    c, k = 0.5, 2
    gamma = 2 * c * k
    y, x = _xy(GRID)
    u0 = torch.stack([torch.sin(k * y), torch.zeros_like(x + y)])[None]
    traj = Wave().rollout(u0, torch.tensor([[c, gamma]], dtype=torch.float64), 4, grid=GRID, frame_dt=0.5)
    for f in range(1, 5):
        t = 0.5 * f
        a = c * k
        exact = torch.stack([(1 + a * t) * math.exp(-a * t) * torch.sin(k * y),
                             -a * a * t * math.exp(-a * t) * torch.sin(k * y) + 0 * x])
        # measured <= 7.4e-15
        assert rel(traj[0, f], exact) <= 3e-14


def test_matrix_phi_functions_match_scipy_expm_and_their_recursion():
    """Random matrices of several scales and the wave matrices dt·[[0, 1], [−ω², −γ]] that the
    solver meets: undamped (ω = 30), critical (Jordan block), the k = 0 Jordan block, stiff
    damping. φ_0 against scipy's expm; φ_1..φ_3 through ``φ_k(A) A = φ_{k−1}(A) − I/(k−1)!``.
    Measured <= 1.3e-14 relative to max(1, |φ|) (the undamped ω = 30 matrix, whose
    eigenvectors are ill-conditioned; 2e-15 for the others)."""
    from scipy.linalg import expm

    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(2, 2)) * scale for scale in (1e-6, 0.5, 1.5, 3.0)]
    mats += [0.1 * np.array([[0.0, 1.0], [-omega**2, -gamma]])
             for omega, gamma in [(30.0, 0.0), (5.0, 10.0), (0.0, 0.0), (0.0, 300.0)]]
    eye = np.eye(2)
    for a in mats:
        phis = [p.numpy() for p in matrix_phi_functions(torch.tensor(a), 3)]
        scale = max(1.0, np.abs(phis[0]).max())
        assert np.abs(phis[0] - expm(a)).max() <= 3e-14 * scale
        for k, factorial in [(1, 1.0), (2, 1.0), (3, 2.0)]:
            residual = phis[k] @ a - (phis[k - 1] - eye / factorial)
            assert np.abs(residual).max() <= 3e-14 * scale, (a, k)
    zero = matrix_phi_functions(torch.zeros(2, 2, dtype=torch.float64), 3)
    assert torch.equal(zero[3], torch.eye(2, dtype=torch.complex128) / 6)


def _wave_rhs(grid, c, gamma, beta):
    h, w = grid.shape
    k2 = (np.fft.fftfreq(h, d=grid.spacing[0] / (2 * np.pi))[:, None] ** 2
          + np.fft.rfftfreq(w, d=grid.spacing[1] / (2 * np.pi))[None, :] ** 2)

    def rhs(_t, z):
        u, ut = z.reshape(2, h, w)
        lap_u = np.fft.irfft2(-k2 * np.fft.rfft2(u), s=(h, w))
        return np.concatenate([ut, c * c * lap_u - gamma * ut - beta * u**3]).ravel()

    return rhs


def test_coupled_etdrk4_with_a_nonlinear_term_converges_at_fourth_order():
    """Damped cubic Klein–Gordon-like wave on 8², against DOP853 on an independently written
    right-hand side: error and measured order (asymptotic 4; measured 4.06)."""
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    c, gamma, beta = 1.0, 0.2, 0.5
    y, x = _xy(grid)
    u0 = torch.stack([torch.sin(x) * torch.cos(y) + 0.3 * torch.cos(2 * x), 0.1 * torch.sin(y)
                      + 0 * x])[None]
    t_end = 2.0
    sol = solve_ivp(_wave_rhs(grid, c, gamma, beta), (0, t_end), u0[0].numpy().ravel(),
                    method="DOP853", rtol=1e-13, atol=1e-15)
    ref = torch.from_numpy(sol.y[:, -1].reshape(2, 8, 8))
    steps = [10, 20, 40]
    errs = [rel(Wave(beta=beta).rollout(u0, torch.tensor([[c, gamma]], dtype=torch.float64), 1, grid=grid,
                                        frame_dt=t_end, internal_dt=t_end / n)[0, 1], ref)
            for n in steps]
    order = np.polyfit(np.log(steps), -np.log(errs), 1)[0]
    assert 3.8 <= order <= 4.2, errs
    assert errs[-1] <= 1.5e-7, errs      # measured 8.3e-8 at dt = 0.05


# --------------------------------------------------------------------------------------------
# The template's duties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_coupled_sample_is_bit_identical_alone_and_in_a_batch_with_noise(dtype):
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    g = torch.Generator().manual_seed(0)
    u0 = torch.randn((4, 2, 8, 8), generator=g, dtype=torch.float64).to(dtype)
    th = torch.tensor([[1.0, 0.1], [0.5, 0.0], [1.0, 0.1], [1.7, 2.0]], dtype=torch.float64)
    solver = Wave(beta=0.2)
    kw = {"grid": grid, "frame_dt": 0.3, "noise_amplitude": 0.01}
    batch = solver.rollout(u0, th, 3, seeds=torch.tensor([7, 8, 9, 10]), **kw)
    for i in range(4):
        alone = solver.rollout(u0[i:i + 1], th[i:i + 1], 3, seeds=torch.tensor([7 + i]), **kw)
        assert torch.equal(alone[0], batch[i]), i


def test_step_plan_is_per_sample_and_respects_the_stability_limit():
    solver = Wave(beta=1.0)                 # ρ = 3.001, ETDRK4 limit 2.5/3.001 = 0.833
    row = np.array([1.0, 0.0])
    assert solver.steps_per_frame(row, 1.0) == (20, 0.05)     # accuracy default 0.05
    assert solver.steps_per_frame(row, 1.0, internal_dt=0.8) == (2, 0.5)
    with pytest.raises(SolverError, match="test-wave stability limit"):
        solver.steps_per_frame(row, 1.0, internal_dt=0.9)
    with pytest.raises(SolverError, match="internal steps"):
        solver.steps_per_frame(row, 1e5)
    # The low-order integrators get the complex-eigenvalue-safe margins.
    assert Wave("etdrk2", beta=1.0).stability_limit(row) == pytest.approx(0.40 / 3.001)


def test_blow_up_is_reported_not_stored():
    """``u_tt = +u³`` blows up in finite time: a SolverError naming solver, frame and θ."""
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    u0 = torch.full((1, 2, 8, 8), 3.0, dtype=torch.float64)
    with pytest.raises(SolverError, match=r"test-wave: the solution became non-finite in "
                                          r"frame \d+ \(θ = \[1.0, 0.0\]\)"):
        Wave(beta=-1.0).rollout(u0, torch.tensor([[1.0, 0.0]], dtype=torch.float64), 20, grid=grid, frame_dt=1.0,
                                internal_dt=0.05)


def test_two_thirds_dealiasing_removes_the_aliased_modes():
    """On 8², u = cos(2x) has u² ∋ cos(4x): the Nyquist mode, which the 2/3 rule removes (and
    the input mode 2 <= 8/3 is kept), so with dealiasing N̂ holds only the mean of u²."""
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    _, x = _xy(grid)
    u = torch.stack([torch.cos(2 * x).expand(8, 8), torch.zeros(8, 8, dtype=torch.float64)])

    class Square(Wave):
        def nonlinear_term(self, theta, grid, dtype, device):
            return pointwise(lambda f: f * f, grid)

    from noa_platform.numerics.nonlinear import dealiased
    from noa_platform.numerics.spectral import dealiasing_mask

    raw = Square().nonlinear_term(None, grid, torch.float64, "cpu")
    term = dealiased(raw, dealiasing_mask(grid, "2/3"))
    n_hat = term(torch.fft.rfft2(u[None]))[0, 0]
    expected = torch.zeros_like(n_hat)
    expected[0, 0] = 0.5 * 64
    assert torch.allclose(n_hat, expected, atol=1e-13)
    assert not torch.allclose(raw(torch.fft.rfft2(u[None]))[0, 0], expected, atol=1e-3)
    with pytest.raises(SolverError, match="dealiasing rule"):
        Square(dealiasing="1/2")


def test_refusals_name_what_was_wrong():
    solver = Diffusion()
    u0 = torch.zeros((1, 2, 16, 16))
    th = torch.tensor([[0.1, 0.1]], dtype=torch.float64)
    with pytest.raises(SolverError, match="periodic"):
        solver.rollout(u0, th, 1, grid=Grid((16, 16), (1.0, 1.0), periodic=False), frame_dt=1.0)
    with pytest.raises(SolverError, match="float32 or float64"):
        solver.rollout(u0.half(), th, 1, grid=GRID, frame_dt=1.0)
    with pytest.raises(SolverError, match="n_frames"):
        solver.rollout(u0, th, 1.5, grid=GRID, frame_dt=1.0)
    with pytest.raises(SolverError, match="internal_dt"):
        solver.rollout(u0, th, 1, grid=GRID, frame_dt=1.0, internal_dt=-1.0)
    with pytest.raises(SolverError, match="noise_amplitude"):
        solver.rollout(u0, th, 1, grid=GRID, frame_dt=1.0, noise_amplitude=math.nan)
    with pytest.raises(SolverError, match="seeds has 2 entries"):
        solver.rollout(u0, th, 1, grid=GRID, frame_dt=1.0, noise_amplitude=0.1,
                       seeds=torch.tensor([1, 2]))
    with pytest.raises(SolverError, match="unknown integrator"):
        Diffusion("rk45")
    assert solver.rollout(u0, th, 0, grid=GRID, frame_dt=1.0).shape == (1, 1, 2, 16, 16)


# --------------------------------------------------------------------------------------------
# Per-sample seeds handed to the domain (static random fields)
# --------------------------------------------------------------------------------------------


class SeededDiffusion(SpectralSolver):
    """``u_t = D Δu`` with a per-sample diffusivity drawn from the sample's seed,
    ``D = 0.1 + 0.4 U`` (U the first uniform of :func:`static_field_generator`); θ is unused
    (one dummy column). Records what each hook received."""

    name = "test-seeded"
    channels = 1
    parameter_space = ParameterSpace([LinearParameter("a", "", low=0.0, high=1.0)])

    def __init__(self):
        super().__init__()
        self.calls = []

    @staticmethod
    def diffusivity(seed):
        from noa_platform.numerics.template import static_field_generator

        return 0.1 + 0.4 * float(torch.rand((), generator=static_field_generator(seed),
                                            dtype=torch.float64))

    def linear_part(self, theta, grid, *, seeds=None):
        self.calls.append(("linear", seeds))
        if seeds is None:
            raise SolverError("test-seeded needs seeds")
        d = torch.tensor([self.diffusivity(s) for s in seeds], dtype=torch.float64)
        return d[:, None, None, None] * laplacian_symbol(grid)

    def nonlinear_term(self, theta, grid, dtype, device, seeds=None):
        self.calls.append(("nonlinear", seeds))
        return torch.zeros_like

    def rate_bound(self, theta, **kwargs):
        self.calls.append(("rate", kwargs["seeds"]))
        return np.full(len(theta), 1e-3)

    def default_dt(self, theta):            # no seeds keyword: called as before
        self.calls.append(("dt", None))
        return np.full(len(theta), 10.0)


def test_hooks_that_declare_seeds_receive_the_groups_seeds():
    y, x = _xy(GRID)
    u0 = torch.stack([torch.sin(2 * x) + torch.cos(3 * y)] * 3)[:, None]
    th = torch.full((3, 1), 0.5, dtype=torch.float64)
    seeds = [5, 2**40 + 1, 17]
    solver = SeededDiffusion()
    traj = solver.rollout(u0, th, 2, grid=GRID, frame_dt=0.5, seeds=torch.tensor(seeds))
    # Every sample plans alone with its own seed; the group gets the members' seeds in order.
    assert [c for c in solver.calls if c[0] == "rate"] == [("rate", [s]) for s in seeds]
    assert ("linear", seeds) in solver.calls and ("nonlinear", seeds) in solver.calls
    assert ("dt", None) in solver.calls
    for i, s in enumerate(seeds):
        d = SeededDiffusion.diffusivity(s)
        exact = (math.exp(-4 * d) * torch.sin(2 * x) + math.exp(-9 * d) * torch.cos(3 * y))
        assert rel(traj[i, 2, 0], exact) <= 1e-14     # t = 1
    # Distinct seeds give distinct static fields, and a sample alone is the same bits.
    assert len({SeededDiffusion.diffusivity(s) for s in seeds}) == 3
    alone = SeededDiffusion().rollout(u0[1:2], th[1:2], 2, grid=GRID, frame_dt=0.5,
                                      seeds=[seeds[1]])
    assert torch.equal(alone[0], traj[1])


def test_seeds_are_none_without_seeds_and_checked_when_given():
    u0 = torch.zeros((2, 1, 16, 16), dtype=torch.float64)
    th = torch.full((2, 1), 0.5, dtype=torch.float64)
    solver = SeededDiffusion()
    with pytest.raises(SolverError, match="test-seeded needs seeds"):
        solver.rollout(u0, th, 1, grid=GRID, frame_dt=0.5)
    assert ("rate", None) in solver.calls
    with pytest.raises(SolverError, match="seeds has 1 entries for 2 samples"):
        solver.rollout(u0, th, 1, grid=GRID, frame_dt=0.5, seeds=[3])


def test_static_field_generator_is_seeded_and_independent_of_the_noise_stream():
    from noa_platform.numerics.template import static_field_generator

    a = torch.randn(64, generator=static_field_generator(7), dtype=torch.float64)
    assert torch.equal(a, torch.randn(64, generator=static_field_generator(7),
                                      dtype=torch.float64))
    for other in (static_field_generator(8), static_field_generator(7, stream=1),
                  torch.Generator().manual_seed(7)):     # the noise's generator
        b = torch.randn(64, generator=other, dtype=torch.float64)
        assert abs(float((a * b).mean())) < 0.5 and not torch.equal(a, b)


# --------------------------------------------------------------------------------------------
# State-dependent steps (a CFL-type limit of the current state, per frame and per sample)
# --------------------------------------------------------------------------------------------


class Riccati(SpectralSolver):
    """``u_t = u²`` pointwise, no linear part: ``u(t) = u0 / (1 − u0 t)``, which blows up at
    ``t = 1/u0``. The state's limit is ``scale / max|u|`` (the Jacobian's rate is ``2|u|``).
    One channel, so transforms go through the batch-stable FFT helpers."""

    name = "test-riccati"
    channels = 1
    parameter_space = ParameterSpace([LinearParameter("a", "", low=0.0, high=1.0)])

    def __init__(self, scale=0.1, default=10.0):
        super().__init__()
        self.scale, self.default = scale, default

    def linear_part(self, theta, grid):
        return torch.zeros((1, 1, 1, 1), dtype=torch.float64)

    def nonlinear_term(self, theta, grid, dtype, device):
        from noa_platform.numerics.spectral import batch_stable_irfft2, batch_stable_rfft2

        shape = tuple(grid.shape)
        return lambda u_hat: batch_stable_rfft2(batch_stable_irfft2(u_hat, shape) ** 2)

    def rate_bound(self, theta):
        return np.full(len(theta), 1e-9)

    def default_dt(self, theta):
        return np.full(len(theta), self.default)

    def state_step_limit(self, x, theta, grid):
        peak = float(x.abs().max())
        return np.array([self.scale / peak if peak > 0 else math.inf])


def _riccati_u0(amplitudes, dtype=torch.float64):
    return torch.tensor(amplitudes, dtype=dtype).reshape(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()


def test_ladder_of_step_counts():
    from noa_platform.numerics.template import ladder_steps

    assert [ladder_steps(n) for n in (0, 1, 7, 8, 9, 11, 16, 17, 33, 100)] == [
        1, 1, 7, 8, 10, 12, 16, 20, 40, 112]
    assert all(n <= ladder_steps(n) <= 1.25 * n for n in range(9, 5000))


def test_state_dependent_plan_follows_the_solution(monkeypatch):
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    built = record_stepper_steps(monkeypatch)
    solver = Riccati()
    assert solver.state_dependent_steps and not Diffusion().state_dependent_steps
    th = torch.full((1, 1), 0.5, dtype=torch.float64)
    traj = solver.rollout(_riccati_u0([0.5]), th, 6, grid=grid, frame_dt=0.25)
    t = 0.25 * torch.arange(7, dtype=torch.float64)
    exact = 0.5 / (1 - 0.5 * t)
    err = (traj[0, :, 0, 0, 0] - exact).abs() / exact
    assert float(err.max()) <= 5e-6            # measured 3.0e-6 (u grows from 0.5 to 2)
    # Steps shrink as u grows: dt <= 0.7 · 0.1 / u at every frame's start.
    steps = [round(0.25 / dt) for dt in built]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    for f, dt in enumerate(built):
        assert dt <= 0.7 * 0.1 / float(exact[f]) + 1e-15


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_dependent_plan_is_bit_identical_alone_and_in_a_batch(dtype):
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    u0 = _riccati_u0([0.5, 0.05, 0.3, 0.5], dtype)
    u0[3] += 0.01 * torch.randn((1, 8, 8), generator=torch.Generator().manual_seed(1),
                                dtype=torch.float64).to(dtype)
    th = torch.full((4, 1), 0.5, dtype=torch.float64)
    kw = {"grid": grid, "frame_dt": 0.25, "seeds": [1, 2, 3, 4], "noise_amplitude": 1e-3}
    batch = Riccati().rollout(u0, th, 5, **kw)
    for i in range(4):
        alone = Riccati().rollout(u0[i:i + 1], th[i:i + 1], 5, grid=grid, frame_dt=0.25,
                                  seeds=[i + 1], noise_amplitude=1e-3)
        assert torch.equal(alone[0], batch[i]), i


def test_a_frame_whose_end_state_needs_a_smaller_step_is_redone():
    """u0 = 0.5, limit 2.5/(2u) = 2.5 at the start: one step of 1.5 is planned, but u(1.5) = 2
    allows only 0.625, so the frame is redone with ceil(1.5/(0.7 · 0.625)) = 4 steps — the
    same bits as asking for 4 steps outright."""
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    th = torch.full((1, 1), 0.5, dtype=torch.float64)
    solver = Riccati(scale=1.25)
    redone = solver.rollout(_riccati_u0([0.5]), th, 1, grid=grid, frame_dt=1.5)
    four = solver.rollout(_riccati_u0([0.5]), th, 1, grid=grid, frame_dt=1.5, internal_dt=0.375)
    one = Riccati(scale=1e9).rollout(_riccati_u0([0.5]), th, 1, grid=grid, frame_dt=1.5)
    assert torch.equal(redone, four) and not torch.equal(redone, one)


def test_blow_up_under_state_dependent_steps_is_one_clear_error():
    """u0 = 1 blows up at t = 1, inside frame 4 of 0.25: refused, never stored as NaN."""
    grid = Grid((8, 8), (2 * math.pi, 2 * math.pi))
    th = torch.full((1, 1), 0.5, dtype=torch.float64)
    with pytest.raises(SolverError, match=r"^test-riccati: (.* )?frame 4 .*θ = \[0.5\]") as info:
        Riccati().rollout(_riccati_u0([1.0]), th, 6, grid=grid, frame_dt=0.25)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("size", [16, 24])
def test_batch_stable_fft_gives_a_lone_transform_the_bits_it_has_in_a_batch(size):
    """torch's CPU FFT takes another path for a single transform (measured: [1, 1, 16, 16]
    differs in the last bits from the same slice inside [3, 1, 16, 16]); the helpers don't."""
    from noa_platform.numerics.spectral import batch_stable_irfft2, batch_stable_rfft2

    g = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn((5, 1, size, size), generator=g, dtype=torch.float64).to(dtype)
        spec = batch_stable_rfft2(x)
        assert torch.equal(spec, torch.fft.rfft2(x))           # batches pass straight through
        back = batch_stable_irfft2(spec, (size, size))
        for i in range(5):
            assert torch.equal(batch_stable_rfft2(x[i:i + 1]), spec[i:i + 1])
            assert torch.equal(batch_stable_rfft2(x[i, 0]), spec[i, 0])
            assert torch.equal(batch_stable_irfft2(spec[i:i + 1], (size, size)), back[i:i + 1])
