"""How a trajectory evolves: time-series descriptors and frame-to-frame measures.

Tensors here have time on dimension 1: per-frame series ``[B, T+1, ...]``, fields
``[B, T+1, C, H, W]``. Time is normalized to ``τ = t / T ∈ [0, 1]``, so trends are "change
over the whole horizon" and do not depend on how many frames were stored.

Degenerate values: a one-frame trajectory (``T = 0``) has zero trend, variability, rate of
change, settling fraction and drift; its lagged correlations are self-correlations (1 for a
varying field). Lags are clamped to the horizon.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from noa_platform.features.safe_math import eps_of, safe_div, safe_sqrt
from noa_platform.features.statistics import NormalizedField

#: The rate of change "has settled" once it falls below this fraction of its first value.
SETTLE_LEVEL = 0.1
#: Width of the sigmoid that softens the threshold (in units of the first rate), so the
#: settling fraction is differentiable.
SETTLE_SOFTNESS = 0.02


def normalized_time(n_frames: int, like: Tensor) -> Tensor:
    """``τ = t / T`` for ``t = 0 .. T`` (``[0.]`` for a single frame)."""
    if n_frames == 1:
        return torch.zeros(1, dtype=like.dtype, device=like.device)
    return torch.linspace(0.0, 1.0, n_frames, dtype=like.dtype, device=like.device)


def _along_time(v: Tensor, x: Tensor) -> Tensor:
    """Reshape the time vector ``v [T+1]`` to broadcast against ``x [B, T+1, ...]``."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def time_trend(x: Tensor) -> Tensor:
    """Least-squares slope of ``x [B, T+1, ...]`` against ``τ ∈ [0, 1]``: ``[B, ...]``.

    Zero for a single frame (no time extent) and for a series constant in time.
    """
    n = x.shape[1]
    if n < 2:
        return torch.zeros_like(x[:, 0])
    tau = normalized_time(n, x)
    centred = tau - tau.mean()
    # Centred time sums to 0, so the mean of x need not be removed.
    return (x * _along_time(centred, x)).sum(1) / centred.square().sum()


def time_std(x: Tensor) -> Tensor:
    """Population standard deviation of ``x [B, T+1, ...]`` over time: ``[B, ...]``."""
    var = (x - x.mean(1, keepdim=True)).square().mean(1)
    return safe_sqrt(var)


def _pair_weights(scale_a: Tensor, scale_b: Tensor) -> tuple[Tensor, Tensor]:
    """Weights ``s_a / S``, ``s_b / S`` with ``S = max(s_a, s_b)``.

    Two frames normalized by their own scales are put on a common one this way, so their
    difference is formed in ``[-1, 1]`` units whatever their magnitudes (0 when both are 0).
    """
    common = torch.maximum(scale_a, scale_b)
    return safe_div(scale_a, common), safe_div(scale_b, common)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Spatial mean of ``a * b`` over the last two dims, without a field-sized temporary."""
    n = a.shape[-2] * a.shape[-1]
    return torch.einsum("...i,...i->...", a.flatten(-2), b.flatten(-2)) / n


def step_rates(field: NormalizedField, variance: Tensor) -> Tensor:
    """Relative rate of change between consecutive frames: ``[B, T, C]`` in ``[0, 1]``.

    ``rate_t = rms(u_{t+1} - u_t) / (rms(u_t) + rms(u_{t+1}))`` -- scale-invariant, bounded by
    the triangle inequality, 0 for a trajectory that stands still (and for two zero frames).
    ``rms`` includes the spatial mean, so a uniform field that changes still has a rate.
    ``variance [B, T+1, C]`` is the per-frame variance of the normalized field.
    """
    scale, mean, fluct = field.scale, field.mean, field.fluctuation
    if fluct.shape[1] < 2:
        return torch.zeros_like(scale[:, :0])
    w0, w1 = _pair_weights(scale[:, :-1], scale[:, 1:])
    # The difference is formed from the fluctuations (not from mean-square identities) so a
    # small change is not lost to cancellation: identical frames give exactly 0.
    step = fluct[:, 1:] * w1[..., None, None]
    step.addcmul_(fluct[:, :-1], -w0[..., None, None])
    step.add_((w1 * mean[:, 1:] - w0 * mean[:, :-1])[..., None, None])
    step_rms = safe_sqrt(_dot(step, step))
    rms = safe_sqrt(mean.square() + variance)
    return safe_div(step_rms, w0 * rms[:, :-1] + w1 * rms[:, 1:])


def settling_fraction(rates: Tensor) -> Tensor:
    """Fraction of the horizon before the rate of change settles: ``rates [B, T, C] -> [B, C]``.

    Soft version of "first step whose rate is under :data:`SETTLE_LEVEL` × the first rate,
    divided by T": the product of sigmoids ``Π_{t' <= t} σ((r_t'/r_0 - level) / softness)``
    is ≈ 1 until the first crossing and ≈ 0 after it; its time mean is the fraction. Built as
    ``exp(cumsum(logsigmoid))``, which is stable and has a finite gradient. 1 means "never
    settled", 0 "static from the start" (a first rate under one unit of round-off) or ``T = 0``.
    """
    if rates.shape[1] == 0:
        return rates.sum(1)  # an empty sum: zeros [B, C]
    first = rates[:, :1]
    moving = first > eps_of(rates)
    # r_0 >= eps where used: the ratio and its gradient stay finite.
    ratio = rates / torch.where(moving, first, torch.ones_like(first))
    logits = (ratio - SETTLE_LEVEL) / SETTLE_SOFTNESS
    alive = torch.exp(torch.cumsum(F.logsigmoid(logits), dim=1))
    fraction = alive.mean(1)
    return torch.where(moving[:, 0], fraction, torch.zeros_like(fraction))


def lagged_correlation(fluctuation: Tensor, variance: Tensor, lag: int) -> Tensor:
    """Spatial correlation between frames ``lag`` apart, averaged over time: ``[B, C]``.

    ``fluctuation [B, T+1, C, H, W]`` and ``variance [B, T+1, C]`` (0 for constant frames)
    describe the frames; the value is the Pearson correlation of two frames' fluctuations, in
    ``[-1, 1]``, with 0 for a pair involving a constant frame. The lag is clamped to the
    horizon ``T``; lag 0 is the self-correlation (1, or 0 if constant).
    """
    frames = fluctuation.shape[1]
    lag = max(0, min(lag, frames - 1))
    covariance = _dot(fluctuation[:, : frames - lag], fluctuation[:, lag:])
    std = safe_sqrt(variance)
    # Variances are 0 or >= eps^2, so a non-zero product of stds is >= eps^2.
    corr = safe_div(covariance, std[:, : frames - lag] * std[:, lag:])
    return corr.mean(1)


def endpoint_drifts(field: NormalizedField, variance: Tensor) -> tuple[Tensor, Tensor]:
    """Relative drift of the spatial mean and of the mean square, last frame vs first.

    Both are ``[B, C]`` in ``[-1, 1]``: ``(m_T - m_0) / (rms_0 + rms_T)`` and
    ``(E_T - E_0) / (E_T + E_0)`` with ``E = mean(u^2)``. The denominators use magnitudes
    rather than ``|m_0|``, so a zero-mean field (vorticity) has a drift near 0 instead of
    a ratio of round-off errors. Conserved mass or energy gives 0; decay to rest gives -1.
    """
    scale, mean = field.scale, field.mean
    w0, w1 = _pair_weights(scale[:, 0], scale[:, -1])
    msq = mean.square() + variance
    rms = safe_sqrt(msq)
    mean_drift = safe_div(w1 * mean[:, -1] - w0 * mean[:, 0], w0 * rms[:, 0] + w1 * rms[:, -1])
    e0, e1 = w0.square() * msq[:, 0], w1.square() * msq[:, -1]
    energy_drift = safe_div(e1 - e0, e1 + e0)
    return mean_drift, energy_drift
