"""The waves plugin as the platform sees it: entry point, domain object, conformance kit, the
speed field, the energy invariant and the initial conditions.

The generic contract (shapes, dtypes, frame 0, replay, batch independence, finiteness across
the θ box, conserved energy at γ = 0, refusals, presets, architecture) is the conformance
kit's, run here on this domain; the tests below hold what is particular to waves."""

from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from noa_waves import Waves, plugin
from noa_waves.initial_conditions import C_REF
from noa_waves.invariants import energy
from noa_waves.parameters import PARAMETER_SPACE
from noa_waves.speed import solver_seed, speed_field_of_sample, speed_fields, unit_field

from noa_platform.api import PLUGIN_API_VERSION, Domain, Grid
from noa_platform.errors import ParameterError
from noa_platform.testing import parametrize_with_checks

DIST = Path(__file__).resolve().parents[1]
G16 = Grid((16, 16), (1.0, 1.0))


@parametrize_with_checks([Waves()])
def test_conformance_kit(domain, check):
    check(domain)


def test_distribution_declares_the_entry_point():
    meta = tomllib.loads((DIST / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "noa-domain-waves"
    assert "noa-platform" in meta["project"]["dependencies"]
    assert meta["project"]["entry-points"]["noa_platform"] == {"waves": "noa_waves.plugin"}
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"


def test_plugin_provides_the_domain_and_its_architecture():
    assert plugin.NOA_PLUGIN_API == PLUGIN_API_VERSION
    (domain,) = plugin.noa_domains()
    assert isinstance(domain, Domain) and domain.name == "waves"
    (arch,) = plugin.noa_architectures()
    assert arch.name == domain.default_architecture["name"] == "wave-leapfrog"
    for hook in (plugin.noa_domains, plugin.noa_architectures):
        assert getattr(hook, "noa_platform_impl", None) is not None


def test_importing_the_plugin_and_describing_the_domain_does_not_import_torch():
    code = ("import sys, noa_waves.plugin as p; d = p.noa_domains()[0]; d.describe(); "
            "p.noa_architectures(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_domain_attributes():
    d = Waves()
    assert [(c.name, c.role, c.rate_of) for c in d.channels] == [("u", "state", None),
                                                                  ("u_t", "rate", "u")]
    assert d.grid == Grid((64, 64), (1.0, 1.0), True) and d.grid_scaling == "extent"
    assert d.frame_dt == 0.02
    assert d.parameter_space.names == ("c", "speed_amplitude", "correlation_length", "gamma")
    assert set(d.initial_conditions) == {"gaussian-pulse", "plane-waves", "random-field"}
    assert d.invariants["energy"].conserved_under == {"gamma": 0.0}
    assert d.presets["quick"]["generation"]["resolution"] == 32
    assert d.presets["standard"]["generation"]["resolution"] == 64
    assert d.default_architecture == {"name": "wave-leapfrog", "damping_index": 3}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3), st.sampled_from([-1.0, 1.0]), st.floats(1e-6, 10.0))
def test_out_of_range_theta_is_refused_by_name(column, side, excess):
    p = PARAMETER_SPACE.parameters[column]
    row = PARAMETER_SPACE.from_unit(np.full((1, 4), 0.5))
    row[0, column] = (p.high + excess * (p.high - p.low) if side > 0
                      else p.low - excess * (p.high - p.low))
    if p.kind == "log" and row[0, column] <= 0:
        row[0, column] = p.low * 1e-3
    u0 = torch.zeros((1, 2, 16, 16))
    with pytest.raises(ParameterError, match=p.name):
        Waves().solver.rollout(u0, row, 1, grid=G16, frame_dt=0.05)


# -- the speed field ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 1.0), st.floats(0.0, 0.4), st.floats(0.1, 0.4), st.integers(0, 2**62))
def test_speed_stays_within_its_bound(c, a, ell, seed):
    speed = speed_fields(np.array([[c, a, ell, 0.0]]), G16, [seed])[0]
    assert float(speed.min()) >= c * (1 - a) - 1e-12
    assert float(speed.max()) <= c * (1 + a) + 1e-12


def test_speed_field_is_the_same_function_at_every_resolution():
    theta = np.array([[0.8, 0.3, 0.15, 0.0]])
    coarse = speed_fields(theta, Grid((32, 32), (1.0, 1.0)), [7])[0]
    fine = speed_fields(theta, Grid((64, 64), (1.0, 1.0)), [7])[0]
    assert torch.allclose(coarse, fine[::2, ::2], rtol=0, atol=1e-12)
    other = speed_fields(theta, Grid((32, 32), (1.0, 1.0)), [8])[0]
    assert float((coarse - other).abs().max()) > 0.05


def test_unit_field_has_unit_variance_and_its_correlation_function():
    """Over 200 seeds: E[g²] = 1, and the correlation at distance r along x is the periodic,
    zero-mean version of exp(−r²/(2ℓ²)): Σ_{n≠0} S(n) cos(2π n_x r) / Σ_{n≠0} S(n) with the
    Gaussian spectrum S(n) = exp(−2π² ℓ² |n|²) on the integer lattice (within the sampling
    error of 200 draws)."""
    grid, ell = Grid((32, 32), (1.0, 1.0)), 0.15
    g = torch.stack([unit_field(grid, ell, s) for s in range(200)])
    assert abs(float(g.square().mean()) - 1) < 0.05
    n = np.arange(-12, 13)
    ny, nx = np.meshgrid(n, n, indexing="ij")
    spectrum = np.exp(-2 * math.pi**2 * ell**2 * (nx**2 + ny**2))
    spectrum[12, 12] = 0.0
    for shift in (2, 5, 8):
        r = shift / 32
        expected = float((spectrum * np.cos(2 * math.pi * nx * r)).sum() / spectrum.sum())
        corr = float((g * torch.roll(g, shift, dims=-1)).mean())
        assert abs(corr - expected) < 0.03


def test_dataset_sample_medium_uses_the_seed_the_solver_receives():
    from noa_platform.data.simulate import simulate

    d = Waves()
    theta = np.array([[0.7, 0.35, 0.2, 0.0]])
    traj = simulate(d, theta, [1234], ["plane-waves"], n_frames=3, resolution=16,
                    dtype=torch.float64)
    speed = speed_field_of_sample(theta[0], G16, 1234)
    assert torch.equal(speed, speed_fields(theta, G16, [solver_seed(1234)])[0])
    e = energy(traj, G16, torch.as_tensor(theta), seeds=[solver_seed(1234)])[0]
    wrong = energy(traj, G16, torch.as_tensor(theta), seeds=[1234])[0]
    assert float((e / e[0] - 1).abs().max()) < 1e-3              # the kit's rtol
    assert float((wrong / wrong[0] - 1).abs().max()) > 1e-2      # another medium's energy


# -- the energy invariant ---------------------------------------------------------------


def test_energy_is_the_continuous_energy_of_a_resolved_field():
    """For u, u_t made of low modes, E = ½ ∫ (u_t² + c(x)² |∇u|²) dx, with ∇u written by hand
    and the integral a Riemann sum (exact for trigonometric polynomials of this degree)."""
    grid = Grid((32, 32), (1.0, 1.0))
    y = torch.arange(32, dtype=torch.float64)[:, None] / 32
    x = torch.arange(32, dtype=torch.float64)[None, :] / 32
    a1 = 2 * math.pi * (x + 2 * y)
    a2 = 2 * math.pi * 3 * x
    u = torch.sin(a1) + 0.5 * torch.cos(a2)
    ux = 2 * math.pi * torch.cos(a1) - 0.5 * 6 * math.pi * torch.sin(a2)
    uy = 4 * math.pi * torch.cos(a1)
    v = torch.cos(2 * math.pi * (2 * x - y))
    theta = np.array([[0.8, 0.3, 0.3, 0.0]])
    c2 = speed_fields(theta, grid, [5])[0].square()
    by_hand = 0.5 * float((v * v + c2 * (ux * ux + uy * uy)).sum()) / 32**2
    frames = torch.stack([u, v])[None, None]                     # [1, 1, 2, H, W]
    got = energy(frames, grid, torch.as_tensor(theta), seeds=[5])
    assert got.shape == (1, 1)
    assert abs(float(got[0, 0]) - by_hand) < 1e-12 * by_hand


# -- initial conditions -----------------------------------------------------------------


def test_initial_conditions_do_what_they_say():
    d, gen = Waves(), torch.Generator().manual_seed(3)
    grid = Grid((32, 32), (1.0, 1.0))
    pulse = d.initial_condition("gaussian-pulse").sample(4, grid, gen)
    assert torch.equal(pulse[:, 1], torch.zeros_like(pulse[:, 1]))
    assert float(pulse[:, 0].abs().amax(dim=(-2, -1)).min()) > 0.4
    waves = d.initial_condition("plane-waves").sample(4, grid, gen)
    spec = torch.fft.fft2(waves).abs()
    n = torch.fft.fftfreq(32, 1 / 32).abs()
    outside = (n[:, None] > 4) | (n[None, :] > 4)
    assert float(spec[..., outside].max()) < 1e-9 * float(spec.max())
    # One plane wave travels at C_REF: E_kin = E_pot in a medium of speed C_REF.
    one = d.initial_condition("plane-waves").sample(1, Grid((16, 16), (1.0, 1.0)),
                                                    torch.Generator().manual_seed(2))
    assert int((torch.fft.rfft2(one[0, 0]).abs() > 1e-9).sum()) == 1    # seed 2: one wave
    theta = torch.tensor([[C_REF, 0.0, 0.2, 0.0]], dtype=torch.float64)
    kinetic = 0.5 * one[:, 1].square().sum(dim=(-2, -1)) / 16**2
    assert torch.allclose(energy(one, G16, theta), 2 * kinetic, rtol=1e-10)
    fields = d.initial_condition("random-field").sample(4, grid, gen)
    assert float(fields.mean(dim=(-2, -1)).abs().max()) < 1e-12
