"""``wave-leapfrog``: the structure its documentation promises (the kit checks that it builds,
trains a step and listens to θ): shears preserve phase-space volume whatever the weights, only
the damping column dissipates, and the exact uniform-medium step is representable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from noa_waves.architecture import make_wave_leapfrog
from noa_waves.solver import WaveSolver

from noa_platform.api import Grid
from noa_platform.models import ArchitectureConfigError, build_architecture

G8 = Grid((8, 8), (1.0, 1.0))


def _randomised(seed=0, **config):
    torch.manual_seed(seed)
    model = make_wave_leapfrog(channels=2, n_params=4, damping_index=3, width=4, depth=1,
                               cond_dim=8, symbol_width=16, **config).double()
    with torch.no_grad():                    # far from the near-identity initialisation
        for p in model.parameters():
            p.normal_(0.0, 0.3)
        model.log_scale.zero_()
    return model


def _log_det(model, theta):
    z = torch.randn((1, 2, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda x: model(x, theta), z)
    return torch.linalg.slogdet(jac.reshape(128, 128))


def test_undamped_rows_preserve_phase_space_volume_for_any_weights():
    """θ's damping column at 0: det ∂z_next/∂z = 1 (kicks and drifts are shears); at 1 the
    damping sub-step contracts volume."""
    for seed in range(3):
        model = _randomised(seed)
        undamped = torch.tensor([[0.3, 0.8, 0.5, 0.0]], dtype=torch.float64)
        sign, logdet = _log_det(model, undamped)
        assert float(sign) == 1.0 and abs(float(logdet)) < 1e-10
        sign, logdet = _log_det(model, torch.tensor([[0.3, 0.8, 0.5, 1.0]], dtype=torch.float64))
        assert float(logdet) < -1e-3


def test_the_exact_uniform_medium_step_is_representable():
    """With the symbols set to the kick–drift–kick factorisation of the exact flow,
    κ = −2ω tan(ωτ/2), δ = sin(ωτ)/ω (ω = c̄ 2π|n|), and the local networks off, one forward
    pass is one frame of the solver in a uniform, undamped medium (float64)."""
    c, tau = 0.8, 0.05
    model = make_wave_leapfrog(channels=2, n_params=4, damping_index=3, width=4, depth=1).double()
    with torch.no_grad():
        for net in (model.force, model.motion):
            net.proj.weight.zero_()
            net.proj.bias.zero_()
    ny = torch.fft.fftfreq(8, 1 / 8, dtype=torch.float64)[:, None]
    nx = torch.fft.rfftfreq(8, 1 / 8, dtype=torch.float64)[None, :]
    om = c * 2 * math.pi * (ny**2 + nx**2).sqrt()
    safe = torch.where(om > 0, om, torch.ones_like(om))
    kappa = -2 * om * torch.tan(om * tau / 2)
    delta = torch.where(om > 0, torch.sin(om * tau) / safe, torch.full_like(om, tau))
    symbols = torch.stack([kappa, delta, torch.zeros_like(om)])[None]
    model.symbols.forward = lambda emb, h, w: symbols.expand(emb.shape[0], -1, -1, -1)

    theta = np.array([[c, 0.0, 0.2, 0.0]])
    z = torch.randn((1, 2, 8, 8), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = WaveSolver().rollout(z, theta, 1, grid=G8, frame_dt=tau)[:, 1]
    with torch.no_grad():
        got = model(z, torch.tensor([[0.6, 0.0, 0.5, 0.0]], dtype=torch.float64))
    assert float((got - exact).abs().max() / exact.abs().max()) < 1e-12


@pytest.mark.parametrize("config, message", [
    ({"widht": 8}, "unknown wave-leapfrog config key"),
    ({"width": 0}, "width must be an integer >= 1"),
    ({"damping_index": 4}, "damping_index 4 is not a θ column"),
    ({"k_ref": -1.0}, "k_ref must be a number > 0"),
])
def test_bad_configs_are_one_clear_line(config, message):
    with pytest.raises(ArchitectureConfigError, match=message):
        build_architecture({"name": "wave-leapfrog", **config}, channels=2, n_params=4)


def test_needs_the_two_channels_of_a_wave():
    with pytest.raises(ArchitectureConfigError, match="needs 2 channels, got 3"):
        build_architecture({"name": "wave-leapfrog"}, channels=3, n_params=4)


def test_latent_and_any_resolution():
    model = make_wave_leapfrog(channels=2, n_params=4, width=6, depth=1)
    for n in (12, 16, 20):
        out, latent = model.forward_with_latent(torch.randn(2, 2, n, n), torch.rand(2, 4))
        assert out.shape == (2, 2, n, n)
        assert latent.shape == (2, model.latent_channels, n, n) and model.latent_channels == 12
