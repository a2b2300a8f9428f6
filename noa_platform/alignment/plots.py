"""The alignment's heat map: one panel per method, its matrix with matched pairs on the diagonal."""

from __future__ import annotations

import os
from pathlib import Path

from noa_platform.alignment.compare import Alignment
from noa_platform.atomic import atomic_path

#: Tick labels are drawn only up to this many rows/columns (beyond, they are unreadable).
MAX_TICKS = 40


def plot_alignment(alignment: Alignment, path: str | os.PathLike) -> Path:
    """Write the heat maps of ``alignment`` (every method it holds) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = list(alignment.results.values())
    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results), 6.4), squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        cmap = "viridis_r" if result.method == "prototypes" else "viridis"
        image = ax.imshow(result.matrix, aspect="auto", interpolation="nearest", cmap=cmap)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_ylabel(f"{alignment.a} ({len(result.rows)})")
        ax.set_xlabel(f"{alignment.b} ({len(result.cols)})")
        for labels, set_ticks, set_labels in (
            (result.rows, ax.set_yticks, ax.set_yticklabels),
            (result.cols, ax.set_xticks, ax.set_xticklabels),
        ):
            if len(labels) <= MAX_TICKS:
                set_ticks(range(len(labels)))
                set_labels(labels, fontsize=5)
        if len(result.cols) <= MAX_TICKS:
            plt.setp(ax.get_xticklabels(), rotation=90)
        headline = "\n".join(
            f"{name} {value:.3g} (null {result.null[name]['null_mean']:.3g}"
            f" ± {result.null[name]['null_std']:.2g})"
            for name, value in list(result.scores.items())[:2]
            if name in result.null
        )
        ax.set_title(f"{result.method}: {result.matrix_label}\n{headline}", fontsize=8)
    fig.suptitle(f"alignment {alignment.a} ↔ {alignment.b}", fontsize=11)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
