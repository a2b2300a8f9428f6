"""Pictures of a training run and of its validation; each function writes one PNG.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot): no global figure registry,
no GUI backend chosen behind the caller's back, nothing left open after the function returns,
and safe to call from a headless trainer. Every function creates the parent folder, writes
``path`` and returns it as a :class:`~pathlib.Path`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noa_platform.atomic import atomic_path
from noa_platform.evaluation.verdicts import THRESHOLDS

#: Per-step loss components, in panel order; a component absent or None everywhere is omitted.
LOSS_COMPONENTS = ("loss", "traj", "commit", "latent")

DPI = 100


def _figure(width: float, height: float, layout: str | None = None) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    fig.clear()
    return path


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _positive(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """Keep the points a log axis can show (finite and > 0)."""
    kept = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y) and y > 0]
    return [x for x, _ in kept], [y for _, y in kept]


def plot_loss_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Loss components against optimizer step, one log-y panel each, plus the learning rate.

    ``history`` mixes per-step records ``{"step", "epoch", "loss", "traj", "commit", "latent",
    "lr"}`` (commit/latent may be None) and per-epoch validation records ``{"epoch",
    "val_traj"}``; a record with ``val_traj`` is a validation record. Validation points are
    drawn on the ``traj`` panel at the last step of their epoch (or, if no training record has
    that epoch, at the epoch number scaled by the steps per epoch seen). Values that are not
    finite or not positive cannot sit on a log axis and are left out (a skipped step is a gap).
    """
    train = [r for r in history if "val_traj" not in r and "step" in r]
    val = [r for r in history if "val_traj" in r]
    last_step: dict[int, int] = {}
    for r in train:
        e = r.get("epoch")
        if e is not None:
            last_step[int(e)] = max(last_step.get(int(e), r["step"]), r["step"])
    steps_per_epoch = max(1, max(last_step.values(), default=0) // max(1, len(last_step)))

    components = [c for c in LOSS_COMPONENTS if any(r.get(c) is not None for r in train)]
    if val and "traj" not in components:
        components.append("traj")
    has_lr = any(r.get("lr") is not None for r in train)
    n_panels = max(1, len(components) + int(has_lr))
    fig = _figure(4.0 * n_panels, 3.4)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    if not components and not has_lr:
        axes[0].text(0.5, 0.5, "no training records", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, name in zip(axes, components):
        xs, ys = _positive([r["step"] for r in train], [r.get(name) for r in train])
        if ys:
            ax.plot(xs, ys, lw=1.0, label=f"train {name}")
        if name == "traj" and val:
            vx = [last_step.get(int(r["epoch"]), int(r["epoch"]) * steps_per_epoch) for r in val]
            vx, vy = _positive(vx, [r["val_traj"] for r in val])
            if vy:
                ax.plot(vx, vy, "o-", lw=1.2, ms=4, label="validation traj")
        if ax.has_data():
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    if has_lr:
        ax = axes[len(components)]
        pts = [(r["step"], r["lr"]) for r in train if r.get("lr") is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.0)
        ax.set_title("learning rate")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _field_slice(x: np.ndarray) -> np.ndarray:
    """A field ``[*space]`` as something to draw: 1-D as is, 2-D as is, 3-D+ its middle slices."""
    while x.ndim > 2:
        x = x[x.shape[0] // 2]
    return x


def _finite_range(*arrays: np.ndarray) -> tuple[float, float]:
    vals = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def plot_rollout_frames(
    true: Any,
    pred: Any,
    path: str | os.PathLike[str],
    steps: Sequence[int] | None = None,
    channel: int = 0,
    n_samples: int = 3,
) -> Path:
    """CNO vs MNO frames side by side, with their absolute difference.

    ``true, pred: [N, T+1, C, *space]``. For each of the first ``n_samples`` samples, three
    rows (CNO, MNO, |MNO − CNO|) and one column per step of ``steps`` (default: five steps
    spread over 0..T). CNO and MNO share one colour scale per sample, taken from the CNO
    frames shown, so equal colours mean equal values and an MNO that leaves the true range
    saturates visibly; the error row has its own scale (0 to its largest finite value over the
    steps shown). 1-D fields are drawn as curves, 3-D fields as their middle slice.
    """
    t_np, p_np = _as_numpy(true), _as_numpy(pred)
    if t_np.shape != p_np.shape or t_np.ndim < 4:
        raise ValueError(
            f"true and pred must both be [N, T+1, C, *space], got {t_np.shape} and {p_np.shape}"
        )
    n_total, n_frames = t_np.shape[:2]
    if steps is None:
        spread = np.linspace(0, n_frames - 1, min(5, n_frames)).round().astype(int)
        steps = sorted(set(spread.tolist()))
    steps = [int(s) for s in steps]
    for s in steps:
        if not 0 <= s < n_frames:
            raise ValueError(f"step {s} is outside the rollout (steps 0..{n_frames - 1})")
    n_show = max(1, min(n_samples, n_total))
    is_1d = t_np.ndim == 4
    fig = _figure(2.4 * len(steps) + 1.0, 2.1 * 3 * n_show, layout="constrained")
    axes = fig.subplots(3 * n_show, len(steps), squeeze=False)
    for i in range(n_show):
        t_frames = [_field_slice(t_np[i, s, channel]) for s in steps]
        p_frames = [_field_slice(p_np[i, s, channel]) for s in steps]
        e_frames = [np.abs(p - t) for p, t in zip(p_frames, t_frames)]
        vlo, vhi = _finite_range(*t_frames)
        _, emax = _finite_range(np.zeros(1), *e_frames)
        rows = (("CNO", t_frames, (vlo, vhi), "viridis"),
                ("MNO", p_frames, (vlo, vhi), "viridis"),
                ("|MNO − CNO|", e_frames, (0.0, emax), "magma"))
        for r, (label, frames, (lo, hi), cmap) in enumerate(rows):
            image = None
            for j, (s, frame) in enumerate(zip(steps, frames)):
                ax = axes[3 * i + r, j]
                if is_1d:
                    ax.plot(frame, lw=1.0)
                    ax.set_ylim(lo, hi)
                    ax.tick_params(labelsize=6)
                else:
                    image = ax.imshow(frame, vmin=lo, vmax=hi, cmap=cmap, origin="lower")
                    ax.set_xticks([])
                    ax.set_yticks([])
                if i == 0 and r == 0:
                    ax.set_title(f"step {s}", fontsize=9)
                if j == 0:
                    ax.set_ylabel(f"sample {i}\n{label}", fontsize=8)
            if image is not None:
                fig.colorbar(image, ax=list(axes[3 * i + r]), fraction=0.02, pad=0.01)
    fig.suptitle(f"rollouts, channel {channel}", fontsize=10)
    return _save(fig, path)


def plot_error_vs_step(curves: Mapping[str, Any], path: str | os.PathLike[str],
                       log_y: bool = False, title: str = "rollout error") -> Path:
    """Error curves against rollout step, one line each (e.g. ``{"MNO VRMSE": [T+1], ...}``).

    Curves may differ in length; nan points (steps with nothing to be relative to) are gaps.
    ``log_y`` draws on a log axis, leaving out values that are not positive.
    """
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for name, curve in curves.items():
        y = _as_numpy(curve).ravel()
        x = np.arange(y.size)
        if log_y:
            keep = np.isfinite(y) & (y > 0)
            x, y = x[keep], y[keep]
        ax.plot(x, y, marker="o" if y.size <= 20 else None, ms=3, lw=1.2, label=name)
    if log_y and ax.has_data():
        ax.set_yscale("log")
    ax.set_xlabel("rollout step")
    ax.set_ylabel("error")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_token_agreement(per_codebook: Mapping[str, float], path: str | os.PathLike[str]) -> Path:
    """Bar chart of the fraction of tokens equal for MNO and CNO rollouts, per codebook.

    Dashed lines mark the "good" and "fair" thresholds of the ``token_agreement_dynamic``
    verdict (u0-only ``initial.*`` codebooks agree by construction; read them apart).
    """
    names = list(per_codebook)
    values = [float(per_codebook[n]) for n in names]
    fig = _figure(max(4.0, 0.6 * len(names) + 2.0), 3.6)
    ax = fig.subplots()
    ax.bar(range(len(names)), values, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 6 else 0,
                  ha="right" if len(names) > 6 else "center", fontsize=8)
    row = THRESHOLDS["token_agreement_dynamic"]
    ax.axhline(row["good"], ls="--", color="tab:green", lw=1, label=f"good ≥ {row['good']}")
    ax.axhline(row["fair"], ls="--", color="tab:orange", lw=1, label=f"fair ≥ {row['fair']}")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("fraction of equal tokens")
    ax.set_title("token agreement, MNO vs CNO")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)
