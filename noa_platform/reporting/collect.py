"""What ``noa report`` reads from the registry, as plain data: every number comes from a
registered row's metrics, with the row's id beside it.

* **Per-domain results**: each domain's registered evaluations (``noa train``'s post-training
  validation; metrics documented in docs/validation.md) and its newest tokenizer's report.
  With several evaluations of a domain (seeds, reruns) each metric is their mean and sample
  standard deviation, and the newest one's verdict is shown.
* **Alignment matrix**: the newest alignment of every ordered pair of domains (registry domain
  ``A->B``; the scores are symmetric in A and B, so ``B->A`` fills the same cells when ``A->B``
  is missing). One matrix per method, of its headline score, with the score's null.
* **Transfer**: every registered transfer's MNO curve (test VRMSE against the number of target
  samples, fine-tuned and from scratch, mean and spread over seeds) and its tokenizer transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Evaluation metrics shown per domain, in order, with what they are.
EVALUATION_METRICS = {
    "vrmse_step1": "test VRMSE at step 1",
    "vrmse_quarter": "test VRMSE at a quarter of the horizon",
    "vrmse_final": "test VRMSE at the horizon",
    "correlation_time_fraction": "share of the horizon with correlation above threshold",
    "token_agreement_dynamic": "token agreement of rollouts with the truth (dynamic tokens)",
    "tokenizer_recon_mno_over_cno": "tokenizer reconstruction, MNO rollouts over truth",
}

#: Tokenizer metrics shown per domain (the validation split's report).
TOKENIZER_METRICS = ("reconstruction_mse", "min_utilization", "min_perplexity_ratio",
                     "n_codebooks")

#: The headline score of each alignment method in the matrix.
HEADLINE = {"prototypes": "assignment_cost", "geometry": "gw_discrepancy",
            "cooccurrence": "ami"}


@dataclass
class DomainResults:
    domain: str
    evaluations: list[str]  # ids, newest first
    metrics: dict[str, tuple[float, float, int]]  # name -> (mean, std, n)
    verdict: str | None
    tokenizer: str | None
    tokenizer_metrics: dict[str, float]


@dataclass
class AlignmentCell:
    id: str
    a: str
    b: str
    scores: dict[str, dict[str, dict[str, Any]]]  # method -> score -> {value, null_mean, ...}

    def standardized(self, method: str, score: str) -> float | None:
        """``(value - null mean) / null std``, signed so that positive is better than chance."""
        s = self.scores.get(method, {}).get(score)
        if not s or s.get("null_std") in (None, 0):
            return None
        z = (s["value"] - s["null_mean"]) / s["null_std"]
        return float(z if s.get("better") == "higher" else -z)


@dataclass
class TransferRow:
    id: str
    source: str
    target: str
    samples: list[int]
    finetune: list[tuple[float, float]]  # (mean, std) per k
    scratch: list[tuple[float, float]]
    tokenizer: dict[str, Any]


@dataclass
class RegistrySummary:
    root: str
    domains: list[str]
    results: list[DomainResults] = field(default_factory=list)
    alignments: dict[tuple[str, str], AlignmentCell] = field(default_factory=dict)
    transfers: list[TransferRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _pair(domain: str) -> tuple[str, str] | None:
    parts = domain.split("->")
    return (parts[0], parts[1]) if len(parts) == 2 else None


def collect(reg) -> RegistrySummary:
    """Read everything the report shows from an open :class:`~noa_platform.registry.Registry`."""
    entries = reg.list()
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    single = sorted({e.domain for e in entries if _pair(e.domain) is None})
    summary = RegistrySummary(root=str(reg.root), domains=single, counts=counts)

    for domain in single:
        # The final table reads test-split reports only (val reports are for choosing).
        evals = [e for e in reg.list(kind="evaluation", domain=domain)
                 if e.metrics.get("split", "test") == "test"]
        tok = reg.latest("tokenizer", domain)
        metrics = {}
        for name in EVALUATION_METRICS:
            values = [e.metrics[name] for e in evals
                      if isinstance(e.metrics.get(name), (int, float))]
            if values:
                metrics[name] = (float(np.mean(values)),
                                 float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                 len(values))
        val = tok.metrics.get("val", {}) if tok else {}
        summary.results.append(DomainResults(
            domain=domain,
            evaluations=[e.id for e in evals],
            metrics=metrics,
            verdict=evals[0].metrics.get("verdict") if evals else None,
            tokenizer=tok.id if tok else None,
            tokenizer_metrics={k: val[k] for k in TOKENIZER_METRICS if k in val},
        ))

    for e in reg.list(kind="alignment"):  # newest first: the first of a pair wins
        pair = _pair(e.domain)
        if pair is None:
            continue
        cell = AlignmentCell(id=e.id, a=pair[0], b=pair[1], scores=e.metrics)
        summary.alignments.setdefault(pair, cell)
    for (a, b), cell in list(summary.alignments.items()):
        summary.alignments.setdefault((b, a), cell)

    for e in reg.list(kind="transfer"):
        pair = _pair(e.domain)
        mno = e.metrics.get("mno") or {}
        stats = mno.get("summary") or {}
        samples = sorted(int(k) for k in stats)
        summary.transfers.append(TransferRow(
            id=e.id,
            source=pair[0] if pair else e.domain,
            target=pair[1] if pair else "?",
            samples=samples,
            finetune=[(stats[str(k)]["finetune"]["mean"], stats[str(k)]["finetune"]["std"])
                      for k in samples],
            scratch=[(stats[str(k)]["scratch"]["mean"], stats[str(k)]["scratch"]["std"])
                     for k in samples],
            tokenizer=e.metrics.get("tokenizer") or {},
        ))
    return summary
