"""The report's pictures: the alignment matrices and the transfer curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noa_platform.atomic import atomic_path
from noa_platform.reporting.collect import HEADLINE, RegistrySummary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def alignment_domains(summary: RegistrySummary) -> list[str]:
    return sorted(set(summary.domains) | {d for pair in summary.alignments for d in pair})


def plot_alignment_matrix(summary: RegistrySummary, path: Path) -> Path:
    """One panel per method: the headline score against its null, ``(value - null mean) /
    null std`` signed so that positive is better than chance; the value is written in the
    cell. Blank: no alignment registered for the pair."""
    plt = _pyplot()
    domains = alignment_domains(summary)
    n = len(domains)
    fig, axes = plt.subplots(1, len(HEADLINE), figsize=(4.6 * len(HEADLINE), 4.2),
                             squeeze=False)
    for ax, (method, score) in zip(axes[0], HEADLINE.items(), strict=True):
        z = np.full((n, n), np.nan)
        for i, a in enumerate(domains):
            for j, b in enumerate(domains):
                cell = summary.alignments.get((a, b))
                value = cell.standardized(method, score) if cell else None
                if value is not None:
                    z[i, j] = value
                    raw = cell.scores[method][score]["value"]
                    ax.text(j, i, f"{raw:.3g}\nz {value:+.1f}", ha="center", va="center",
                            fontsize=7, color="black")
        limit = max(3.0, float(np.nanmax(np.abs(z)))) if np.isfinite(z).any() else 3.0
        image = ax.imshow(z, cmap="coolwarm_r", vmin=-limit, vmax=limit)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="z vs null (+ = better)")
        ax.set_xticks(range(n), domains, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n), domains, fontsize=7)
        ax.set_title(f"{method}: {score}", fontsize=9)
    fig.suptitle("alignment across domains (newest alignment per pair)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def plot_transfer_curves(summary: RegistrySummary, path: Path) -> Path:
    """Per registered transfer: test VRMSE against k target samples, fine-tuned and from
    scratch (mean ± standard deviation over seeds)."""
    plt = _pyplot()
    rows = [t for t in summary.transfers if t.samples]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.4 * len(rows), 3.8), squeeze=False)
    for ax, t in zip(axes[0], rows, strict=True):
        for label, curve in (("fine-tuned", t.finetune), ("from scratch", t.scratch)):
            mean = np.array([m for m, _ in curve])
            std = np.array([s for _, s in curve])
            ax.errorbar(t.samples, mean, yerr=std, marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xlabel(f"samples of {t.target}")
        ax.set_ylabel("test VRMSE (mean over steps)")
        ax.set_title(f"{t.source} → {t.target} ({t.id})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
