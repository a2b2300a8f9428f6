"""The conformance kit: the toy domain passes it, and copies of the toy that break one promise
each fail the check named after that promise (and only checks that follow from it)."""

from __future__ import annotations

import json

import pytest
import torch

from noa_platform.api import Channel, Invariant
from noa_platform.testing import (
    CHECKS,
    CheckReport,
    ToyDomain,
    check_domain,
    parametrize_with_checks,
    yield_checks,
)
from noa_platform.testing.toy_domain import DecaySolver


@parametrize_with_checks([ToyDomain()])
def test_toy_domain_conforms(domain, check):
    check(domain)


# --------------------------------------------------------------------------------- broken toys


class _Broken(DecaySolver):
    """The toy's exact solver with one defect, chosen by ``defect``."""

    def __init__(self, space, channels, defect):
        super().__init__(space, channels)
        self.defect = defect

    def rollout(self, u0, params, n_frames, *, grid, frame_dt, seeds=None, noise_amplitude=0.0):
        if self.defect == "no-theta-check":
            self.space = _Unchecked()
        if self.defect == "theta-error-unnamed":
            try:
                self.space.validate(params)
            except ValueError:
                raise ValueError("bad parameters") from None
        traj = super().rollout(u0, params, n_frames, grid=grid, frame_dt=frame_dt, seeds=seeds,
                               noise_amplitude=noise_amplitude)
        if self.defect == "batch-mean":  # couples samples through a batch statistic
            traj[:, 1:] += 1e-3 * u0.mean()
        if self.defect == "global-rng":  # noise not drawn from the sample's seed
            traj[:, 1:] += 1e-3 * torch.rand(traj[:, 1:].shape, dtype=traj.dtype)
        if self.defect == "frame-zero-stepped":  # frame 0 is the state after one step
            traj = super().rollout(u0, params, n_frames + 1, grid=grid, frame_dt=frame_dt)[:, 1:]
        if self.defect == "forgets-frame-zero":
            traj = traj[:, 1:]
        if self.defect == "always-float32":
            traj = traj.float()
        return traj


class _Unchecked:
    def validate(self, values):
        return None


def broken_toy(defect: str) -> ToyDomain:
    d = ToyDomain(f"toy-{defect}")
    d.solver = _Broken(d.parameter_space, len(d.channels), defect)
    return d


@pytest.mark.parametrize("defect, failing", [
    ("batch-mean", {"batch_independence"}),
    ("global-rng", {"replay", "batch_independence"}),
    ("frame-zero-stepped", {"frame_zero"}),
    ("forgets-frame-zero", {"rollout_shape", "frame_zero"}),
    ("always-float32", {"dtype_and_device", "frame_zero"}),
    ("no-theta-check", {"refuses_out_of_range_theta"}),
    ("theta-error-unnamed", {"refuses_out_of_range_theta"}),
])
def test_a_broken_toy_fails_the_check_named_after_its_defect(defect, failing):
    report = check_domain(broken_toy(defect), select=[c.name for c in CHECKS
                                                      if c.name != "architecture"])
    assert set(report.failed) == failing, report.table()
    for name in failing:
        assert report[name].reason and "\n" not in report[name].reason


def test_refusal_reason_says_whether_the_error_names_the_parameter():
    unnamed = check_domain(broken_toy("theta-error-unnamed"), select=["refuses_out_of_range_theta"])
    assert "does not name the parameter" in unnamed["refuses_out_of_range_theta"].reason
    silent = check_domain(broken_toy("no-theta-check"), select=["refuses_out_of_range_theta"])
    assert "accepted out-of-range θ (rate = 100" in silent["refuses_out_of_range_theta"].reason


def test_a_falsely_conserved_invariant_fails_conservation():
    d = ToyDomain("toy-false-conservation")
    mean = d.invariants["mean"]
    d.invariants = {"mean": Invariant("mean", mean.fn, conserved=True, rtol=1e-6)}
    report = check_domain(d, select=["conserved_invariants", "invariants_signature"])
    assert report.failed == ["conserved_invariants"]
    assert "drifts" in report["conserved_invariants"].reason
    # The toy itself declares nothing conserved: the check does not apply.
    assert check_domain(ToyDomain(), select=["conserved_invariants"])[
        "conserved_invariants"].status == "skip"


def test_bare_channel_names_set_on_an_instance_fail_the_channel_check():
    d = ToyDomain("toy-bare-channels")
    d.channels = ("u0", "u1")  # bypasses Domain's conversion of class attributes
    report = check_domain(d, select=["channels"])
    assert report.failed == ["channels"] and "Channel" in report["channels"].reason


def test_missing_preset_and_bad_reads_fail_their_checks():
    d = ToyDomain("toy-no-standard")
    d.presets = {"quick": d.presets["quick"]}
    report = check_domain(d, select=["presets"])
    assert report.failed == ["presets"] and "standard" in report["presets"].reason
    d = ToyDomain("toy-bad-reads")
    d.parameter_space.reads["boost"] = {"x1": ("rate",)}  # a choice missing
    report = check_domain(d, select=["parameter_reads"])
    assert report.failed == ["parameter_reads"] and "reads" in report["parameter_reads"].reason


def test_check_domain_never_raises_for_a_broken_domain():
    class Nothing:
        name = "nothing"

    report = check_domain(Nothing())  # type: ignore[arg-type]
    assert len(report) == len(CHECKS) and not report.ok
    assert report["attributes"].status == "fail"
    assert all(r.status in ("fail", "skip") for r in report)
    assert any(r.reason.startswith("raised AttributeError") for r in report)


def test_report_table_and_json():
    report = check_domain(ToyDomain(), select=["attributes", "conserved_invariants"])
    assert isinstance(report, CheckReport) and report.ok
    lines = report.table().splitlines()
    assert lines[0].split()[:3] == ["check", "status", "time"]
    assert lines[1].split()[:2] == ["attributes", "pass"]
    assert lines[2].split()[:2] == ["conserved_invariants", "skip"]
    assert "conforms: 1 passed, 0 failed, 1 skipped" in lines[-1]
    data = json.loads(report.dumps())
    assert data["ok"] is True and [c["name"] for c in data["checks"]] == [
        "attributes", "conserved_invariants"]


def test_unknown_check_name_is_refused():
    with pytest.raises(ValueError, match="unknown check"):
        yield_checks(["nope"])


def test_check_names_are_unique():
    names = [c.name for c in CHECKS]
    assert len(set(names)) == len(names)


def test_a_failing_check_raises_an_assertion_naming_domain_and_check():
    d = broken_toy("batch-mean")
    check = yield_checks(["batch_independence"])[0]
    with pytest.raises(AssertionError, match="'toy-batch-mean' fails batch_independence"):
        check(d)


def test_channel_roles_are_reported():
    d = ToyDomain("toy-roles")
    d.channels = (Channel("u", "state", "m"), Channel("u_t", "rate", "m/s", rate_of="u"))
    report = check_domain(d, select=["channels"])
    assert report.ok and "u_t (rate, m/s)" in report["channels"].reason


def test_unknown_verdict_rows_and_baselines_fail_the_attribute_check():
    d = ToyDomain()
    d.validation_thresholds = {"vrmse_fnal": {"good": 1.0}}
    d.baselines = ("persistence", "oracle")
    result = check_domain(d, select=["attributes"])["attributes"]
    assert result.status == "fail"
    assert "unknown criterion 'vrmse_fnal'" in result.reason
    assert "baselines: unknown 'oracle'" in result.reason
