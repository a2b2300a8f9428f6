"""Behavioural features: finite for any finite input, differentiable, and meaning what they say."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noa_platform.api import FeatureExtractorSpec
from noa_platform.features import (
    FAMILIES,
    builtin_extractors,
    extract_features,
    feature_names,
    initial_features,
    sanitize,
    summary_features,
    temporal_features,
)
from noa_platform.features.dynamics import settling_fraction, time_trend

NAMES = feature_names()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The inputs here are tiny: a second intra-op thread only adds hand-off latency, which
    dominates (10x) when the machine is busy with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random inputs; the global generator is restored after."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------

KINDS = (
    "noise",
    "constant",
    "zeros",
    "sinusoid",
    "spike",
    "near_constant",
    "static",
    "growing",
    "mixed_channels",
    "extreme",
    "wild",
)


def make_trajectory(
    kind: str, shape: tuple[int, ...], scale: float, dtype: torch.dtype, seed: int
) -> torch.Tensor:
    """A trajectory ``[B, T+1, C, H, W]`` of the named kind, built in float64 then cast."""
    gen = torch.Generator().manual_seed(seed)
    b, frames, c, h, w = shape
    noise = torch.randn(shape, generator=gen, dtype=torch.float64)
    eps = torch.finfo(dtype).eps
    if kind == "noise":
        x = noise * scale
    elif kind == "constant":
        x = torch.full(shape, scale, dtype=torch.float64)
    elif kind == "zeros":
        x = torch.zeros(shape, dtype=torch.float64)
    elif kind == "sinusoid":
        k = int(torch.randint(1, max(2, w // 2), (1,), generator=gen))
        xs = torch.arange(w, dtype=torch.float64) / w
        x = (torch.sin(2 * math.pi * k * xs) * scale).expand(shape).clone()
    elif kind == "spike":
        x = torch.zeros(shape, dtype=torch.float64)
        x[..., 0, 0] = scale
    elif kind == "near_constant":
        # Variations of one or two units of round-off: numerically a constant.
        steps = torch.randint(-2, 3, shape, generator=gen).to(torch.float64)
        x = (1.0 + eps * steps) * scale
    elif kind == "static":
        x = (noise[:, :1] * scale).expand(shape).clone()
    elif kind == "growing":
        # From 1e-30 to 1e30 over the rollout (or the reverse when scale < 1).
        exponents = torch.linspace(-30.0, 30.0, frames, dtype=torch.float64)
        if scale < 1:
            exponents = exponents.flip(0)
        x = noise * (10.0**exponents)[None, :, None, None, None]
    elif kind == "mixed_channels":
        exponents = torch.linspace(-30.0, 30.0, c, dtype=torch.float64)
        x = noise * (10.0**exponents)[None, None, :, None, None]
    elif kind == "extreme":
        # Near the largest float32 value: squares and sums of u itself would overflow.
        x = noise.clamp(-1, 1) * 3.0e38
    elif kind == "wild":
        # Every value with its own magnitude, from 1e-30 |scale| to 1e30 |scale| (capped).
        exponents = (torch.rand(shape, generator=gen, dtype=torch.float64) - 0.5) * 60.0
        x = (noise.sign() * 10.0**exponents * abs(scale)).clamp(-3.0e38, 3.0e38)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return x.to(dtype)


@st.composite
def trajectories(draw, kinds=KINDS, scales=(-30, 30)):
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(0, 5)) + 1,
        draw(st.integers(1, 3)),
        draw(st.integers(4, 16)),
        draw(st.integers(4, 16)),
    )
    kind = draw(st.sampled_from(kinds))
    scale = draw(st.sampled_from([1.0, -1.0])) * 10.0 ** draw(st.integers(*scales))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    return make_trajectory(kind, shape, scale, dtype, seed)


def value(feats: dict[str, torch.Tensor], family: str, name: str) -> torch.Tensor:
    """One column of a family by its full name."""
    return feats[family][..., NAMES[family].index(name)]


def sinusoid(h: int, w: int, ky: int, kx: int, amplitude=1.0, offset=0.0) -> torch.Tensor:
    y = torch.arange(h, dtype=torch.float64)[:, None] / h
    x = torch.arange(w, dtype=torch.float64)[None, :] / w
    return amplitude * torch.sin(2 * math.pi * (ky * y + kx * x)) + offset


# ------------------------------------------------------------------------------------------
# Contract: names, shapes, specs
# ------------------------------------------------------------------------------------------


def test_families_and_names():
    assert FAMILIES == ("initial", "summary", "temporal")
    assert set(NAMES) == set(FAMILIES)
    every = [n for family in FAMILIES for n in NAMES[family]]
    assert len(every) == len(set(every)), "names must be unique (across families too)"
    for family in FAMILIES:
        assert all(n.startswith(family + ".") for n in NAMES[family])
    assert 20 <= len(NAMES["initial"]) <= 40
    assert 30 <= len(NAMES["summary"]) <= 60
    assert 8 <= len(NAMES["temporal"]) <= 16


def test_builtin_extractors_match_families():
    specs = builtin_extractors()
    assert [s.family for s in specs] == list(FAMILIES)
    traj = torch.randn(2, 4, 3, 8, 8)
    for spec in specs:
        assert isinstance(spec, FeatureExtractorSpec)
        assert spec.names == NAMES[spec.family]
        assert spec.temporal == (spec.family == "temporal")
        out = spec.extract(traj)
        expected = (2, 4, len(spec.names)) if spec.temporal else (2, len(spec.names))
        assert out.shape == expected


def test_family_functions_agree_with_extract_features():
    traj = torch.randn(2, 5, 2, 8, 12, dtype=torch.float64)
    feats = extract_features(traj)
    torch.testing.assert_close(initial_features(traj), feats["initial"])
    torch.testing.assert_close(summary_features(traj), feats["summary"])
    torch.testing.assert_close(temporal_features(traj), feats["temporal"])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="B, T\\+1, C, H, W"):
        extract_features(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="2 x 2 grid"):
        extract_features(torch.zeros(1, 1, 1, 1, 8))
    with pytest.raises(TypeError):
        extract_features([[0.0]])
    with pytest.raises(TypeError, match="real"):
        extract_features(torch.zeros(1, 1, 1, 4, 4, dtype=torch.complex64))


def test_other_dtypes_become_float32():
    traj = torch.randint(-5, 5, (1, 2, 1, 8, 8))
    for x in (traj, traj.half(), traj.bfloat16()):
        feats = extract_features(x)
        assert all(v.dtype == torch.float32 for v in feats.values())


# ------------------------------------------------------------------------------------------
# Properties: finite everywhere, without the guard
# ------------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(trajectories())
def test_features_are_finite_with_right_shapes(traj):
    b, frames = traj.shape[:2]
    # guard=False: the formulas themselves must be finite; sanitize must have nothing to do.
    feats = extract_features(traj, guard=False)
    assert set(feats) == set(FAMILIES)
    assert feats["initial"].shape == (b, len(NAMES["initial"]))
    assert feats["summary"].shape == (b, len(NAMES["summary"]))
    assert feats["temporal"].shape == (b, frames, len(NAMES["temporal"]))
    for family, x in feats.items():
        assert x.dtype == traj.dtype
        bad = ~torch.isfinite(x)
        if bad.any():
            cols = sorted({NAMES[family][i] for i in bad.nonzero()[:, -1].tolist()})
            raise AssertionError(f"non-finite {family} features: {cols}")


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(trajectories())
def test_gradients_are_finite(traj):
    traj = traj.clone().requires_grad_()
    feats = extract_features(traj, guard=False)
    sum(x.sum() for x in feats.values()).backward()
    assert torch.isfinite(traj.grad).all()


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(trajectories(kinds=("constant", "zeros", "static", "near_constant")))
def test_degenerate_inputs_have_finite_gradients(traj):
    traj = traj.clone().requires_grad_()
    feats = extract_features(traj, guard=False)
    sum(x.sum() for x in feats.values()).backward()
    assert not torch.isnan(traj.grad).any()
    assert torch.isfinite(traj.grad).all()


@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(trajectories(kinds=("noise",)))
def test_names_do_not_depend_on_shape(traj):
    feats = extract_features(traj)
    for family in FAMILIES:
        assert feats[family].shape[-1] == len(NAMES[family])


def test_gradient_reaches_every_frame_and_is_nonzero():
    traj = torch.randn(2, 4, 2, 8, 8, requires_grad=True)
    feats = extract_features(traj, guard=False)
    sum(x.sum() for x in feats.values()).backward()
    assert torch.isfinite(traj.grad).all()
    per_frame = traj.grad.abs().sum(dim=(0, 2, 3, 4))
    assert (per_frame > 0).all()


@pytest.mark.parametrize("family_fn", [initial_features, summary_features, temporal_features])
def test_gradients_match_finite_differences(family_fn):
    gen = torch.Generator().manual_seed(3)
    traj = torch.randn(1, 3, 2, 4, 5, dtype=torch.float64, generator=gen).requires_grad_()
    # Random weights: a plain sum could hide cancelling errors between columns.
    weights = torch.randn(family_fn(traj).shape, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(
        lambda x: (family_fn(x, guard=False) * weights).sum(),
        (traj,),
        eps=1e-6,
        atol=1e-5,
        fast_mode=True,
    )


def test_sanitize_is_only_a_last_line_of_defence():
    x = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert sanitize(x).tolist() == [1.0, 0.0, 0.0, 0.0]
    traj = torch.randn(1, 3, 1, 8, 8)
    traj[0, 1, 0, 2, 2] = float("nan")
    for x in extract_features(traj).values():
        assert torch.isfinite(x).all()


# ------------------------------------------------------------------------------------------
# Known answers
# ------------------------------------------------------------------------------------------


def test_a_pattern_that_decayed_to_uniform_reads_the_same_with_a_trace_of_noise():
    # A trajectory whose pattern fades to a uniform state, and the same plus white noise of
    # 1e-4 of its first spread: the spectral shape statistics of the faded frames must not
    # flip to "white noise" (before the significance weight the centroid moved by 12 and the
    # top-band fraction by ~0.6).
    g = torch.Generator().manual_seed(0)
    n, frames = 32, 9
    wave = sinusoid(n, n, 2, 3, amplitude=0.3)
    decay = torch.tensor([0.5**(3 * t) for t in range(frames - 1)] + [0.0])[:, None, None]
    # One channel fades to 1 (a substrate), the other to 0 (a catalyst that dies out: its
    # frames' own max|u| shrinks with the pattern, so only the trajectory's scale tells).
    clean = torch.stack([1.0 + wave * decay, wave * decay], dim=1)[None]
    noisy = clean + 1e-4 * 0.3 * torch.randn(clean.shape, generator=g)
    a, b = extract_features(clean.double()), extract_features(noisy.double())
    names = NAMES
    for family in ("temporal", "summary"):
        for i, name in enumerate(names[family]):
            # The noise's spread is 1e-4 of the trajectory's scale, so it weighs ~1e-8/1e-4:
            # fractions move by ~1e-4, the centroid (white noise's is ~11 at 32²) by ~1e-3.
            limit = 2e-4 if "band_" in name else 2e-3
            if any(k in name for k in ("band_", "spectral_centroid")):
                gap = (a[family][..., i] - b[family][..., i]).abs().max().item()
                assert gap < limit, (name, gap)


@pytest.mark.parametrize("ky,kx", [(0, 4), (4, 0)])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_sinusoid_of_wavelength_quarter_domain(ky, kx, size):
    field = sinusoid(size, size, ky, kx, amplitude=3.0, offset=0.5)
    feats = extract_features(field[None, None, None])
    get = lambda s: value(feats, "initial", f"initial.{s}.chan_mean").item()  # noqa: E731
    # Shape statistics are weighted by the significance v / (v + 1e-4) of the fluctuation,
    # v = variance / max|u|^2 = (A^2 / 2) / (A + offset)^2.
    v = (3.0**2 / 2) / 3.5**2
    weight = v / (v + 1e-4)
    assert get("spectral_centroid") == pytest.approx(4.0 * weight, abs=1e-6)
    assert get("dominant_wavelength") == pytest.approx(0.25, abs=1e-6)
    assert get("spectral_bandwidth") == pytest.approx(0.0, abs=1e-3)
    assert get("skewness") == pytest.approx(0.0, abs=1e-6)
    if size >= 32:  # at 16 points the samples of sin(π j / 2) are 0, 1, 0, -1: kurtosis -1
        assert get("kurtosis") == pytest.approx(-1.5, abs=1e-6)
    assert get("anisotropy") == pytest.approx(weight, abs=1e-6)  # stripes
    assert get("std") == pytest.approx(math.log1p(3.0 / math.sqrt(2)), rel=1e-6)
    assert get("mean") == pytest.approx(math.log1p(0.5), rel=1e-6)
    # |∇u| rms of A sin(2π k x) is 2π k A / √2 (domain units).
    assert get("gradient_rms") == pytest.approx(
        math.log1p(2 * math.pi * 4 * 3.0 / math.sqrt(2)), rel=1e-6
    )
    low = get("band_low") if size >= 32 else get("band_mid")
    assert low == pytest.approx(weight, abs=1e-6)


def test_constant_field_has_defined_degenerate_statistics():
    traj = torch.full((1, 3, 2, 8, 8), 7.0)
    feats = extract_features(traj, guard=False)
    for name in NAMES["initial"]:
        stat = name.split(".")[1]
        got = value(feats, "initial", name).item()
        if stat in ("mean", "min", "max"):
            assert got == pytest.approx(math.log1p(7.0)), name
        else:
            assert got == 0.0, name  # std, skewness, kurtosis, slope, entropy, ... are 0
    zeros = extract_features(torch.zeros(1, 3, 2, 8, 8), guard=False)
    for family in ("initial", "temporal"):
        assert (zeros[family] == 0).all()


def test_two_valued_field_moments():
    field = torch.ones(16, 16)
    field[:, :8] = -1.0
    feats = extract_features(field[None, None, None])
    assert value(feats, "initial", "initial.skewness.chan_mean").item() == pytest.approx(
        0, abs=1e-6
    )
    assert value(feats, "initial", "initial.kurtosis.chan_mean").item() == pytest.approx(
        -2, abs=1e-5
    )


def test_static_trajectory_has_no_change():
    gen = torch.Generator().manual_seed(1)
    u0 = torch.randn(2, 1, 3, 12, 12, generator=gen)
    feats = extract_features(u0.expand(2, 9, 3, 12, 12), guard=False)
    rate = [n for n in NAMES["temporal"] if ".rate." in n]
    for name in rate:
        assert (value(feats, "temporal", name) == 0).all()
    for name in NAMES["summary"]:
        got = value(feats, "summary", name)
        if any(
            key in name for key in ("trend", "change", "variability", "rate.", "settling", "drift")
        ):
            assert torch.allclose(got, torch.zeros_like(got), atol=1e-5), name
        if "autocorr" in name:
            assert torch.allclose(got, torch.ones_like(got), atol=1e-5), name


def test_one_frame_trajectory_is_defined():
    feats = extract_features(torch.randn(2, 1, 2, 8, 8), guard=False)
    assert feats["temporal"].shape == (2, 1, len(NAMES["temporal"]))
    for name in NAMES["summary"]:
        got = value(feats, "summary", name)
        if any(
            key in name for key in ("trend", "change", "variability", "rate.", "settling", "drift")
        ):
            assert (got == 0).all(), name


def test_channel_pooling_makes_channel_count_irrelevant():
    gen = torch.Generator().manual_seed(2)
    one = torch.randn(2, 4, 1, 8, 10, dtype=torch.float64, generator=gen)
    two = torch.cat([one, one], dim=2)
    three = torch.cat([one, one, one], dim=2)
    base = extract_features(one)
    for other in (two, three):
        feats = extract_features(other)
        for family in FAMILIES:
            torch.testing.assert_close(feats[family], base[family], rtol=1e-9, atol=1e-12)


def test_channel_order_does_not_matter():
    traj = torch.randn(1, 3, 3, 8, 8, dtype=torch.float64)
    a = extract_features(traj)
    b = extract_features(traj[:, :, [2, 0, 1]])
    for family in FAMILIES:
        torch.testing.assert_close(a[family], b[family])


def test_shape_features_are_scale_invariant_and_amplitudes_shift_by_log_scale():
    traj = torch.randn(2, 5, 2, 12, 12, dtype=torch.float64)
    small, large = extract_features(traj), extract_features(traj * 1e20)
    amplitude_stats = ("mean", "std", "min", "max", "range", "gradient_rms")
    for family in FAMILIES:
        for i, name in enumerate(NAMES[family]):
            stat = name.split(".")[1]
            a, b = small[family][..., i], large[family][..., i]
            if stat in amplitude_stats:
                if name.endswith(("level.chan_mean", "level.chan_max")) or family != "summary":
                    # log1p(1e20 x) - log1p(x) ≈ 20 ln 10 for |x| ≈ 1
                    assert (b.abs() > a.abs()).all(), name
                continue
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8, msg=name)


def test_features_of_a_sample_do_not_depend_on_its_batch():
    traj = torch.randn(3, 4, 2, 8, 8, dtype=torch.float64)
    batch = extract_features(traj)
    alone = extract_features(traj[1:2])
    for family in FAMILIES:
        torch.testing.assert_close(batch[family][1:2], alone[family])


def test_float32_and_float64_agree():
    traj = torch.randn(2, 4, 2, 16, 16, dtype=torch.float64)
    f64 = extract_features(traj)
    f32 = extract_features(traj.float())
    for family in FAMILIES:
        torch.testing.assert_close(f32[family].double(), f64[family], rtol=1e-3, atol=1e-3)


def test_correlation_length_grows_with_smoothness():
    gen = torch.Generator().manual_seed(4)
    k = torch.fft.fftfreq(64, dtype=torch.float64) * 64
    kk = torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    lengths = []
    for ell in (0.03, 0.06, 0.12):
        # Gaussian spectrum: autocorrelation exp(-r^2 / ell^2), integral length 0.886 ell.
        amplitude = torch.exp(-((math.pi * ell * kk) ** 2) / 2)
        noise = torch.randn(4, 64, 64, dtype=torch.float64, generator=gen)
        field = torch.fft.ifft2(noise * amplitude).real
        feats = extract_features(field[:, None, None])
        got = value(feats, "initial", "initial.correlation_length.chan_mean").mean().item()
        assert got == pytest.approx(0.886 * ell, rel=0.25)
        lengths.append(got)
    assert lengths == sorted(lengths)
    white = extract_features(torch.randn(2, 1, 1, 64, 64, dtype=torch.float64))
    slope = value(white, "initial", "initial.spectral_slope.chan_mean")
    assert torch.allclose(slope, torch.ones_like(slope), atol=0.2)  # E(k) ∝ k for white noise


def test_growth_decay_and_oscillation_are_visible():
    u0 = torch.randn(1, 1, 1, 12, 12, dtype=torch.float64)
    t = torch.arange(9, dtype=torch.float64)[None, :, None, None, None]
    growing = extract_features(u0 * torch.exp(t))
    decaying = extract_features(u0 * torch.exp(-t))
    flipping = extract_features(u0 * (-1.0) ** t)
    get = lambda f, n: value(f, "summary", f"summary.{n}.chan_mean").item()  # noqa: E731
    assert get(growing, "std.trend") > 0 > get(decaying, "std.trend")
    assert get(growing, "energy_drift") > 0.99 and get(decaying, "energy_drift") < -0.99
    assert get(flipping, "autocorr.lag1") == pytest.approx(-1.0)
    assert get(growing, "autocorr.lag1") == pytest.approx(1.0)
    # u -> -u: |Δu| = |u| + |u'|, a rate of 1, weighed by the field's presence m / (m + 1e-4),
    # m = mean(u²) / max|u|² (the trajectory's scale is every frame's here).
    m = (u0.square().mean() / u0.abs().max().square()).item()
    assert get(flipping, "rate.level") == pytest.approx(m / (m + 1e-4), abs=1e-12)


def test_time_trend_of_a_line_is_its_slope():
    tau = torch.linspace(0, 1, 7, dtype=torch.float64)
    series = (2.0 - 3.0 * tau)[None, :, None]
    assert time_trend(series).item() == pytest.approx(-3.0)
    assert time_trend(series[:, :1]).item() == 0.0


def test_settling_fraction():
    ten = lambda *r: torch.tensor(r, dtype=torch.float64)[None, :, None]  # noqa: E731
    # The rate drops under 10 % of its first value after 3 of 10 steps.
    settles = settling_fraction(ten(1, 1, 1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01)).item()
    assert settles == pytest.approx(0.3, abs=0.01)
    assert settling_fraction(ten(*[0.5] * 10)).item() == pytest.approx(1.0, abs=1e-3)
    assert settling_fraction(ten(*[0.0] * 10)).item() == 0.0  # static from the start
    assert settling_fraction(torch.zeros(1, 0, 1)).item() == 0.0  # one frame: no steps


def test_settling_of_a_relaxing_trajectory():
    gen = torch.Generator().manual_seed(5)
    target, start = torch.randn(2, 1, 1, 8, 8, dtype=torch.float64, generator=gen)
    t = torch.arange(21, dtype=torch.float64)[:, None, None, None]
    # Geometric relaxation: the rate falls by 0.7 per frame, under 10 % after ~6.5 frames.
    traj = (target + 0.7**t * (start - target))[None]
    got = value(extract_features(traj), "summary", "summary.settling_fraction.chan_mean").item()
    assert 0.2 < got < 0.45
