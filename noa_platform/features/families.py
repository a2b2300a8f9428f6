"""The three core feature families, computed from a trajectory batch ``[B, T+1, C, H, W]``.

* INITIAL ``[B, D_i]``: statistics of the initial condition ``traj[:, 0]``
  (:data:`~noa_platform.features.names.FIELD_STATISTICS`).
* TEMPORAL ``[B, T+1, D_t]``: cheap statistics of every frame
  (:data:`~noa_platform.features.names.TEMPORAL_STATISTICS`), plus the rate of change from
  the previous frame.
* SUMMARY ``[B, D_s]``: how the rollout evolves
  (:data:`~noa_platform.features.names.SUMMARY_STATISTICS`).

The statistics' names and the column names live in :mod:`noa_platform.features.names`, which
needs no torch, so the families can be registered without importing this module.

Each is computed per channel and pooled over channels (channel mean, then channel max), so
the columns and their names do not depend on ``C``, ``H``, ``W`` or ``T``.

Each function takes ``guard``: with ``True`` (default) a final :func:`sanitize` maps any
non-finite value to 0 (only non-finite *input* can produce one); tests run with ``False`` to
prove the formulas need no guard.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from noa_platform.features.dynamics import (
    endpoint_drifts,
    lagged_correlation,
    settling_fraction,
    step_rates,
    time_std,
    time_trend,
)
from noa_platform.features.names import BAND_NAMES, FIELD_STATISTICS, FRAME_STATISTICS
from noa_platform.features.pooling import pool_channels
from noa_platform.features.safe_math import sanitize
from noa_platform.features.spectra import significance
from noa_platform.features.statistics import FieldAnalysis, analyse_fields


def as_trajectory(traj: Tensor) -> Tensor:
    """Check ``traj [B, T+1, C, H, W]`` and bring it to float32 or float64.

    float64 stays float64; other dtypes (half precision, integers) become float32, because
    FFTs and the round-off thresholds here are defined for those two.
    """
    if not isinstance(traj, Tensor):
        raise TypeError(f"features expect a torch.Tensor, got {type(traj).__name__}")
    if traj.is_complex():
        raise TypeError(f"features expect real fields, got {traj.dtype}")
    if traj.ndim != 5:
        raise ValueError(
            f"features expect a trajectory batch [B, T+1, C, H, W], got shape {tuple(traj.shape)}"
        )
    _, frames, channels, height, width = traj.shape
    if frames < 1 or channels < 1 or height < 2 or width < 2:
        raise ValueError(
            "features need at least one frame, one channel and a 2 x 2 grid, got shape "
            f"{tuple(traj.shape)}"
        )
    if traj.dtype not in (torch.float32, torch.float64):
        traj = traj.to(torch.float32)
    return traj


@dataclass
class TrajectoryAnalysis:
    """Per-frame analysis of a whole trajectory, shared by the TEMPORAL and SUMMARY families.

    ``frames`` holds statistics ``[B, T+1, C]``; ``rates`` is ``[B, T, C]``.
    """

    frames: FieldAnalysis
    rates: Tensor
    presence: Tensor  # [B, T+1, C] in [0, 1): how much each frame's channel counts

    @classmethod
    def of(cls, traj: Tensor) -> TrajectoryAnalysis:
        # The trajectory's largest |u| over every frame and channel: a frame's pattern is
        # weighed against the scale the sample had (spectra.SIGNIFICANT_VARIANCE), so a field
        # that decays to uniform does not become "white noise" in its last frames, and a
        # channel that is zero throughout (a catalyst that died out during burn-in) is not
        # read from the round-off or noise on it. Across channels, like the pooled features.
        reference = traj.abs().amax(dim=(1, 2, -2, -1))[:, None, None]  # [B, 1, 1]
        frames = analyse_fields(traj, reference=reference)
        variance = frames.spectrum.variance
        # The same weight for the whole field (mean included): relative rates and drifts of
        # a channel that is ~0 throughout would otherwise read its round-off as full change.
        presence = significance(frames.field.scale, frames.field.mean.square() + variance,
                                reference)
        pair = torch.maximum(presence[:, 1:], presence[:, :-1])
        return cls(frames=frames, rates=step_rates(frames.field, variance) * pair,
                   presence=presence)

    def temporal_per_channel(self) -> Tensor:
        """``[B, T+1, C, K_t]`` in :data:`TEMPORAL_STATISTICS` order."""
        stats = self.frames.stack(FRAME_STATISTICS)
        # Frame 0 has no predecessor: its rate is 0 (nothing has changed yet).
        rate = torch.cat([torch.zeros_like(stats[:, :1, :, 0]), self.rates], dim=1)
        return torch.cat([stats, rate.unsqueeze(-1)], dim=-1)

    def summary_per_channel(self) -> Tensor:
        """``[B, C, K_s]`` in :data:`SUMMARY_STATISTICS` order."""
        values = self.frames.values
        horizon = self.rates.shape[1]
        columns: list[Tensor] = []
        std = values["std"]
        columns += [std.mean(1), time_trend(std), time_std(std), std[:, -1] - std[:, 0]]
        grad = values["gradient_rms"]
        columns += [grad.mean(1), time_trend(grad), grad[:, -1] - grad[:, 0]]
        centroid = values["spectral_centroid"]
        columns += [centroid.mean(1), time_trend(centroid), centroid[:, -1] - centroid[:, 0]]
        columns += [values[band].mean(1) for band in BAND_NAMES]
        columns += [values[band][:, -1] for band in BAND_NAMES]
        fluctuation, variance = self.frames.field.fluctuation, self.frames.spectrum.variance
        for lag in (1, max(1, horizon // 4), max(1, horizon // 2), horizon):
            columns.append(lagged_correlation(fluctuation, variance, lag))
        if horizon == 0:
            rate_level = rate_final = torch.zeros_like(std[:, 0])
        else:
            rate_level, rate_final = self.rates.mean(1), self.rates[:, -1]
        columns += [rate_level, rate_final, settling_fraction(self.rates)]
        ends = torch.maximum(self.presence[:, 0], self.presence[:, -1])
        columns += [drift * ends for drift in endpoint_drifts(self.frames.field, variance)]
        return torch.stack(columns, dim=-1)


def _finish(x: Tensor, guard: bool) -> Tensor:
    return sanitize(x) if guard else x


def initial_features(traj: Tensor, guard: bool = True) -> Tensor:
    """INITIAL family ``[B, D_i]`` of ``traj [B, T+1, C, H, W]`` (uses frame 0 only)."""
    traj = as_trajectory(traj)
    analysis = analyse_fields(traj[:, 0], extended=True)
    return _finish(pool_channels(analysis.stack(FIELD_STATISTICS)), guard)


def temporal_features(traj: Tensor, guard: bool = True) -> Tensor:
    """TEMPORAL family ``[B, T+1, D_t]``."""
    analysis = TrajectoryAnalysis.of(as_trajectory(traj))
    return _finish(pool_channels(analysis.temporal_per_channel()), guard)


def summary_features(traj: Tensor, guard: bool = True) -> Tensor:
    """SUMMARY family ``[B, D_s]``."""
    analysis = TrajectoryAnalysis.of(as_trajectory(traj))
    return _finish(pool_channels(analysis.summary_per_channel()), guard)


def extract_features(traj: Tensor, guard: bool = True) -> dict[str, Tensor]:
    """All three families of ``traj [B, T+1, C, H, W]``, sharing the per-frame analysis.

    Returns ``{"initial": [B, D_i], "summary": [B, D_s], "temporal": [B, T+1, D_t]}`` in the
    input's dtype (float32 for non-float64 input) and on its device; differentiable.
    """
    traj = as_trajectory(traj)
    analysis = TrajectoryAnalysis.of(traj)
    initial = analyse_fields(traj[:, 0], extended=True)
    return {
        "initial": _finish(pool_channels(initial.stack(FIELD_STATISTICS)), guard),
        "summary": _finish(pool_channels(analysis.summary_per_channel()), guard),
        "temporal": _finish(pool_channels(analysis.temporal_per_channel()), guard),
    }
