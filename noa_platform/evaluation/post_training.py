"""Post-training validation: the MNO against the CNO on test θ never seen in training.

The MNO rolls out every test sample from its stored initial condition for the dataset's
whole horizon. The rollouts are compared with the CNO trajectories frame by frame (VRMSE,
nRMSE, error by spectral band, correlation time, invariant drift, all against the persistence
baseline), and through the tokenizer (reconstruction and utilization on MNO features against
CNO features, token agreement, and — when L_latent was trained — cosine similarity of the
projected MNO latents with the tokenizer's latents and their steadiness over time). Each
number is judged by :mod:`noa_platform.evaluation.verdicts`; everything goes to
``report.json`` in the run folder, with the pictures next to it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noa_platform.api import Domain
from noa_platform.atomic import atomic_write_json
from noa_platform.config import RunConfig
from noa_platform.data.store import DatasetFile
from noa_platform.evaluation import plots
from noa_platform.evaluation.agreement import latent_cosine, latent_cv, token_agreement
from noa_platform.evaluation.rollout_metrics import (
    band_errors,
    correlation_time,
    invariant_drift,
    nrmse_per_step,
    persistence_baseline,
    ratio_at_step,
    vrmse_per_step,
)
from noa_platform.evaluation.verdicts import verdicts
from noa_platform.models import count_parameters
from noa_platform.models.operator import NeuralOperator

LATENT_STEPS = 8  # rollout steps at which projected latents are compared


@torch.no_grad()
def rollout_with_latents(operator: NeuralOperator, u0: torch.Tensor, theta: torch.Tensor,
                         n_steps: int, latent_steps: set[int], projector: Any
                         ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """MNO rollout ``[B, n_steps + 1, ...]`` and the projected bottleneck at chosen steps."""
    frames, projected = [u0], {}
    u = u0
    for t in range(1, n_steps + 1):
        u, latent = operator.forward_with_latent(u, theta)
        if projector is not None and t in latent_steps:
            projected[t] = projector(latent)
        frames.append(u)
    return torch.stack(frames, dim=1), projected


def _curve(x: torch.Tensor) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in x]


def validate_run(domain: Domain, operator: NeuralOperator, tokenizer: Any, ds: DatasetFile,
                 run_dir: str | os.PathLike, config: RunConfig, *, projector: Any = None,
                 device: torch.device | str = "cpu", log: Callable[[str], None] = print,
                 batch_size: int = 16) -> Path:
    """Validate ``operator`` on the test split of ``ds``; returns the path of ``report.json``."""
    from noa_platform.features.selection import run_feature_set

    # The run's configured families: those the tokenizer was fitted on.
    extract_features = run_feature_set(config)
    run_dir = Path(run_dir)
    idx = ds.split("test")
    if config.training.validation_samples:
        idx = idx[:config.training.validation_samples]
    true = torch.from_numpy(ds.trajectories(idx))
    theta = torch.from_numpy(ds.params("unit")[idx]).float()
    T = true.shape[1] - 1
    latent_steps = {int(round(x)) for x in np.linspace(1, T, min(LATENT_STEPS, T))}
    operator = operator.to(device).eval()
    if projector is not None:
        projector = projector.to(device).eval()
    preds, projected = [], []
    for s in range(0, len(idx), batch_size):
        p, lat = rollout_with_latents(operator, true[s:s + batch_size, 0].to(device),
                                      theta[s:s + batch_size].to(device), T, latent_steps,
                                      projector)
        preds.append(p.cpu())
        if lat:
            projected.append(torch.stack([lat[t].cpu() for t in sorted(lat)], dim=1))
    pred = torch.cat(preds)

    vrmse, nrmse = vrmse_per_step(pred, true), nrmse_per_step(pred, true)
    persistence = persistence_baseline(true)
    vrmse_p = vrmse_per_step(persistence, true)
    corr = correlation_time(pred, true)
    bands = band_errors(pred, true)
    grid = domain.grid_for(true.shape[-1])
    values = torch.from_numpy(ds.params("value")[idx])
    drift = invariant_drift(
        pred, true, {k: (lambda f, th, inv=v: inv.fn(f, grid, th))
                     for k, v in domain.invariants.items()}, values)

    with torch.no_grad():
        f_mno, f_cno = extract_features(pred), extract_features(true)
    from noa_platform.tokenizer import report as tokenizer_report

    rep_mno, rep_cno = tokenizer_report(tokenizer, f_mno), tokenizer_report(tokenizer, f_cno)
    agreement = token_agreement(tokenizer.tokenize(f_mno), tokenizer.tokenize(f_cno),
                                tokenizer.codebook_names)
    summary: dict[str, Any] = {
        "vrmse_step1": float(vrmse[1]), "vrmse_step8": float(vrmse[min(8, T)]),
        "persistence_vrmse_step1": float(vrmse_p[1]),
        "persistence_vrmse_step8": float(vrmse_p[min(8, T)]),
        "vrmse_vs_persistence_step1": ratio_at_step(vrmse, vrmse_p, 1),
        "vrmse_vs_persistence_step8": ratio_at_step(vrmse, vrmse_p, min(8, T)),
        "nrmse_final": float(nrmse[-1]),
        "correlation_time": corr.time, "correlation_time_fraction": corr.fraction,
        "token_agreement": agreement["mean"],
        "tokenizer_recon_mno": rep_mno["reconstruction_mse"],
        "tokenizer_recon_cno": rep_cno["reconstruction_mse"],
        "tokenizer_recon_mno_over_cno": rep_mno["reconstruction_mse"] /
        max(rep_cno["reconstruction_mse"], 1e-12),
        "utilization_mno": rep_mno["mean_utilization"],
        "utilization_cno": rep_cno["mean_utilization"],
    }
    if projected:
        proj = torch.cat(projected)  # [N, S, D]
        goals = []
        for t in sorted(latent_steps):
            with torch.no_grad():
                goals.append(tokenizer.latent_vector(extract_features(true[:, :t + 1])))
        goal = torch.stack(goals, dim=1)
        summary["latent_cosine"] = latent_cosine(proj, goal)
        summary["latent_cv"] = latent_cv(proj)
    judged = verdicts(summary)

    pictures = {
        "loss_curves": plots.plot_loss_curves(_read_metrics(run_dir / "metrics.jsonl"),
                                              run_dir / "loss_curves.png"),
        "rollout_frames": plots.plot_rollout_frames(true, pred, run_dir / "rollout_frames.png"),
        "error_vs_step": plots.plot_error_vs_step(
            {"MNO VRMSE": vrmse, "persistence VRMSE": vrmse_p, "MNO nRMSE": nrmse},
            run_dir / "error_vs_step.png"),
        "token_agreement": plots.plot_token_agreement(agreement["per_codebook"],
                                                      run_dir / "token_agreement.png"),
    }
    mno_info = json.loads((run_dir / "mno.json").read_text()) if (run_dir / "mno.json").exists() \
        else {}
    report = {
        "domain": domain.name, "domain_version": domain.version,
        "dataset": str(ds.path), "dataset_fingerprint": ds.fingerprint,
        "test_samples": len(idx), "horizon": T,
        "mno": {**mno_info, "parameters": count_parameters(operator.architecture)},
        "summary": summary, "verdicts": judged,
        "curves": {
            "vrmse": _curve(vrmse), "persistence_vrmse": _curve(vrmse_p), "nrmse": _curve(nrmse),
            "correlation": _curve(corr.correlation_per_step),
            "band_errors": {k: _curve(v) for k, v in bands.items()},
        },
        "invariant_drift": {k: {m: (_curve(v) if torch.is_tensor(v) else v)
                                for m, v in d.items()} for k, d in drift.items()},
        "token_agreement": agreement,
        "tokenizer_on_mno": {k: rep_mno[k] for k in ("reconstruction_mse", "mean_utilization",
                                                     "min_utilization", "token_entropy_bits")},
        "tokenizer_on_cno": {k: rep_cno[k] for k in ("reconstruction_mse", "mean_utilization",
                                                     "min_utilization", "token_entropy_bits")},
        "pictures": {k: str(v) for k, v in pictures.items()},
    }
    path = run_dir / "report.json"
    atomic_write_json(path, report, default=float)
    log(f"validation on {len(idx)} test samples: VRMSE step 1 {summary['vrmse_step1']:.4f} "
        f"(persistence {summary['persistence_vrmse_step1']:.4f}), step {min(8, T)} "
        f"{summary['vrmse_step8']:.4f} (persistence {summary['persistence_vrmse_step8']:.4f}), "
        f"token agreement {summary['token_agreement']:.2f}; overall "
        f"{judged.get('overall', {}).get('verdict', '?')}")
    return path


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
