"""The cross-domain report: ``report.md`` and its pictures, written into one folder."""

from __future__ import annotations

import os
from pathlib import Path

from noa_platform.atomic import atomic_write_text
from noa_platform.reporting.collect import (
    EVALUATION_METRICS,
    HEADLINE,
    TOKENIZER_METRICS,
    RegistrySummary,
)
from noa_platform.reporting.plots import (
    alignment_domains,
    plot_alignment_matrix,
    plot_transfer_curves,
)

MATRIX_PNG = "alignment_matrix.png"
TRANSFER_PNG = "transfer_curves.png"


def _num(x: float) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def write_report(summary: RegistrySummary, out: str | os.PathLike) -> Path:
    """Write ``report.md`` (and the pictures it shows) into ``out``; returns its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Cross-domain report",
        "",
        f"Registry `{summary.root}`: "
        + ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in summary.counts.items())
        + ". Every number below is read from a registry row, named by its id.",
        "",
        "## Per-domain results",
        "",
    ]
    lines += _results(summary)
    lines += ["", "## Alignment", ""]
    lines += _alignments(summary, folder)
    lines += ["", "## Transfer", ""]
    lines += _transfers(summary, folder)
    path = folder / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _results(summary: RegistrySummary) -> list[str]:
    if not summary.results:
        return ["No domain registered."]
    names = list(EVALUATION_METRICS)
    out = [
        ("Evaluations: post-training validation of each domain's MNO (mean ± sample std over "
         "the domain's registered evaluations, n of them); tokenizer: the newest registered "
         "tokenizer's validation report."),
        "",
        "| domain | evaluations | " + " | ".join(names) + " | verdict | tokenizer | "
        + " | ".join(f"tok. {m}" for m in TOKENIZER_METRICS) + " |",
        "| --- " * (len(names) + len(TOKENIZER_METRICS) + 4) + "|",
    ]
    for r in summary.results:
        cells = []
        for name in names:
            if name in r.metrics:
                mean, std, n = r.metrics[name]
                cells.append(f"{mean:.3g} ± {std:.2g} (n {n})" if n > 1 else f"{mean:.3g}")
            else:
                cells.append("–")
        evals = ", ".join(r.evaluations[:3]) + (" …" if len(r.evaluations) > 3 else "")
        tok_cells = [_num(r.tokenizer_metrics[m]) if m in r.tokenizer_metrics else "–"
                     for m in TOKENIZER_METRICS]
        out.append(f"| {r.domain} | {evals or 'none'} | " + " | ".join(cells)
                   + f" | {r.verdict or '–'} | {r.tokenizer or 'none'} | "
                   + " | ".join(tok_cells) + " |")
    out += ["", "Metrics: " + "; ".join(f"`{k}` {v}" for k, v in EVALUATION_METRICS.items())
            + " (docs/validation.md)."]
    return out


def _alignments(summary: RegistrySummary, folder: Path) -> list[str]:
    if not summary.alignments:
        return ["No alignment registered (`noa align A B` registers one)."]
    plot_alignment_matrix(summary, folder / MATRIX_PNG)
    domains = alignment_domains(summary)
    out = [
        ("Newest registered alignment of each pair of domains; each headline score with the "
         "null of random codebooks of the same sizes (mean ± std) and its id "
         "(docs/alignment.md). The diagonal compares two tokenizers of the same domain."),
        "",
        f"![alignment matrix]({MATRIX_PNG})",
        "",
    ]
    for method, score in HEADLINE.items():
        out += [f"**{method}: `{score}`**", "",
                "| | " + " | ".join(domains) + " |", "| --- " * (len(domains) + 1) + "|"]
        for a in domains:
            cells = []
            for b in domains:
                cell = summary.alignments.get((a, b))
                s = cell.scores.get(method, {}).get(score) if cell else None
                cells.append(
                    f"{s['value']:.3g} (null {s['null_mean']:.3g} ± {s['null_std']:.2g}; "
                    f"{cell.id})" if s else "–"
                )
            out.append(f"| {a} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def _transfers(summary: RegistrySummary, folder: Path) -> list[str]:
    if not summary.transfers:
        return ["No transfer registered (`noa transfer --source A --target B` registers one)."]
    out = []
    if any(t.samples for t in summary.transfers):
        plot_transfer_curves(summary, folder / TRANSFER_PNG)
        out += [f"![transfer curves]({TRANSFER_PNG})", ""]
    out += [("MNO: test VRMSE of the target (mean over rollout steps; mean ± std over seeds) "
             "after fine-tuning the source's MNO on k target samples, against the same "
             "architecture trained from scratch on the same samples and steps. Tokenizer: the "
             "source's tokenizer reading the target's test features (docs/transfer.md)."), "",
            "| transfer | source → target | k | fine-tuned | from scratch |",
            "| --- | --- | --- | --- | --- |"]
    for t in summary.transfers:
        for k, ft, sc in zip(t.samples, t.finetune, t.scratch, strict=True):
            out.append(f"| {t.id} | {t.source} → {t.target} | {k} | {ft[0]:.3g} ± {ft[1]:.2g} "
                       f"| {sc[0]:.3g} ± {sc[1]:.2g} |")
    out += ["", "| transfer | readable | reconstruction ratio (source / target) | reason |",
            "| --- | --- | --- | --- |"]
    for t in summary.transfers:
        tok = t.tokenizer
        ratio = tok.get("reconstruction_ratio")
        out.append(f"| {t.id} | {tok.get('readable', '–')} | "
                   f"{_num(ratio) if ratio is not None else '–'} | {tok.get('reason') or ''} |")
    return out
