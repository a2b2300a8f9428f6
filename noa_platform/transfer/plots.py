"""The transfer curve: target test VRMSE against k, fine-tuned and from scratch."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noa_platform.atomic import atomic_path


def plot_transfer(mno: Mapping[str, Any], title: str, path: str | os.PathLike[str]) -> Path:
    """Mean over seeds with a ± one-standard-deviation band and every seed's point, for the
    fine-tuned and the scratch runs; the persistence forecast and the target's own MNO
    (trained on its whole training split) as horizontal references where present."""
    fig = Figure(figsize=(6.4, 4.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ks = [int(k) for k in mno["samples"]]
    for kind, colour in (("finetune", "tab:blue"), ("scratch", "tab:orange")):
        runs = [np.asarray(mno[kind][str(k)], dtype=float) for k in ks]
        mean = np.array([r.mean() for r in runs])
        std = np.array([r.std(ddof=1) if len(r) > 1 else 0.0 for r in runs])
        label = "fine-tuned from the source" if kind == "finetune" else "from scratch"
        ax.plot(ks, mean, "o-", color=colour, label=f"{label} (mean ± std)")
        ax.fill_between(ks, mean - std, mean + std, color=colour, alpha=0.2)
        for k, r in zip(ks, runs):
            ax.scatter([k] * len(r), r, color=colour, s=10, alpha=0.6)
    refs = (("persistence", "persistence", "grey"),
            ("target_mno", "target's own MNO (whole training split)", "tab:green"))
    for key, label, colour in refs:
        if mno.get(key) is not None:
            ax.axhline(mno[key], color=colour, ls="--", lw=1, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("target training samples k")
    ax.set_ylabel(f"test VRMSE ({mno['metric']})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out
