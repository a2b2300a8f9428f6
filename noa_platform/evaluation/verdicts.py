"""Post-training verdicts: each headline number judged "good", "fair" or "poor".

A verdict has two parts. **Against no-model baselines computed in the same run**: a number
that does not beat every applicable baseline (persistence, the spatial-mean forecast, a
shuffled trajectory, a constant latent — see ``docs/validation.md``) is "poor", whatever its
size: a learned operator worse than a forecast that needs no model shows no skill. **Against a
threshold**: *lower is better* criteria are good when ``value <= good`` and fair when
``value <= fair``; *higher is better* ones the other way round; boundaries belong to the
better verdict. A value that is not finite is poor.

The thresholds live in :data:`THRESHOLDS`, one row per summary key; ``docs/validation.md``
repeats them (a test keeps the two equal). A domain may override ``good``/``fair`` of any row
(``Domain.validation_thresholds``) where its physics needs it — a wave's error is mostly
phase, chaotic flow decorrelates by nature — and names the baselines that apply to it
(``Domain.baselines``). ``overall`` is the worst verdict of the criteria judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from noa_platform.api.domain import BASELINES


class Threshold(TypedDict):
    better: Literal["lower", "higher"]
    good: float
    fair: float
    baselines: tuple[str, ...]
    meaning: str


#: Every no-model baseline the report computes (see ``docs/validation.md``).
KNOWN_BASELINES = BASELINES

_VRMSE_BASELINES = ("persistence", "spatial-mean")

#: The verdict table; docs/validation.md shows the same numbers.
THRESHOLDS: dict[str, Threshold] = {
    "vrmse_step1": {
        "better": "lower", "good": 0.5, "fair": 1.0, "baselines": _VRMSE_BASELINES,
        "meaning": "VRMSE after 1 step (1 = the spatial-mean forecast)",
    },
    "vrmse_quarter": {
        "better": "lower", "good": 0.5, "fair": 1.0, "baselines": _VRMSE_BASELINES,
        "meaning": "VRMSE after a quarter of the horizon (step round(T/4))",
    },
    "vrmse_final": {
        "better": "lower", "good": 0.5, "fair": 1.0, "baselines": _VRMSE_BASELINES,
        "meaning": "VRMSE at the last step T",
    },
    "correlation_time_fraction": {
        "better": "higher", "good": 0.75, "fair": 0.25, "baselines": ("persistence",),
        "meaning": "first step with pattern correlation < 0.8 (aggregated over the test set), "
                   "over T",
    },
    "token_agreement_dynamic": {
        "better": "higher", "good": 0.8, "fair": 0.5, "baselines": ("persistence", "shuffled"),
        "meaning": "fraction of tokens equal for MNO and CNO, codebooks that depend on the "
                   "dynamics, all residual levels",
    },
    "token_agreement_coarse": {
        "better": "higher", "good": 0.9, "fair": 0.6, "baselines": ("persistence", "shuffled"),
        "meaning": "the same, coarse residual level only",
    },
    "latent_cosine": {
        "better": "higher", "good": 0.9, "fair": 0.5,
        "baselines": ("persistence", "shuffled", "constant-latent"),
        "meaning": "cosine of the tokenizer latents of MNO and CNO rollout features",
    },
    "tokenizer_recon_mno_over_cno": {
        "better": "lower", "good": 1.5, "fair": 3.0, "baselines": ("persistence",),
        "meaning": "tokenizer reconstruction error on MNO features / on CNO features",
    },
    "utilization_mno": {
        "better": "higher", "good": 0.9, "fair": 0.5, "baselines": (),
        "meaning": "fraction of codes used by MNO rollouts",
    },
}

VERDICTS = ("good", "fair", "poor")
"""Ordered best to worst; ``overall`` takes the worst."""


def judge(value: float, threshold: Mapping[str, Any]) -> str:
    """The verdict of one value against one row's thresholds (baselines aside)."""
    if not math.isfinite(value):
        return "poor"
    if threshold["better"] == "lower":
        if value <= threshold["good"]:
            return "good"
        return "fair" if value <= threshold["fair"] else "poor"
    if value >= threshold["good"]:
        return "good"
    return "fair" if value >= threshold["fair"] else "poor"


def compare(value: float, baseline: float, better: str) -> dict[str, Any]:
    """How ``value`` stands against one baseline: ``beats`` and by how much (a ratio for
    lower-is-better, a difference for higher-is-better). A baseline that is not finite (e.g.
    nothing to correlate with) cannot be beaten or lost to: ``beats`` is None."""
    if not (math.isfinite(baseline) and math.isfinite(value)):
        return {"value": baseline, "beats": None if not math.isfinite(baseline) else False}
    if better == "lower":
        ratio = value / baseline if baseline != 0 else (1.0 if value == 0 else math.inf)
        return {"value": baseline, "beats": value < baseline, "mno_over_baseline": ratio}
    return {"value": baseline, "beats": value > baseline, "mno_minus_baseline": value - baseline}


def thresholds_for(overrides: Mapping[str, Mapping[str, float]] | None = None
                   ) -> dict[str, Threshold]:
    """:data:`THRESHOLDS` with a domain's ``good``/``fair`` overrides applied."""
    table = {k: dict(v) for k, v in THRESHOLDS.items()}
    for key, row in (overrides or {}).items():
        if key not in table:
            raise KeyError(f"validation_thresholds: unknown criterion {key!r}; known: "
                           f"{', '.join(THRESHOLDS)}")
        unknown = set(row) - {"good", "fair"}
        if unknown:
            raise KeyError(f"validation_thresholds.{key}: only good and fair can be set, "
                           f"not {', '.join(sorted(unknown))}")
        table[key].update(row)
    return table  # type: ignore[return-value]


def verdicts(summary: Mapping[str, Any],
             baselines: Mapping[str, Mapping[str, float]] | None = None,
             *, thresholds: Mapping[str, Threshold] | None = None,
             applicable: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Judge every criterion present in ``summary``.

    ``baselines[key][name]`` is baseline ``name``'s value of criterion ``key``, computed in the
    same run; only names in both the row's ``baselines`` and ``applicable`` (the domain's list;
    default all) count. Returns ``{key: {"value", "threshold", "baselines", "beats_baselines",
    "verdict"}}`` plus ``overall`` (counts of each verdict and the worst one) when any
    criterion was judged. Keys missing from the summary (or None) are skipped.
    """
    table = thresholds or THRESHOLDS
    baselines = baselines or {}
    out: dict[str, dict[str, Any]] = {}
    for key, row in table.items():
        value = summary.get(key)
        if value is None:
            continue
        value = float(value)
        names = [n for n in row["baselines"] if applicable is None or n in applicable]
        against = {n: compare(value, float(baselines[key][n]), row["better"])
                   for n in names if n in baselines.get(key, {})}
        beats = all(c["beats"] is not False for c in against.values())
        verdict = judge(value, row) if beats else "poor"
        out[key] = {
            "value": value,
            "threshold": {"better": row["better"], "good": row["good"], "fair": row["fair"]},
            "baselines": against,
            "beats_baselines": beats,
            "verdict": verdict,
        }
    if out:
        counts = {v: sum(1 for r in out.values() if r["verdict"] == v) for v in VERDICTS}
        worst = max((r["verdict"] for r in out.values()), key=VERDICTS.index)
        out["overall"] = {"value": counts, "threshold": "worst of the criteria", "verdict": worst}
    return out
