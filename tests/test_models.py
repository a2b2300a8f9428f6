"""Tests of the U-AFNO learned operator (noa_platform.models)."""

from __future__ import annotations

import pytest
import torch

from noa_platform.api import ArchitectureSpec
from noa_platform.errors import PluginError
from noa_platform.models import (
    DEFAULT_CONFIG,
    UAFNO,
    AFNOSpectralFilter,
    ArchitectureConfigError,
    LatentProjector,
    build_architecture,
    builtin_architectures,
    count_parameters,
)

SMALL = dict(base_channels=8, levels=2, modes=4, afno_blocks=2, num_blocks=4, cond_dim=16)


def small_model(**overrides) -> UAFNO:
    cfg = {**SMALL, **overrides}
    channels = cfg.pop("channels", 2)
    n_params = cfg.pop("n_params", 3)
    return UAFNO(channels, n_params, **cfg)


def dead_parameters(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]


def backward_random(model: UAFNO, batch: int, n: int, *, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, model.channels, n, n, generator=g, dtype=dtype)
    theta = torch.rand(batch, model.n_params, generator=g, dtype=dtype)
    field = None
    if model.field_channels:
        field = torch.rand(batch, model.field_channels, n, n, generator=g, dtype=dtype)
    target = torch.randn(u.shape, generator=g, dtype=dtype)
    model.zero_grad(set_to_none=True)
    out = model(u, theta, field)
    torch.nn.functional.mse_loss(out, target).backward()
    return out


# ------------------------------------------------------------------ gradients reach everything


@pytest.mark.parametrize(
    ("n", "modes"),
    [
        (16, 4),   # bottleneck 4x4: modes 4 = every row, 3 of the rfft columns
        (32, 4),   # bottleneck 8x8: modes 4 < grid, real truncation
        (32, 32),  # configured modes exceed the 8x8 bottleneck: clamped
    ],
)
def test_every_parameter_gets_a_gradient(n, modes):
    torch.manual_seed(0)
    model = small_model(modes=modes, resolution=n)
    backward_random(model, batch=2, n=n)
    assert dead_parameters(model) == []


def test_norm_none_keeps_the_size_of_a_fading_pattern():
    # With GroupNorm a block sees a pattern of amplitude 1e-3 as it sees amplitude 1 (each
    # sample divided by its own spread); without it the pre-head features scale with the input.
    torch.manual_seed(0)
    x = torch.randn(1, 2, 16, 16)
    theta = torch.zeros(1, 3)

    def head_input(model, u):
        seen = {}
        model.head_act.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0]))
        model(u, theta)
        h = seen["x"]
        return h - h.mean(dim=(-2, -1), keepdim=True)  # the pattern, without the mean

    group, plain = small_model(norm="group").eval(), small_model(norm="none").eval()
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in plain.modules())
    with torch.no_grad():
        g_small, g_big = head_input(group, 1e-3 * x), head_input(group, x)
        p_small, p_big = head_input(plain, 1e-3 * x), head_input(plain, x)
    # Measured: 0.000996 without normalization (linear in the amplitude near 0), 0.77 with it.
    assert abs(p_small.norm() / p_big.norm() - 1e-3) < 1e-4
    assert g_small.norm() / g_big.norm() > 0.5
    dead = backward_random(small_model(norm="none"), 2, 16)
    assert dead.shape == (2, 2, 16, 16)
    with pytest.raises(ArchitectureConfigError, match="norm must be one of"):
        small_model(norm="batch")


def test_make_norm_floor_keeps_a_faint_group_linear_and_a_bright_one_normalized():
    # GroupNorm computes (x - mean) / sqrt(var + floor), written out here: a group of spread
    # 1e-3 (var 1e-6, far below the floor 0.1) comes out at 1e-3 / sqrt(0.1); a group of
    # spread 10 (var 100) at 10 / sqrt(100.1), i.e. normalized.
    from noa_platform.models.unet import make_norm

    torch.manual_seed(0)
    z = torch.randn(1, 8, 16, 16)
    z = (z - z.mean(dim=(-2, -1), keepdim=True)) / z.std(dim=(-2, -1), unbiased=False,
                                                           keepdim=True)
    norm = make_norm("group", 8, floor=0.1)
    with torch.no_grad():
        for spread in (1e-3, 10.0):
            out = norm(spread * z)
            # One channel per group here would need 8 groups; make_norm uses up to 8.
            expected = spread * z / (spread**2 + 0.1) ** 0.5
            assert torch.allclose(out, expected, rtol=1e-4, atol=1e-7), spread
    assert make_norm("group", 8).eps == 1e-5
    with pytest.raises(ArchitectureConfigError, match="norm_floor"):
        small_model(norm_floor=-1.0)


def test_modes_larger_than_grid_are_clamped_and_nothing_is_dead():
    torch.manual_seed(1)
    model = small_model(modes=32, resolution=16)
    assert model.kept_modes(16, 16) == (4, 3)  # bottleneck 4x4: H_b rows, H_b//2+1 rfft columns
    out = backward_random(model, batch=2, n=16)
    assert out.shape == (2, 2, 16, 16)
    assert torch.isfinite(out).all()
    assert dead_parameters(model) == []


def test_field_channels_and_unconditioned_model_have_no_dead_parameters():
    torch.manual_seed(2)
    with_field = small_model(field_channels=1)
    backward_random(with_field, batch=2, n=16)
    assert dead_parameters(with_field) == []

    unconditioned = small_model(n_params=0)
    u = torch.randn(2, 2, 16, 16)
    torch.nn.functional.mse_loss(unconditioned(u, None), torch.randn_like(u)).backward()
    assert dead_parameters(unconditioned) == []


# ------------------------------------------------------------------ spectral filter


def test_spectral_filter_keeps_only_the_requested_modes():
    torch.manual_seed(3)
    filt = AFNOSpectralFilter(8, num_blocks=2, modes=3, sparsity=0.0)
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    filt = filt.double()
    spec = torch.fft.rfft2(filt(x), norm="ortho")
    kept = torch.zeros(8, 5, dtype=torch.bool)
    kept[[0, 1, 7], :3] = True  # k_y in {0, 1, -1}, k_x in {0, 1, 2}
    assert spec[..., ~kept].abs().max() < 1e-12
    assert spec[..., kept].abs().max() > 1e-3


def test_spectral_filter_weights_do_not_depend_on_the_grid():
    filt = AFNOSpectralFilter(16, num_blocks=4, hidden_factor=2, modes=32)
    assert filt.w1.shape == (2, 4, 4, 8)
    assert filt.b1.shape == (2, 4, 8)
    assert filt.w2.shape == (2, 4, 8, 4)
    assert filt.b2.shape == (2, 4, 4)
    for n in (2, 4, 8):
        assert filt(torch.randn(1, 16, n, n)).shape == (1, 16, n, n)


def perturbed(module: torch.nn.Module, scale: float) -> torch.nn.Module:
    """``module`` in float64 with every parameter moved off its initial value (biases start at
    0, thresholds at a constant), so the properties below are not those of the init only."""
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def shifted(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    return torch.roll(x, shift, dims=(-2, -1))


@pytest.mark.parametrize("shift", [(1, 0), (3, 5), (0, 7)])
def test_equivariant_filter_commutes_with_every_shift_and_keeps_uniform_fields_uniform(shift):
    torch.manual_seed(5)
    filt = perturbed(AFNOSpectralFilter(16, num_blocks=4, modes=6, mixing="equivariant"), 0.3)
    x = torch.randn(2, 16, 16, 16, dtype=torch.float64)
    y = filt(x)
    assert (filt(shifted(x, shift)) - shifted(y, shift)).abs().max() < 1e-13 * y.abs().max()
    uniform = torch.randn(2, 16, 1, 1, dtype=torch.float64).expand(2, 16, 16, 16)
    assert filt(uniform).flatten(2).std(2).max() < 1e-14
    # The published mixing does neither: its biases are a constant spectrum (a bump at the
    # origin) and its ReLUs act on real and imaginary parts apart. Measured: errors of O(1).
    published = perturbed(AFNOSpectralFilter(16, num_blocks=4, modes=6, mixing="afno"), 0.3)
    y = published(x)
    assert (published(shifted(x, shift)) - shifted(y, shift)).abs().max() > 0.1
    assert published(uniform).flatten(2).std(2).max() > 0.01


def test_complex_shrink_keeps_the_phase_and_never_amplifies():
    from noa_platform.models.afno import complex_shrink

    z = torch.tensor([3 + 4j, 0.3 - 0.4j, 0j, 1e-30 + 0j], dtype=torch.complex128,
                     requires_grad=True)
    yr, yi = complex_shrink(z.real, z.imag, 1.0)
    y = torch.complex(yr, yi)
    # |3+4i| = 5 -> 4, same phase; |0.3-0.4i| = 0.5 < 1 -> 0; 0 -> 0.
    expected = torch.tensor([(3 + 4j) * 4 / 5, 0, 0, 0], dtype=torch.complex128)
    assert torch.allclose(y.detach(), expected, atol=1e-15)
    y.abs().sum().backward()
    assert torch.isfinite(torch.view_as_real(z.grad)).all()


def test_uafno_with_equivariant_mixing_commutes_with_shifts_of_its_coarsest_stride():
    # Stride-2 convolutions commute with shifts by multiples of 2**levels only, so that is the
    # symmetry the whole model can have; with the published mixing it has none.
    torch.manual_seed(6)
    theta = torch.rand(2, 3, dtype=torch.float64)
    x = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    errors = {}
    for mixing in ("equivariant", "afno"):
        model = perturbed(small_model(spectral_mixing=mixing), 0.1).eval()
        with torch.no_grad():
            out = model(x, theta)
            errors[mixing] = (model(shifted(x, (4, 8)), theta) - shifted(out, (4, 8))).abs().max()
    assert errors["equivariant"] < 1e-12 and errors["afno"] > 1e-2
    # Without normalization nothing amplifies round-off, and a uniform state stays uniform.
    model = perturbed(small_model(spectral_mixing="equivariant", norm="none"), 0.1).eval()
    uniform = torch.randn(2, 2, 1, 1, dtype=torch.float64).expand(2, 2, 32, 32)
    with torch.no_grad():
        assert model(uniform, theta).flatten(2).std(2).max() < 1e-13
    with pytest.raises(ArchitectureConfigError, match="spectral_mixing must be one of"):
        small_model(spectral_mixing="fourier")


# ------------------------------------------------------------------ forward contract


@pytest.mark.parametrize("n", [16, 32])
def test_output_shape_latent_and_residual_start(n):
    torch.manual_seed(4)
    model = small_model()
    u = torch.randn(3, 2, n, n)
    theta = torch.rand(3, 3)
    out, latent = model.forward_with_latent(u, theta)
    assert out.shape == u.shape and out.dtype == u.dtype
    assert latent.shape == (3, model.latent_channels, n // 4, n // 4)
    assert model.latent_channels == 32
    assert model.latent_shape(n, n) == tuple(latent.shape[1:])
    # Residual update with a near-zero head: the first step is close to, but not exactly, u.
    delta = (out - u).abs()
    assert 0 < delta.max() < 0.1 * u.abs().max()
    assert torch.equal(model(u, theta), out)


def test_float64_path():
    torch.manual_seed(5)
    model = small_model().double()
    out = backward_random(model, batch=2, n=16, dtype=torch.float64)
    assert out.dtype == torch.float64
    assert dead_parameters(model) == []


def test_deterministic_in_eval_mode():
    torch.manual_seed(6)
    model = small_model().eval()
    u, theta = torch.randn(2, 2, 32, 32), torch.rand(2, 3)
    with torch.no_grad():
        assert torch.equal(model(u, theta), model(u, theta))
    # Batch independence: GroupNorm has no batch statistics, so a sample's output does not
    # depend on its batch-mates (up to the summation order of batched kernels).
    with torch.no_grad():
        single = model(u[:1], theta[:1])
        both = model(u, theta)[:1]
    torch.testing.assert_close(single, both, rtol=1e-5, atol=1e-6)


def test_theta_changes_the_output_at_init_and_after_training():
    torch.manual_seed(7)
    model = small_model().double()
    u = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    theta_a = torch.full((1, 3), 0.1, dtype=torch.float64)
    theta_b = torch.full((1, 3), 0.9, dtype=torch.float64)
    with torch.no_grad():
        diff0 = (model(u, theta_a) - model(u, theta_b)).abs().max()
    assert diff0 > 0

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # fit opposite targets for the two θ so FiLM has to respond
        opt.zero_grad()
        loss = (model(u, theta_a) - u - 1).pow(2).mean() + (model(u, theta_b) - u + 1).pow(2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        diff1 = (model(u, theta_a) - model(u, theta_b)).abs().max()
    assert diff1 > 10 * diff0


def test_param_field_is_used_and_checked():
    torch.manual_seed(8)
    model = small_model(field_channels=1)
    u, theta = torch.randn(2, 2, 16, 16), torch.rand(2, 3)
    field = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert not torch.equal(model(u, theta, field), model(u, theta, field + 1))
    with pytest.raises(ValueError, match="param_field"):
        model(u, theta)
    with pytest.raises(ValueError, match="param_field"):
        model(u, theta, torch.rand(2, 2, 16, 16))
    with pytest.raises(ValueError, match="field_channels=0"):
        small_model()(u, theta, field)


def test_bad_inputs_raise_clear_errors():
    model = small_model()
    with pytest.raises(ValueError, match=r"grid 18x16 .*H=18.*multiple of 2\*\*levels = 4"):
        model(torch.randn(1, 2, 18, 16), torch.rand(1, 3))
    with pytest.raises(ValueError, match="W=18"):
        model(torch.randn(1, 2, 16, 18), torch.rand(1, 3))
    with pytest.raises(ValueError, match=r"u must be \[B, 2, H, W\]"):
        model(torch.randn(1, 3, 16, 16), torch.rand(1, 3))
    with pytest.raises(ValueError, match="theta_unit"):
        model(torch.randn(1, 2, 16, 16), torch.rand(1, 2))
    with pytest.raises(ArchitectureConfigError, match="grid 20x20"):
        small_model(levels=3, resolution=20)
    with pytest.raises(ArchitectureConfigError, match="num_blocks=3"):
        small_model(num_blocks=3)


# ------------------------------------------------------------------ projector


def test_latent_projector_maps_to_vector_and_gets_gradients():
    torch.manual_seed(9)
    model = small_model()
    proj = LatentProjector(model.latent_channels, 12)
    _, latent = model.forward_with_latent(torch.randn(3, 2, 32, 32), torch.rand(3, 3))
    z = proj(latent)
    assert z.shape == (3, 12)
    z.pow(2).mean().backward()
    assert dead_parameters(proj) == []
    # Gradients flow back into the MNO through the latent as well.
    assert model.lift.weight.grad is not None and model.lift.weight.grad.abs().sum() > 0
    # Pooling makes it resolution independent, and a constant map has a finite gradient.
    assert proj(torch.randn(2, 32, 2, 2)).shape == (2, 12)
    flat = torch.ones(1, 32, 4, 4, requires_grad=True)
    proj(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()
    with pytest.raises(ValueError, match="latent must be"):
        proj(torch.randn(1, 31, 4, 4))


# ------------------------------------------------------------------ registry


def test_build_architecture_defaults_and_unknown_keys():
    model = build_architecture({"name": "u-afno", **SMALL}, channels=2, n_params=3)
    assert isinstance(model, UAFNO)
    assert model.config["levels"] == 2
    default = build_architecture({}, channels=1, n_params=2, field_channels=1)
    assert {k: default.config[k] for k in DEFAULT_CONFIG} == DEFAULT_CONFIG
    assert default.field_channels == 1
    with pytest.raises(ValueError, match="'modez'"):
        build_architecture({"modez": 8}, channels=2, n_params=3)
    with pytest.raises(PluginError, match="unknown architecture 'transformer'; known: .*u-afno"):
        build_architecture({"name": "transformer"}, channels=2, n_params=3)
    with pytest.raises(ValueError, match="levels"):
        build_architecture({"levels": 0}, channels=2, n_params=3)
    with pytest.raises(ValueError, match="sparsity"):
        build_architecture({"sparsity": -1.0}, channels=2, n_params=3)


def test_builtin_architectures_spec():
    specs = builtin_architectures()
    assert [s.name for s in specs] == ["u-afno"]
    spec = specs[0]
    assert isinstance(spec, ArchitectureSpec) and spec.description
    model = spec.factory(channels=2, n_params=3, resolution=32, **SMALL)
    assert isinstance(model, UAFNO)
    assert model(torch.randn(1, 2, 32, 32), torch.rand(1, 3)).shape == (1, 2, 32, 32)
    with pytest.raises(ValueError, match="'bogus'"):
        spec.factory(channels=2, n_params=3, bogus=1)


def test_count_parameters():
    model = small_model()
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    model.lift.weight.requires_grad_(False)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total - model.lift.weight.numel()


# ------------------------------------------------------------------ devices, size


def test_default_size_forward_backward_runs_on_cpu():
    torch.manual_seed(10)
    model = build_architecture({"base_channels": 32, "levels": 3}, channels=2, n_params=3)
    u = torch.randn(4, 2, 64, 64)
    out = model(u, torch.rand(4, 3))
    torch.nn.functional.mse_loss(out, torch.randn_like(u)).backward()
    assert out.shape == u.shape
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_follows_inputs():
    torch.manual_seed(11)
    model = small_model().cuda()
    u, theta = torch.randn(2, 2, 32, 32, device="cuda"), torch.rand(2, 3, device="cuda")
    out = model(u, theta)
    assert out.device.type == "cuda" and out.shape == u.shape
    torch.nn.functional.mse_loss(out, torch.randn_like(out)).backward()
    assert dead_parameters(model) == []
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert torch.isfinite(model(u, theta).float()).all()
