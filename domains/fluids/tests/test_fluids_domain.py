"""The fluids plugin as the platform sees it: entry point, torch-free import, the domain's
declarations, initial conditions, diagnostics and the conformance kit."""

from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from noa_fluids import plugin
from noa_fluids.diagnostics import cutoff_shell, decades_at_cutoff, enstrophy_spectrum
from noa_fluids.domain import Fluids
from noa_fluids.invariants import energy, enstrophy
from noa_fluids.parameters import NU_HIGH, NU_LOW

from noa_platform.api import PLUGIN_API_VERSION, Domain, Grid
from noa_platform.config import domain_config
from noa_platform.errors import ParameterError
from noa_platform.testing import parametrize_with_checks

DIST = Path(__file__).resolve().parents[1]
DOMAIN = Fluids()


@parametrize_with_checks([Fluids()])
def test_conformance_kit(domain, check):
    check(domain)


def test_distribution_declares_the_entry_point():
    meta = tomllib.loads((DIST / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "noa-domain-fluids"
    assert "noa-platform" in meta["project"]["dependencies"]
    assert meta["project"]["entry-points"]["noa_platform"] == {"fluids": "noa_fluids.plugin"}


def test_plugin_provides_the_domain_without_importing_torch():
    assert plugin.NOA_PLUGIN_API == PLUGIN_API_VERSION
    assert getattr(plugin.noa_domains, "noa_platform_impl", None) is not None
    code = ("import sys, noa_fluids.plugin as p; d = p.noa_domains()[0]; d.describe(); "
            "print(d.name, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert out.stdout.split() == ["fluids", "False"]
    assert isinstance(plugin.noa_domains()[0], Domain)


def test_domain_declarations():
    d = DOMAIN
    assert [c.name for c in d.channels] == ["vorticity"] and d.channels[0].role == "state"
    assert d.grid == Grid((64, 64), (2 * math.pi, 2 * math.pi), True)
    assert d.grid_for(32).extent == d.grid.extent
    assert d.parameter_space.names == ("nu", "alpha", "forcing", "forcing_k")
    for name in ("energy", "enstrophy"):
        inv = d.invariants[name]
        assert inv.conserved and dict(inv.conserved_under) == {"nu": 0.0, "alpha": 0.0,
                                                              "forcing": 0.0}
    quick, std = (domain_config(d, p).generation for p in ("quick", "standard"))
    assert (quick.resolution, std.resolution) == (32, 64)
    assert quick.burn_in_frames > 0 and std.burn_in_frames > 0
    arch = d.architecture_config(d.presets["standard"]["mno"]["architecture"])
    assert arch["name"] == "u-afno" and arch["levels"] == 1
    assert {"persistence", "spatial-mean"} <= set(d.baselines)


def test_viscosity_is_log_scaled_and_admits_exactly_zero():
    p = DOMAIN.parameter_space["nu"]
    u = np.linspace(0, 1, 11)
    nu = p.from_unit(u)
    assert nu.min() == pytest.approx(NU_LOW) and nu.max() == pytest.approx(NU_HIGH)
    np.testing.assert_allclose(np.diff(np.log(nu)), np.log(NU_HIGH / NU_LOW) / 10)
    assert p.contains(np.array([0.0])).all() and p.to_unit(np.array([0.0]))[0] == 0.0
    for bad in (NU_LOW / 2, -1e-3, NU_HIGH * 2):
        with pytest.raises(ParameterError, match="'nu'"):
            p.validate(bad)


@pytest.mark.parametrize("family", ["gaussian-random-field", "multiscale", "vortices", "shear"])
@pytest.mark.parametrize("n", [16, 32])
def test_initial_vorticity_is_zero_mean_resolved_and_of_unit_rms_speed(family, n):
    g = DOMAIN.grid_for(n)
    w = DOMAIN.initial_condition(family).sample(3, g, torch.Generator().manual_seed(5))
    assert w.shape == (3, 1, n, n) and w.dtype == torch.float64
    assert float(w.mean(dim=(-2, -1)).abs().max()) <= 1e-12
    spec = torch.fft.rfft2(w).abs()
    m = torch.fft.fftfreq(n, d=1.0 / n).abs()
    outside = (m[:, None] > n / 3) | (torch.arange(n // 2 + 1)[None, :] > n / 3)
    assert float(spec[..., outside].max()) <= 1e-10 * float(spec.max())
    np.testing.assert_allclose(2 * energy(w, g).numpy(), 1.0, rtol=1e-12)


def test_enstrophy_spectrum_sums_to_the_enstrophy_and_puts_a_mode_in_its_shell():
    n = 32
    g = DOMAIN.grid_for(n)
    c = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    w = (torch.cos(3 * c)[None, :] * torch.sin(4 * c)[:, None])[None]    # |k| = 5
    z = enstrophy_spectrum(w, g)[0]
    assert int(z.argmax()) == 5 and float(z.sum()) == pytest.approx(float(enstrophy(
        w[:, None], g)[0]), rel=1e-12)
    field = DOMAIN.initial_condition("multiscale").sample(2, g, torch.Generator().manual_seed(0))
    assert float((enstrophy_spectrum(field[:, 0], g).sum(-1) - enstrophy(field, g)).abs().max()
                 ) <= 1e-12
    assert cutoff_shell(g) == 10 and float(decades_at_cutoff(w, g)[0]) > 10


@pytest.mark.slow
def test_the_quick_box_is_resolved_on_the_quick_grid():
    """The quick preset's worst corner (lowest ν, strongest forcing, no drag) at 32², after
    its burn-in: the time-mean enstrophy spectrum of the stored frames falls by at least four
    decades before the cut-off shell (docs/fluids.md, "Resolution")."""
    gen = domain_config(DOMAIN, "quick").generation
    box = gen.parameter_ranges
    rows = np.array([[box["nu"][0], 0.0, box["forcing"][1], k] for k in (2, 3, 4)])
    g = DOMAIN.grid_for(gen.resolution)
    u0 = torch.cat([DOMAIN.initial_condition("multiscale").sample(
        1, g, torch.Generator().manual_seed(k)) for k in range(3)]).to(torch.float32)
    traj = DOMAIN.solver.rollout(u0, torch.as_tensor(rows), gen.burn_in_frames + gen.n_frames,
                                 grid=g, frame_dt=DOMAIN.frame_dt)
    z = enstrophy_spectrum(traj[:, gen.burn_in_frames:, 0], g).mean(dim=1)
    decades = torch.log10(z.amax(-1) / z[:, cutoff_shell(g)])
    assert float(decades.min()) >= 4.0, decades
