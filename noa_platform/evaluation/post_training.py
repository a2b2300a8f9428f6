"""Post-training validation: the MNO against the CNO on test θ never seen in training, beside
the no-model baselines computed in the same run.

The MNO rolls out every test sample from its stored first frame for the dataset's whole
horizon. The same metrics are computed for the MNO and for forecasts that need no model:

* **persistence** — the first frame, unchanged;
* **spatial-mean** — each field replaced by its own (true) spatial mean: VRMSE 1 exactly;
* **shuffled** — the true trajectory of another test sample of the same category;
* **constant-latent** — for latent measures, the mean tokenizer latent of the CNO test set.

Rollout metrics (VRMSE per step, overall, per channel and per value of each categorical
parameter; nRMSE; error by spectral band; pattern correlation aggregated over the test set and
correlation time; invariant drift) and tokenizer measures (token agreement over the codebooks
that depend on the dynamics, at the coarse level and all levels, with the u0-only codebooks
apart; cosine of tokenizer latents; reconstruction and utilization on MNO features; the
alignment losses on the MNO rollout beside their value on the CNO truth). Each headline number
is judged by :mod:`noa_platform.evaluation.verdicts` against its baselines and thresholds;
everything goes to ``report.json`` in the run folder, with the pictures next to it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from noa_platform.api import CategoricalParameter, Domain
from noa_platform.atomic import atomic_write_json
from noa_platform.config import RunConfig
from noa_platform.data.store import DatasetFile
from noa_platform.evaluation.agreement import latent_cosine, token_agreement, token_agreement_groups
from noa_platform.evaluation.rollout_metrics import (
    band_errors,
    correlation_time,
    invariant_drift,
    nrmse_per_step,
    persistence_baseline,
    shuffled_forecast,
    spatial_mean_forecast,
    vrmse_per_channel,
    vrmse_per_step,
)
from noa_platform.evaluation.verdicts import thresholds_for, verdicts
from noa_platform.models import count_parameters
from noa_platform.models.operator import NeuralOperator
from noa_platform.models.rollout import rollout

#: Splits a report may read: ``test`` for the final table, ``val`` for choosing settings.
REPORT_SPLITS = ("test", "val")


def check_report_split(split: str) -> None:
    """Refuse a split the report cannot read (the pipeline asks before any work)."""
    if split not in REPORT_SPLITS:
        raise ValueError(f"split must be one of {', '.join(REPORT_SPLITS)}, got {split!r}")


LATENT_STEPS = 8  # rollout steps at which projected bottleneck latents are compared
#: The baselines that are forecasts of the fields (the constant latent is not one).
FORECAST_BASELINES = ("persistence", "spatial-mean", "shuffled")


def _curve(x: Tensor) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in x]


def _mean_projection(projector: Any, latents: list[Tensor]) -> Tensor:
    """Projected bottleneck latents averaged over the sampled steps: ``[B, D]``."""
    return torch.stack([projector(z) for z in latents]).mean(0).cpu()


@torch.no_grad()
def _batched_rollout(operator: NeuralOperator, true: Tensor, theta: Tensor, device: Any,
                     batch_size: int, latent_steps: set[int], projector: Any
                     ) -> tuple[Tensor, Tensor | None]:
    """MNO rollouts ``[N, T+1, ...]`` from the CNO first frames and, with a projector, the
    projected bottleneck at ``latent_steps`` averaged over them ``[N, D]``."""
    steps = latent_steps if projector is not None else set()
    preds, projected = [], []
    for s in range(0, len(true), batch_size):
        r = rollout(operator, true[s:s + batch_size, 0].to(device),
                    theta[s:s + batch_size].to(device), true.shape[1] - 1, latent_steps=steps)
        preds.append(r.frames.cpu())
        if projector is not None:
            projected.append(_mean_projection(projector, [r.latents[k] for k in sorted(steps)]))
    return torch.cat(preds), (torch.cat(projected) if projected else None)


@torch.no_grad()
def _teacher_forced_projection(operator: NeuralOperator, true: Tensor, theta: Tensor,
                               device: Any, batch_size: int, latent_steps: set[int],
                               projector: Any) -> Tensor:
    """The floor of L_latent: the projected bottleneck when every step's input is the CNO
    frame before it, averaged over ``latent_steps``: ``[N, D]``."""
    out = []
    for s in range(0, len(true), batch_size):
        t, th = true[s:s + batch_size].to(device), theta[s:s + batch_size].to(device)
        out.append(_mean_projection(projector, [operator.forward_with_latent(t[:, k - 1], th)[1]
                                                for k in sorted(latent_steps)]))
    return torch.cat(out)


def _groups(domain: Domain, values: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Sample masks per value of each categorical parameter."""
    out = {}
    for j, p in enumerate(domain.parameter_space.parameters):
        if isinstance(p, CategoricalParameter):
            out[p.name] = {c: values[:, j] == k for k, c in enumerate(p.choices)}
    return out


def validate_run(domain: Domain, operator: NeuralOperator, tokenizer: Any, ds: DatasetFile,
                 run_dir: str | os.PathLike, config: RunConfig, *, projector: Any = None,
                 device: torch.device | str = "cpu", log: Callable[[str], None] = print,
                 batch_size: int = 16, split: str = "test") -> Path:
    """Validate ``operator`` on ``split`` of ``ds`` (the test split; ``"val"`` when choosing
    settings, so that the test split is read once, for the final table); returns the path of
    ``report.json``."""
    # Imported here: plots loads matplotlib, which nothing else of this module needs, so
    # importing the module (for check_report_split, as the pipeline does) stays light.
    from noa_platform.evaluation import plots
    from noa_platform.features.selection import run_feature_set
    from noa_platform.tokenizer import report as tokenizer_report

    # The run's configured families: those the tokenizer was fitted on.
    extract_features = run_feature_set(config)
    run_dir = Path(run_dir)
    check_report_split(split)
    idx = ds.split(split)
    if config.training.validation_samples:
        idx = idx[:config.training.validation_samples]
    true = torch.from_numpy(ds.trajectories(idx))
    values = ds.params("value")[idx]
    theta = torch.from_numpy(domain.conditioning(values))
    T = true.shape[1] - 1
    quarter = max(1, round(T / 4))
    latent_steps = {int(round(x)) for x in np.linspace(1, T, min(LATENT_STEPS, T))}
    operator = operator.to(device).eval()
    if projector is not None:
        projector = projector.to(device).eval()
    pred, projected = _batched_rollout(operator, true, theta, device, batch_size, latent_steps,
                                       projector)

    groups = _groups(domain, values)
    first_cat = next(iter(groups.values()), {})
    labels = np.zeros(len(idx), dtype=int)
    for k, mask in enumerate(first_cat.values()):
        labels[mask] = k
    forecasts = {"mno": pred, "persistence": persistence_baseline(true),
                 "spatial-mean": spatial_mean_forecast(true),
                 "shuffled": shuffled_forecast(true, labels.tolist())}

    # ---- rollout metrics, for the MNO and every baseline
    vrmse = {k: vrmse_per_step(f, true) for k, f in forecasts.items()}
    corr = {k: correlation_time(f, true) for k, f in forecasts.items()}
    per_channel = {k: vrmse_per_channel(forecasts[k], true) for k in ("mno", "persistence")}
    per_category = {
        name: {choice: {k: _curve(vrmse_per_step(forecasts[k][mask], true[mask]))
                        for k in ("mno", "persistence")}
               for choice, mask in masks.items() if mask.any()}
        for name, masks in groups.items()}
    nrmse = nrmse_per_step(pred, true)
    bands = band_errors(pred, true)
    grid = domain.grid_for(true.shape[-1])
    drift = invariant_drift(
        pred, true, {k: (lambda f, th, inv=v: inv.fn(f, grid, th))
                     for k, v in domain.invariants.items()}, torch.from_numpy(values))

    # ---- through the tokenizer
    with torch.no_grad():
        feats = {k: extract_features(forecasts[k]) for k in ("mno", "persistence", "shuffled")}
        f_true = extract_features(true)
        tok_true = tokenizer.tokenize(f_true)
        z_true = tokenizer.latent_vector(f_true)
        tokens = {k: tokenizer.tokenize(f) for k, f in feats.items()}
        latents = {k: tokenizer.latent_vector(f) for k, f in feats.items()}
    names = tokenizer.codebook_names
    agreement = {k: token_agreement_groups(t, tok_true, names) for k, t in tokens.items()}
    per_codebook = token_agreement(tokens["mno"], tok_true, names)["per_codebook"]
    cosine = {k: latent_cosine(z, z_true) for k, z in latents.items()}
    cosine["constant-latent"] = latent_cosine(z_true.mean(0, keepdim=True).expand_as(z_true),
                                              z_true)
    rep = {k: tokenizer_report(tokenizer, f) for k, f in feats.items()}
    rep_true = tokenizer_report(tokenizer, f_true)
    recon_ratio = {k: r["reconstruction_mse"] / max(rep_true["reconstruction_mse"], 1e-12)
                   for k, r in rep.items()}
    alignment: dict[str, Any] = {
        # L_commit over the full horizon; on the truth it is exactly 0 (its latents against
        # themselves), the floor the MNO's value is read against.
        "l_commit": {"mno": float(torch.mean((latents["mno"] - z_true) ** 2)),
                     "truth": 0.0,
                     "persistence": float(torch.mean((latents["persistence"] - z_true) ** 2))},
    }
    if projected is not None:
        floor = _teacher_forced_projection(operator, true, theta, device, batch_size,
                                           latent_steps, projector)
        alignment["l_latent"] = {"mno": float(torch.mean((projected - z_true) ** 2)),
                                 "truth": float(torch.mean((floor - z_true) ** 2))}

    # ---- the judged summary and its baselines
    def at(curve: Tensor, step: int) -> float:
        return float(curve[step])

    summary: dict[str, Any] = {
        "vrmse_step1": at(vrmse["mno"], 1), "vrmse_quarter": at(vrmse["mno"], quarter),
        "vrmse_final": at(vrmse["mno"], T),
        "correlation_time_fraction": corr["mno"].fraction,
        "token_agreement_dynamic": agreement["mno"]["dynamic"],
        "token_agreement_coarse": agreement["mno"]["dynamic_coarse"],
        "latent_cosine": cosine["mno"],
        "tokenizer_recon_mno_over_cno": recon_ratio["mno"],
        "utilization_mno": rep["mno"]["mean_utilization"],
    }
    baselines: dict[str, dict[str, float]] = {
        key: {b: at(vrmse[b], step) for b in FORECAST_BASELINES}
        for key, step in (("vrmse_step1", 1), ("vrmse_quarter", quarter), ("vrmse_final", T))}
    baselines["correlation_time_fraction"] = {b: corr[b].fraction for b in FORECAST_BASELINES}
    baselines["token_agreement_dynamic"] = {b: agreement[b]["dynamic"]
                                            for b in ("persistence", "shuffled")}
    baselines["token_agreement_coarse"] = {b: agreement[b]["dynamic_coarse"]
                                           for b in ("persistence", "shuffled")}
    baselines["latent_cosine"] = {b: cosine[b]
                                  for b in ("persistence", "shuffled", "constant-latent")}
    baselines["tokenizer_recon_mno_over_cno"] = {"persistence": recon_ratio["persistence"]}
    judged = verdicts(summary, baselines, thresholds=thresholds_for(domain.validation_thresholds),
                      applicable=domain.baselines)

    channel_names = domain.channel_names
    pictures = {
        "loss_curves": plots.plot_loss_curves(_read_metrics(run_dir / "metrics.jsonl"),
                                              run_dir / "loss_curves.png"),
        "rollout_frames": plots.plot_rollout_frames(true, pred, run_dir / "rollout_frames.png"),
        "error_vs_step": plots.plot_error_vs_step(
            {f"{k} VRMSE": v for k, v in vrmse.items()}, run_dir / "error_vs_step.png"),
        "token_agreement": plots.plot_token_agreement(per_codebook,
                                                      run_dir / "token_agreement.png"),
    }
    mno_info = json.loads((run_dir / "mno.json").read_text()) if (run_dir / "mno.json").exists() \
        else {}
    report = {
        "domain": domain.name, "domain_version": domain.version,
        "dataset": str(ds.path), "dataset_fingerprint": ds.fingerprint,
        "split": split, "samples": len(idx), "horizon": T, "quarter_step": quarter,
        "mno": {**mno_info, "parameters": count_parameters(operator.architecture)},
        "summary": summary, "baselines": baselines, "verdicts": judged,
        "curves": {
            "vrmse": {k: _curve(v) for k, v in vrmse.items()},
            "vrmse_per_channel": {k: {c: _curve(v[i]) for i, c in enumerate(channel_names)}
                                  for k, v in per_channel.items()},
            "vrmse_per_category": per_category,
            "correlation": {k: _curve(c.correlation_per_step) for k, c in corr.items()},
            "nrmse": _curve(nrmse),
            "band_errors": {k: _curve(v) for k, v in bands.items()},
        },
        "correlation_time": {k: c.time for k, c in corr.items()},
        "invariant_drift": {k: {m: (_curve(v) if torch.is_tensor(v) else v)
                                for m, v in d.items()} for k, d in drift.items()},
        "token_agreement": {**agreement, "mno_per_codebook": per_codebook},
        "latent_cosine": cosine,
        "alignment_losses": alignment,
        "tokenizer_on": {k: {**{m: r[m] for m in ("reconstruction_mse", "mean_utilization",
                                                  "min_utilization", "token_entropy_bits")},
                             "reconstruction_per_sample_median": float(np.median(r["per_sample"])),
                             "reconstruction_per_sample_max": float(np.max(r["per_sample"]))}
                         for k, r in {**rep, "cno": rep_true}.items()},
        # The samples whose MNO features the tokenizer reads worst: a mean far above the
        # median means a few rollouts left the range of the training features.
        "tokenizer_worst_samples": _worst_samples(idx, rep, rep_true, tokenizer, feats["mno"]),
        "pictures": {k: str(v) for k, v in pictures.items()},
    }
    path = run_dir / "report.json"
    atomic_write_json(path, report, default=float)
    log(_headline(summary, baselines, judged, quarter, T, len(idx), split))
    return path


def _worst_samples(idx: np.ndarray, rep: Mapping[str, Any], rep_true: Mapping[str, Any],
                   tokenizer: Any, mno_features: Mapping[str, Tensor],
                   n: int = 3) -> list[dict[str, Any]]:
    """The ``n`` samples with the largest tokenizer reconstruction error on MNO
    features, with the CNO's and persistence's error on the same sample and the feature
    columns that carry the MNO's (:func:`~noa_platform.tokenizer.metrics.column_errors`)."""
    from noa_platform.tokenizer.metrics import column_errors

    mno = np.asarray(rep["mno"]["per_sample"])
    worst = [int(i) for i in np.argsort(-mno)[:n]]
    columns = column_errors(tokenizer, mno_features, worst)
    return [{"sample": int(idx[i]), "mno": float(mno[i]),
             "cno": float(rep_true["per_sample"][i]),
             "persistence": float(rep["persistence"]["per_sample"][i]),
             "columns": cols}
            for i, cols in zip(worst, columns, strict=True)]


def _headline(summary: Mapping[str, Any], baselines: Mapping[str, Mapping[str, float]],
              judged: Mapping[str, Any], quarter: int, T: int, n: int, split: str) -> str:
    def vr(key: str, step: int) -> str:
        b = baselines[key]
        return (f"step {step} {summary[key]:.3f} (persistence {b['persistence']:.3f}, "
                f"shuffled {b['shuffled']:.3f})")
    ta = baselines["token_agreement_dynamic"]
    return (f"validation on {n} {split} samples, VRMSE (spatial mean = 1): {vr('vrmse_step1', 1)}, "
            f"{vr('vrmse_quarter', quarter)}, {vr('vrmse_final', T)}; dynamic token agreement "
            f"{summary['token_agreement_dynamic']:.2f} (persistence {ta['persistence']:.2f}, "
            f"shuffled {ta['shuffled']:.2f}); overall "
            f"{judged.get('overall', {}).get('verdict', '?')}")


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
