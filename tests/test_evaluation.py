"""Rollout metrics, MNO/CNO agreement, verdicts and plots (noa_platform.evaluation)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noa_platform.evaluation import agreement, plots, rollout_metrics
from noa_platform.evaluation.rollout_metrics import (
    band_errors,
    band_index,
    correlation_per_step,
    correlation_time,
    first_drop,
    invariant_drift,
    nrmse_per_step,
    persistence_baseline,
    vrmse_per_step,
)
from noa_platform.evaluation.verdicts import THRESHOLDS, judge, thresholds_for, verdicts

DOC = Path(__file__).resolve().parents[1] / "docs" / "validation.md"


def rollout(n: int = 3, steps: int = 6, c: int = 2, h: int = 16, w: int = 16,
            seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, steps, c, h, w, generator=g, dtype=torch.float64)


def full(steps: int, value: float) -> torch.Tensor:
    return torch.full((steps,), value, dtype=torch.float64)


def plane_wave(kx: int, ky: int, n: int = 16) -> torch.Tensor:
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    return torch.cos(kx * x[:, None] + ky * x[None, :])


# ---------------------------------------------------------------- VRMSE / nRMSE


def test_perfect_prediction_scores_zero_error():
    true = rollout()
    assert torch.equal(vrmse_per_step(true.clone(), true), full(true.shape[1], 0.0))
    assert torch.equal(nrmse_per_step(true.clone(), true), full(true.shape[1], 0.0))


def test_vrmse_of_a_scaled_deviation_is_the_scale():
    true = rollout() + 3.0  # offset must not matter: VRMSE divides by the deviation from the mean
    dev = true - true.mean(dim=(3, 4), keepdim=True)
    pred = true + 0.1 * dev
    assert torch.allclose(vrmse_per_step(pred, true), full(true.shape[1], 0.1))


def test_vrmse_and_nrmse_with_known_noise_match_the_formula():
    true = rollout(seed=1)
    noise = 0.3 * rollout(seed=2)
    pred = true + noise
    t, e = true.numpy(), noise.numpy()
    dev = t - t.mean(axis=(3, 4), keepdims=True)
    expected_v = np.sqrt((e**2).sum(axis=(0, 2, 3, 4))) / np.sqrt((dev**2).sum(axis=(0, 2, 3, 4)))
    expected_n = np.sqrt((e**2).sum(axis=(0, 2, 3, 4))) / np.sqrt((t**2).sum(axis=(0, 2, 3, 4)))
    np.testing.assert_allclose(vrmse_per_step(pred, true).numpy(), expected_v, rtol=1e-12)
    np.testing.assert_allclose(nrmse_per_step(pred, true).numpy(), expected_n, rtol=1e-12)
    # unit-variance noise scaled by 0.3 on unit-variance fields: VRMSE ≈ 0.3
    assert torch.allclose(vrmse_per_step(pred, true), full(true.shape[1], 0.3), atol=0.05)


def test_a_trajectory_decaying_to_uniform_does_not_explode_the_aggregate():
    true = rollout(n=4, steps=8, seed=3)
    decay = torch.exp(-3.0 * torch.arange(8, dtype=torch.float64)).view(1, 8, 1, 1, 1)
    true[0] = 1.0 + true[0] * decay[0]
    true[0, -1] = 1.0  # exactly uniform at the last step: its own variance is 0
    pred = true + 1e-3 * rollout(n=4, steps=8, seed=4)
    v = vrmse_per_step(pred, true)
    assert torch.isfinite(v).all()
    assert float(v.max()) < 0.01
    # what a per-sample ratio of the decaying sample would report: huge, then undefined
    per_sample = vrmse_per_step(pred[:1], true[:1])
    assert float(per_sample[-2]) > 1e4
    assert math.isnan(float(per_sample[-1]))


def test_vrmse_is_nan_only_where_everything_is_uniform():
    true = rollout(n=2, steps=4)
    true[:, 2] = 5.0
    pred = true + 0.1
    v = vrmse_per_step(pred, true)
    assert math.isnan(float(v[2]))
    assert torch.isfinite(v[[0, 1, 3]]).all()
    assert torch.isfinite(nrmse_per_step(pred, true)).all()  # nRMSE counts the mean as signal


def test_metrics_accept_float32_and_small_chunks(monkeypatch):
    true = rollout(n=5).float()
    pred = true + 0.05 * rollout(n=5, seed=9).float()
    def metrics():
        return (vrmse_per_step(pred, true), band_errors(pred, true)["high"],
                correlation_per_step(pred, true))

    whole = metrics()
    monkeypatch.setattr(rollout_metrics, "CHUNK_ELEMENTS", 1)  # one sample per chunk
    chunked = metrics()
    for a, b in zip(whole, chunked):
        assert a.dtype == torch.float64
        assert torch.allclose(a, b, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-3, 1e3), offset=st.floats(-10, 10))
def test_vrmse_is_invariant_to_units_and_offset(scale, offset):
    true = rollout(n=2, steps=3, h=8, w=8)
    pred = true + 0.2 * rollout(n=2, steps=3, h=8, w=8, seed=5)
    base = vrmse_per_step(pred, true)
    rescaled = vrmse_per_step(scale * pred + offset, scale * true + offset)
    assert torch.allclose(rescaled, base, rtol=1e-9)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        vrmse_per_step(rollout(), rollout(n=2))
    with pytest.raises(ValueError, match="spatial axis"):
        nrmse_per_step(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))


def test_one_dimensional_fields_work():
    true = torch.randn(3, 4, 1, 32, dtype=torch.float64)
    pred = true.clone()
    assert torch.equal(vrmse_per_step(pred, true), torch.zeros(4, dtype=torch.float64))
    assert set(band_errors(pred, true)) == {"low", "mid", "high"}


# ---------------------------------------------------------------- persistence


def test_persistence_baseline_repeats_frame_zero():
    true = rollout()
    base = persistence_baseline(true)
    assert base.shape == true.shape
    for t in range(true.shape[1]):
        assert torch.equal(base[:, t], true[:, 0])
    v = vrmse_per_step(base, true)
    assert float(v[0]) == 0.0 and (v[1:] > 0).all()


# ---------------------------------------------------------------- spectral bands


def test_band_index_partitions_the_radial_range():
    idx = band_index((16, 16), 3)
    assert idx[0, 0] == 0  # the mean is a low mode
    assert idx[1, 0] == 0 and idx[0, 2] == 0  # |k| < 8/3
    assert idx[3, 0] == 1 and idx[0, 5] == 1  # 8/3 <= |k| < 16/3
    assert idx[6, 0] == 2 and idx[8, 8] == 2  # 16/3 <= |k|, the corner included
    assert set(idx.unique().tolist()) == {0, 1, 2}


def test_band_errors_isolate_an_error_planted_in_one_band():
    n = 16
    field = plane_wave(1, 0, n) + 0.5 * plane_wave(0, 4, n) + 0.25 * plane_wave(6, 1, n)
    true = field.expand(2, 3, 1, n, n).clone()
    pred = true + 0.1 * plane_wave(7, 0, n)  # |k| = 7: high band
    errors = band_errors(pred, true)
    assert torch.allclose(errors["low"], torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(errors["mid"], torch.zeros(3, dtype=torch.float64), atol=1e-12)
    # high-band energy: error 0.1² vs true 0.25² for a plane wave of the same form
    assert torch.allclose(errors["high"], full(3, 0.1 / 0.25), rtol=1e-10)

    pred_low = true + 0.2 * plane_wave(1, 0, n)
    low = band_errors(pred_low, true)
    assert torch.allclose(low["low"], torch.full((3,), 0.2, dtype=torch.float64), rtol=1e-10)
    assert float(low["high"].abs().max()) < 1e-12


def test_band_errors_other_band_counts_and_empty_bands():
    true = rollout(n=1, steps=2, c=1)
    out = band_errors(true + 0.1, true, n_bands=4)
    assert list(out) == ["band0", "band1", "band2", "band3"]
    # a field with no energy in a band gives nan there, not a division error
    flat = torch.ones(1, 2, 1, 16, 16, dtype=torch.float64)
    res = band_errors(flat + 0.1, flat)
    assert torch.allclose(res["low"], torch.full((2,), 0.1, dtype=torch.float64))
    assert torch.isnan(res["high"]).all()


# ---------------------------------------------------------------- correlation


def test_perfect_prediction_correlates_for_the_whole_horizon():
    true = rollout(steps=7)
    result = correlation_time(true.clone(), true)
    assert torch.allclose(result.correlation_per_step, torch.ones(7, dtype=torch.float64))
    assert result.time == 6.0 and result.horizon == 6 and result.fraction == 1.0
    time, curve, horizon = result  # unpacks
    assert time == 6.0


def test_correlation_ignores_amplitude_and_offset_but_not_sign():
    true = rollout()
    assert torch.allclose(correlation_per_step(2.0 * true + 7.0, true), full(6, 1.0))
    assert torch.allclose(correlation_per_step(-true, true), -torch.ones(6, dtype=torch.float64))


def test_correlation_time_is_the_first_step_below_threshold():
    true = rollout(n=4, steps=8)
    pred = true.clone()
    pred[:, 3:] = rollout(n=4, steps=5, seed=11)  # unrelated from step 3 on
    result = correlation_time(pred, true, threshold=0.8)
    assert result.time == 3.0
    assert result.fraction == pytest.approx(3 / 7)
    assert (result.correlation_per_step[:3] == 1).all()
    assert (result.correlation_per_step[3:].abs() < 0.3).all()


def test_correlation_of_uniform_and_blown_up_fields():
    true = rollout(n=2, steps=4, c=1)
    true[:, 1] = 2.0  # every true field uniform at step 1: nothing to correlate with
    pred = true.clone()
    assert math.isnan(float(correlation_per_step(pred, true)[1]))
    pred[:, 2] = 3.0  # uniform prediction of structured fields: no pattern
    pred[0, 3] = math.nan  # a blown-up sample poisons the aggregate: no trustworthy pattern
    curve = correlation_per_step(pred, true)
    assert float(curve[2]) == 0.0 and float(curve[3]) == 0.0
    # A nan step (all uniform) is not a drop of the correlation time.
    assert correlation_time(true.clone(), true).time == 3.0
    assert first_drop(torch.tensor([1.0, math.nan, 1.0]), 0.8) == 1.0


def test_correlation_is_aggregated_like_vrmse():
    """A sample that decays to uniform weighs little; it does not score 0 on its own
    (the per-sample rule made the truth plus 0.1 % noise look poor)."""
    true = rollout(n=4, steps=6, seed=5)
    true[0] = true[0, :1] * 1e-9 + 0.5  # nearly uniform sample
    noisy = true + 1e-3 * rollout(n=4, steps=6, seed=6)
    assert (correlation_per_step(noisy, true)[1:] > 0.99).all()
    p, t = noisy.numpy(), true.numpy()
    pc = p - p.mean(axis=(3, 4), keepdims=True)
    tc = t - t.mean(axis=(3, 4), keepdims=True)
    expected = (pc * tc).sum(axis=(0, 2, 3, 4)) / np.sqrt(
        (pc**2).sum(axis=(0, 2, 3, 4)) * (tc**2).sum(axis=(0, 2, 3, 4)))
    np.testing.assert_allclose(correlation_per_step(noisy, true).numpy(), expected, rtol=1e-12)


def test_no_model_baselines():
    true = rollout(n=5, steps=4, seed=8) + 1.5
    mean = rollout_metrics.spatial_mean_forecast(true)
    # The spatial-mean forecast scores VRMSE 1 exactly, by construction.
    np.testing.assert_allclose(vrmse_per_step(mean, true).numpy(), 1.0, rtol=1e-12)
    shuffled = rollout_metrics.shuffled_forecast(true, [0, 0, 1, 1, 1])
    # Each sample gets another sample of its own group; a group of one would keep itself.
    assert torch.equal(shuffled[0], true[1]) and torch.equal(shuffled[1], true[0])
    assert torch.equal(shuffled[2], true[3]) and torch.equal(shuffled[4], true[2])
    assert torch.equal(rollout_metrics.shuffled_forecast(true[:1], [0])[0], true[0])
    per_channel = rollout_metrics.vrmse_per_channel(true + 0.1, true)
    assert per_channel.shape == (2, 4)
    with pytest.raises(ValueError, match="group labels"):
        rollout_metrics.shuffled_forecast(true, [0, 1])


# ---------------------------------------------------------------- invariants


def test_invariant_drift_absolute_and_relative():
    true = rollout(n=2, steps=5, c=2) + 2.0
    pred = true + 0.1

    theta = torch.zeros(2, 1)

    def mass(x, th=None):
        return x.mean(dim=(-1, -2)).sum(dim=-1)

    def energy(x, th):
        return x.square().mean(dim=(-1, -2)).sum(dim=-1)

    out = invariant_drift(pred, true, {"mass": mass, "energy": energy}, theta)
    m = out["mass"]
    assert m["mean_abs"] == pytest.approx(0.2) and m["final_abs"] == pytest.approx(0.2)
    scale = float(mass(true).abs().mean())
    assert m["scale"] == pytest.approx(scale)
    assert m["mean_rel"] == pytest.approx(0.2 / scale)
    assert m["per_step_abs"].shape == (5,)
    assert out["energy"]["mean_abs"] > 0

    zero = invariant_drift(pred, true, {"zero": lambda x, th: 0.0 * mass(x)}, theta)["zero"]
    assert zero["mean_abs"] == 0.0 and math.isnan(zero["mean_rel"])
    with pytest.raises(ValueError, match="must map"):
        invariant_drift(pred, true, {"bad": lambda x, th: x.mean(dim=(-1, -2))}, theta)


# ---------------------------------------------------------------- agreement


def test_token_agreement_groups_separate_u0_only_codebooks():
    names = ["initial.c0.r0", "initial.c0.r1", "summary.c0.r0", "summary.c0.r1",
             "temporal.c0.r0"]
    truth = torch.tensor([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    other = torch.tensor([[0, 0, 0, 5, 5], [1, 1, 1, 1, 1]])
    g = agreement.token_agreement_groups(other, truth, names)
    assert g == {"dynamic": pytest.approx(4 / 6), "dynamic_coarse": 0.75, "initial": 1.0}
    assert math.isnan(agreement.token_agreement_groups(other[:, :2], truth[:, :2],
                                                       names[:2])["dynamic"])


def test_token_agreement_and_latent_measures():
    a = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]])
    b = a.clone()
    b[0, 0] = 99
    b[1, 2] = 99
    res = agreement.token_agreement(a, b, names=["x", "y", "z"])
    assert res["per_codebook"] == {"x": 0.75, "y": 1.0, "z": 0.75}
    assert res["mean"] == pytest.approx(10 / 12)
    assert res["all_codebooks"] == 0.5

    z = torch.randn(3, 5, 8, dtype=torch.float64)
    assert agreement.latent_cosine(z, 3.0 * z) == pytest.approx(1.0)
    assert agreement.latent_cosine(z, -z) == pytest.approx(-1.0)


# ---------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("vrmse_step1", 0.5, "good"),
        ("vrmse_step1", 0.5000001, "fair"),
        ("vrmse_final", 1.0, "fair"),
        ("vrmse_final", 1.0000001, "poor"),
        ("token_agreement_dynamic", 0.8, "good"),
        ("token_agreement_dynamic", 0.7999, "fair"),
        ("token_agreement_dynamic", 0.4999, "poor"),
        ("token_agreement_coarse", 0.9, "good"),
        ("tokenizer_recon_mno_over_cno", 1.5, "good"),
        ("tokenizer_recon_mno_over_cno", 3.01, "poor"),
        ("utilization_mno", 0.9, "good"),
        ("utilization_mno", 0.49, "poor"),
        ("latent_cosine", 0.5, "fair"),
        ("correlation_time_fraction", 0.75, "good"),
        ("correlation_time_fraction", 0.2, "poor"),
        ("vrmse_step1", math.nan, "poor"),
        ("token_agreement_dynamic", math.inf, "poor"),
    ],
)
def test_verdict_boundaries(key, value, expected):
    assert verdicts({key: value})[key]["verdict"] == expected
    assert judge(value, THRESHOLDS[key]) == expected


def test_a_number_that_does_not_beat_its_baselines_is_poor():
    summary = {"vrmse_step1": 0.3, "token_agreement_dynamic": 0.85}
    base = {"vrmse_step1": {"persistence": 0.2, "spatial-mean": 1.0},
            "token_agreement_dynamic": {"persistence": 0.5, "shuffled": 0.4}}
    out = verdicts(summary, base)
    assert out["vrmse_step1"]["verdict"] == "poor"  # below threshold, but persistence is better
    assert out["vrmse_step1"]["baselines"]["persistence"] == {
        "value": 0.2, "beats": False, "mno_over_baseline": pytest.approx(1.5)}
    assert out["token_agreement_dynamic"]["verdict"] == "good"
    assert out["token_agreement_dynamic"]["baselines"]["shuffled"]["mno_minus_baseline"] == \
        pytest.approx(0.45)
    # Only the domain's applicable baselines count; a nan baseline can neither win nor lose.
    assert verdicts(summary, base, applicable=("spatial-mean",))["vrmse_step1"]["verdict"] == "good"
    nan_base = {"vrmse_step1": {"persistence": math.nan}}
    assert verdicts(summary, nan_base)["vrmse_step1"]["verdict"] == "good"


def test_domain_threshold_overrides():
    table = thresholds_for({"vrmse_final": {"good": 0.8}})
    assert table["vrmse_final"]["good"] == 0.8 and THRESHOLDS["vrmse_final"]["good"] == 0.5
    assert verdicts({"vrmse_final": 0.7}, thresholds=table)["vrmse_final"]["verdict"] == "good"
    with pytest.raises(KeyError, match="unknown criterion"):
        thresholds_for({"nope": {"good": 1}})
    with pytest.raises(KeyError, match="only good and fair"):
        thresholds_for({"vrmse_final": {"better": "higher"}})


def test_verdicts_skip_missing_keys_and_take_the_worst_overall():
    summary = {
        "vrmse_step1": 0.2,
        "token_agreement_dynamic": 0.6,
        "utilization_mno": 0.95,
        "latent_cosine": None,
        "something_else": 42.0,
    }
    out = verdicts(summary)
    assert set(out) == {"vrmse_step1", "token_agreement_dynamic", "utilization_mno", "overall"}
    assert out["token_agreement_dynamic"]["threshold"] == {"better": "higher", "good": 0.8,
                                                           "fair": 0.5}
    assert out["token_agreement_dynamic"]["verdict"] == "fair"
    assert out["overall"]["verdict"] == "fair"
    assert out["overall"]["value"] == {"good": 2, "fair": 1, "poor": 0}
    assert verdicts({**summary, "vrmse_final": 1.2})["overall"]["verdict"] == "poor"
    assert verdicts({}) == {}


def test_doc_table_matches_the_threshold_constant():
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|"
                         r"\s*([^|]*)\|", line)
        if match:
            named = tuple(b.strip() for b in match.group(5).split(",") if b.strip() != "—")
            rows[match.group(1)] = (match.group(2), float(match.group(3)), float(match.group(4)),
                                    named)
    assert set(rows) == set(THRESHOLDS)
    for key, row in THRESHOLDS.items():
        assert rows[key] == (row["better"], row["good"], row["fair"], row["baselines"]), key


# ---------------------------------------------------------------- plots


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_non_empty_pngs(tmp_path):
    history = []
    for step in range(1, 41):
        history.append({
            "step": step, "epoch": (step - 1) // 10, "loss": 1.0 / step, "traj": 0.8 / step,
            "commit": None if step < 5 else 0.01, "latent": None, "lr": 1e-3 * min(1, step / 5),
        })
        if step % 10 == 0:
            history.append({"epoch": (step - 1) // 10, "val_traj": 1.0 / step})
    history.append({"step": 41, "epoch": 4, "loss": math.nan, "traj": math.nan, "commit": 0.0,
                    "latent": None, "lr": 0.0})  # a skipped step must not break the log axis
    p = plots.plot_loss_curves(history, tmp_path / "a" / "loss.png")
    assert p == tmp_path / "a" / "loss.png"
    assert_png(p)
    assert_png(plots.plot_loss_curves([], tmp_path / "empty.png"))

    true = rollout(n=4, steps=9, c=2, h=12, w=12)
    pred = true + 0.1 * rollout(n=4, steps=9, c=2, h=12, w=12, seed=3)
    pred[0, -1] = math.nan
    assert_png(plots.plot_rollout_frames(true, pred, tmp_path / "frames.png"))
    assert_png(plots.plot_rollout_frames(true.numpy(), pred.numpy(), tmp_path / "f2.png",
                                         steps=[0, 8], channel=1, n_samples=1))
    one_d = torch.randn(2, 3, 1, 20)
    assert_png(plots.plot_rollout_frames(one_d, one_d + 0.1, tmp_path / "f1d.png"))
    with pytest.raises(ValueError, match="outside"):
        plots.plot_rollout_frames(true, pred, tmp_path / "bad.png", steps=[9])

    curves = {"MNO VRMSE": vrmse_per_step(pred, true), "persistence VRMSE": [0.0, 0.5, 0.9],
              "MNO nRMSE": nrmse_per_step(pred, true)}
    assert_png(plots.plot_error_vs_step(curves, tmp_path / "err.png"))
    assert_png(plots.plot_error_vs_step(curves, tmp_path / "err_log.png", log_y=True))
    assert_png(plots.plot_token_agreement({"INITIAL": 0.9, "SUMMARY": 0.6, "TEMPORAL": 0.3},
                                          tmp_path / "tokens.png"))
