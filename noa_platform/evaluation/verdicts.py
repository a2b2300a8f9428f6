"""Post-training verdicts: each validation number judged "good", "fair" or "poor".

The thresholds live in :data:`THRESHOLDS`, one row per summary key; ``docs/validation.md``
repeats them in a table (a test keeps the two equal). A criterion is either *lower is better*
(good when ``value <= good``, fair when ``value <= fair``, else poor) or *higher is better*
(good when ``value >= good``, fair when ``value >= fair``); the boundaries themselves belong to
the better verdict. A value that is not a finite number (nan from a blown-up rollout, inf) is
poor: a number we cannot trust is no evidence of quality.

Keys missing from the summary (or set to None) are skipped: ``latent_cosine`` and
``latent_cv`` exist only when the latent loss was trained. ``overall`` is the worst verdict of
the criteria judged: every criterion is a necessary property of a usable NOA, so one poor
criterion makes the model poor whatever the others say.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypedDict


class Threshold(TypedDict):
    better: Literal["lower", "higher"]
    good: float
    fair: float
    meaning: str


#: The verdict table; docs/validation.md shows the same numbers.
THRESHOLDS: dict[str, Threshold] = {
    "vrmse_vs_persistence_step1": {
        "better": "lower", "good": 0.5, "fair": 1.0,
        "meaning": "MNO VRMSE / persistence VRMSE after 1 step",
    },
    "vrmse_vs_persistence_step8": {
        "better": "lower", "good": 0.5, "fair": 1.0,
        "meaning": "MNO VRMSE / persistence VRMSE after 8 steps",
    },
    "token_agreement": {
        "better": "higher", "good": 0.8, "fair": 0.5,
        "meaning": "fraction of tokens equal for MNO and CNO rollouts of the same (u0, θ)",
    },
    "tokenizer_recon_mno_over_cno": {
        "better": "lower", "good": 1.5, "fair": 3.0,
        "meaning": "tokenizer reconstruction error on MNO features / on CNO features",
    },
    "utilization_mno": {
        "better": "higher", "good": 0.9, "fair": 0.5,
        "meaning": "fraction of codes used by MNO rollouts",
    },
    "latent_cosine": {
        "better": "higher", "good": 0.5, "fair": 0.2,
        "meaning": "cosine similarity of MNO and CNO projected latents",
    },
    "latent_cv": {
        "better": "lower", "good": 0.1, "fair": 0.3,
        "meaning": "coefficient of variation of projected latent norms over time",
    },
    "correlation_time_fraction": {
        "better": "higher", "good": 0.75, "fair": 0.25,
        "meaning": "correlation time (first step with correlation < 0.8) / horizon",
    },
}

VERDICTS = ("good", "fair", "poor")
"""Ordered best to worst; ``overall`` takes the worst."""


def judge(value: float, threshold: Threshold) -> str:
    """The verdict of one value against one row of the table."""
    if not math.isfinite(value):
        return "poor"
    if threshold["better"] == "lower":
        if value <= threshold["good"]:
            return "good"
        return "fair" if value <= threshold["fair"] else "poor"
    if value >= threshold["good"]:
        return "good"
    return "fair" if value >= threshold["fair"] else "poor"


def verdicts(summary: Mapping[str, Any],
             thresholds: Mapping[str, Threshold] = THRESHOLDS) -> dict[str, dict[str, Any]]:
    """Judge every criterion present in ``summary``: ``{key: {"value", "threshold", "verdict"}}``.

    ``threshold`` is the table row (``better``, ``good``, ``fair``); keys of the summary that
    are not criteria are ignored. ``overall`` has ``value`` = how many criteria got each verdict
    and the worst verdict; it is absent when no criterion was present.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, row in thresholds.items():
        value = summary.get(key)
        if value is None:
            continue
        value = float(value)
        out[key] = {
            "value": value,
            "threshold": {"better": row["better"], "good": row["good"], "fair": row["fair"]},
            "verdict": judge(value, row),
        }
    if out:
        counts = {v: sum(1 for r in out.values() if r["verdict"] == v) for v in VERDICTS}
        worst = max((r["verdict"] for r in out.values()), key=VERDICTS.index)
        out["overall"] = {"value": counts, "threshold": "worst of the criteria", "verdict": worst}
    return out
