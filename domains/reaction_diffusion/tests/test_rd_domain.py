"""The reaction-diffusion plugin as the platform sees it: entry point, domain object, ICs.

The generic contract (shapes, dtypes, frame 0, replay, batch independence, finiteness across
the θ box, refusals, presets, architecture) is the conformance kit's, run here on this domain;
the tests below hold what is particular to reaction-diffusion."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from noa_reaction_diffusion import plugin
from noa_reaction_diffusion.domain import ReactionDiffusion

from noa_platform.api import PLUGIN_API_VERSION, Channel, Domain, Grid
from noa_platform.errors import ParameterError
from noa_platform.testing import parametrize_with_checks

DIST = Path(__file__).resolve().parents[1]
FAMILIES = ("random-squares", "gaussian-random-field", "multiscale", "sinusoids", "blobs")


@parametrize_with_checks([ReactionDiffusion()])
def test_conformance_kit(domain, check):
    check(domain)


def test_distribution_declares_the_entry_point():
    meta = tomllib.loads((DIST / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "noa-domain-reaction-diffusion"
    assert "noa-platform" in meta["project"]["dependencies"]
    assert meta["project"]["entry-points"]["noa_platform"] == {
        "reaction-diffusion": "noa_reaction_diffusion.plugin"}
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"


def test_plugin_module_targets_this_api_and_provides_the_domain():
    assert plugin.NOA_PLUGIN_API == PLUGIN_API_VERSION
    domains = plugin.noa_domains()
    assert len(domains) == 1 and isinstance(domains[0], Domain)
    assert domains[0].name == "reaction-diffusion"
    # The hook carries pluggy's marker for the project's name.
    assert getattr(plugin.noa_domains, "noa_platform_impl", None) is not None


def test_domain_attributes():
    d = ReactionDiffusion()
    assert d.channels == (Channel("u", "state", "dimensionless", description="substrate / activator"),
                          Channel("v", "state", "dimensionless", description="catalyst / inhibitor"))
    assert d.grid == Grid((64, 64), (64.0, 64.0), True)
    assert d.grid_scaling == "spacing" and d.grid_for(32).spacing == (1.0, 1.0)
    assert d.frame_dt == 50.0
    assert d.parameter_space.names == ("kinetics", "F", "k", "kappa", "tau")
    assert set(d.initial_conditions) == set(FAMILIES)
    assert set(d.invariants) == {"mass_u", "mass_v"}
    quick = d.presets["quick"]["generation"]
    assert (quick["resolution"], quick["n_samples"], quick["n_frames"], quick["batch_size"]) == (
        32, 256, 32, 32)
    std = d.presets["standard"]["generation"]
    assert (std["resolution"], std["n_samples"], std["n_frames"], std["batch_size"]) == (
        64, 4096, 64, 64)
    for preset in d.presets.values():
        assert set(preset["generation"]["ic_families"]) <= set(FAMILIES)
    desc = d.describe()
    assert desc["name"] == "reaction-diffusion" and len(desc["parameters"]) == 5
    with pytest.raises(ParameterError, match="no initial-condition family"):
        d.initial_condition("nope")


def test_parameter_space_round_trip_and_box():
    space = ReactionDiffusion().parameter_space
    u = np.random.default_rng(0).random((50, space.dim))
    phys = space.from_unit(u)
    assert set(np.unique(phys[:, 0])) <= {0.0, 1.0}
    assert phys[:, 1].min() >= 0.01 and phys[:, 1].max() <= 0.07
    assert phys[:, 2].min() >= 0.045 and phys[:, 2].max() <= 0.07
    np.testing.assert_array_equal(space.from_unit(space.to_unit(phys)), phys)
    row = space.encode({"kinetics": "fitzhugh-nagumo", "F": 0.02, "k": 0.05, "kappa": 0.0,
                        "tau": 1.0})
    assert space.decode(row)["kinetics"] == "fitzhugh-nagumo"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("res", [16, 32])
def test_initial_conditions_are_seeded_concentrations(family, res):
    d = ReactionDiffusion()
    grid = d.grid_for(res)
    ic = d.initial_condition(family)
    a = ic.sample(4, grid, torch.Generator().manual_seed(3))
    b = ic.sample(4, grid, torch.Generator().manual_seed(3))
    c = ic.sample(4, grid, torch.Generator().manual_seed(4))
    assert a.shape == (4, 2, res, res) and a.dtype == torch.float64 and a.device.type == "cpu"
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0
    # Every family seeds some reacting region (v > 0.1) and leaves u near its rest value.
    assert (a[:, 1] > 0.1).flatten(1).any(dim=1).all()
    assert float(a[:, 0].mean()) > 0.5
    assert ic.description


def test_invariants_are_channel_means():
    d = ReactionDiffusion()
    x = torch.rand(3, 5, 2, 8, 8, dtype=torch.float64)
    grid, theta = d.grid_for(8), torch.zeros(3, d.parameter_space.dim, dtype=torch.float64)
    torch.testing.assert_close(d.invariants["mass_u"].fn(x, grid, theta),
                               x[..., 0, :, :].mean((-2, -1)))
    torch.testing.assert_close(d.invariants["mass_v"].fn(x, grid, theta),
                               x[..., 1, :, :].mean((-2, -1)))
    assert not d.invariants["mass_u"].conserved  # reactions change the means


def test_reads_match_the_kinetics():
    space = ReactionDiffusion().parameter_space
    assert space.reads == {"kinetics": {"gray-scott": ("F", "k"),
                                        "fitzhugh-nagumo": ("kappa", "tau")}}
    gs = space.encode({"kinetics": "gray-scott", "F": 0.02, "k": 0.05, "kappa": 0.0, "tau": 1.0})
    assert space.active(gs).tolist() == [[True, True, True, False, False]]


def test_core_plugin_registry_accepts_the_plugin():
    plugins = pytest.importorskip("noa_platform.plugins")
    registry = plugins.PluginRegistry()
    record = registry.register(plugin, "reaction-diffusion", "noa-domain-reaction-diffusion")
    assert record.status == "loaded", record.error
    assert isinstance(registry.domain("reaction-diffusion"), ReactionDiffusion)
