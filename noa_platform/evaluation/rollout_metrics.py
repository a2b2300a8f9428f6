"""How far an MNO rollout strays from the CNO trajectory, step by step.

Every function takes rollouts shaped ``[N, T+1, C, *space]``: N test trajectories, T+1 frames
(frame 0 is the initial condition both rollouts start from, so step t means t applications of
the operator), C channels and one or more spatial axes (``[N, T+1, C, H, W]`` for the 2-D
domains). ``pred`` is the MNO rollout, ``true`` the CNO one; both must have the same shape.

Why the errors are aggregated over the test set *before* dividing (DESIGN §8): a trajectory
that decays to a uniform state has a vanishing spatial variance, and a per-sample ratio
``error / variance`` then explodes on a perfectly good prediction. Summing numerator and
denominator over samples and channels first keeps the ratio finite as long as *some*
trajectory still has structure at that step. A step whose aggregated denominator is exactly 0
(every sample uniform) gets ``nan``: there is nothing to be relative to, and callers skip it.

Sums are taken in float64 (float32 squares summed over a test set lose digits), on the
device of the inputs, a few samples at a time so that memory stays bounded whatever N is.
Curves come back as float64 tensors of length T+1 on that device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

#: Elements of one sample chunk (float64): bounds the temporaries of every metric (~64 MiB).
CHUNK_ELEMENTS = 1 << 23



def _check_rollouts(pred: Tensor, true: Tensor) -> None:
    if pred.shape != true.shape:
        raise ValueError(
            f"pred and true differ in shape: {tuple(pred.shape)} vs {tuple(true.shape)}"
        )
    _check_rollout(true)


def _check_rollout(x: Tensor) -> None:
    if x.ndim < 4:
        raise ValueError(
            "a rollout must be [N, T+1, C, *space] with at least one spatial axis, "
            f"got {tuple(x.shape)}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"a rollout needs at least one sample and one frame, got {tuple(x.shape)}"
        )


def _space(x: Tensor) -> tuple[int, ...]:
    return tuple(range(3, x.ndim))


def _chunks(x: Tensor) -> Iterator[slice]:
    """Slices over the sample axis holding about CHUNK_ELEMENTS elements each."""
    per_sample = max(1, x[0].numel())
    step = max(1, CHUNK_ELEMENTS // per_sample)
    for start in range(0, x.shape[0], step):
        yield slice(start, start + step)


def _f64(x: Tensor) -> Tensor:
    return x.to(torch.float64)


def _sqrt_ratio(num: Tensor, den: Tensor) -> Tensor:
    """sqrt(num) / sqrt(den), nan where den is exactly 0 (nothing to be relative to)."""
    out = num.sqrt() / den.sqrt()
    return torch.where(den == 0, torch.full_like(out, math.nan), out)


def vrmse_per_step(pred: Tensor, true: Tensor) -> Tensor:
    """Variance-scaled RMSE per rollout step, aggregated over the test set: ``[T+1]``.

    ``VRMSE_t = sqrt(Σ_{n,c,x} (pred − true)²) / sqrt(Σ_{n,c,x} (true − mean_x true)²)`` where
    ``mean_x`` is the spatial mean of each sample and channel at step t. 0 is perfect; 1 is
    what predicting each field's own spatial mean would score. ``nan`` only where the
    denominator is exactly 0 (every sample and channel uniform at that step).
    """
    _check_rollouts(pred, true)
    space = _space(true)
    reduce = (0, 2, *space)
    err = torch.zeros(true.shape[1], dtype=torch.float64, device=true.device)
    var = torch.zeros_like(err)
    for sl in _chunks(true):
        p, t = _f64(pred[sl]), _f64(true[sl])
        err += (p - t).square().sum(dim=reduce)
        var += (t - t.mean(dim=space, keepdim=True)).square().sum(dim=reduce)
    return _sqrt_ratio(err, var)


def nrmse_per_step(pred: Tensor, true: Tensor) -> Tensor:
    """Normalized RMSE per rollout step, aggregated over the test set: ``[T+1]``.

    ``nRMSE_t = sqrt(Σ_{n,c,x} (pred − true)²) / sqrt(Σ_{n,c,x} true²)``. Unlike VRMSE it
    counts the mean of the field as signal, so it looks small for fields with a large offset;
    ``nan`` only where the true fields are all exactly 0 at that step.
    """
    _check_rollouts(pred, true)
    reduce = (0, 2, *_space(true))
    err = torch.zeros(true.shape[1], dtype=torch.float64, device=true.device)
    norm = torch.zeros_like(err)
    for sl in _chunks(true):
        p, t = _f64(pred[sl]), _f64(true[sl])
        err += (p - t).square().sum(dim=reduce)
        norm += t.square().sum(dim=reduce)
    return _sqrt_ratio(err, norm)


def persistence_baseline(true: Tensor) -> Tensor:
    """The "nothing happens" forecast: u_0 at every step, shaped like ``true`` ``[N, T+1, ...]``.

    u_0 is the last frame known when the rollout starts, so an operator worth its training
    must beat this. Returned as an expanded view of frame 0 (no copy): read it, don't write it.
    """
    _check_rollout(true)
    return true[:, :1].expand_as(true)


def radial_wavenumber(shape: tuple[int, ...] | torch.Size,
                      device: torch.device | str | None = None) -> Tensor:
    """Radial integer wavenumber ``|k|`` of every mode of an ``fftn`` over a grid of ``shape``.

    Wavenumbers count periods per domain length along each axis (the axes are taken to span
    domains of equal length, as on the square grids of the first-party domains).
    """
    axes = [torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64, device=device) for n in shape]
    grids = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(grids).square().sum(dim=0).sqrt()


def band_names(n_bands: int) -> tuple[str, ...]:
    """``low, mid, high`` for three bands, ``band0 .. band{n-1}`` (low to high) otherwise."""
    if n_bands == 3:
        return ("low", "mid", "high")
    return tuple(f"band{i}" for i in range(n_bands))


def band_index(shape: tuple[int, ...] | torch.Size, n_bands: int = 3,
               device: torch.device | str | None = None) -> Tensor:
    """Band (0 = lowest) of every FFT mode of a grid of ``shape``; same shape as the grid.

    The radial range ``[0, k_nyq]``, with ``k_nyq = min_axis(n // 2)`` over axes longer than 1,
    is cut into ``n_bands`` equal intervals ``[lo, hi)``; the corner modes with ``|k| > k_nyq``
    go to the highest band, so the bands partition every mode and their error energies add up
    to the total (Parseval).
    """
    if n_bands < 1:
        raise ValueError(f"n_bands must be at least 1, got {n_bands}")
    sizes = [n for n in shape if n > 1]
    if not sizes:
        raise ValueError(f"a grid of shape {tuple(shape)} has no wavenumber above 0")
    k_nyq = min(n // 2 for n in sizes)
    k = radial_wavenumber(shape, device=device)
    return torch.clamp(torch.floor(k * n_bands / k_nyq), max=n_bands - 1).to(torch.long)


def band_errors(pred: Tensor, true: Tensor, n_bands: int = 3) -> dict[str, Tensor]:
    """Relative error per radial spectral band and step: ``{band name: [T+1]}``.

    ``E_b,t = sqrt(Σ_{n,c} Σ_{k∈b} |FFT(pred − true)|² / Σ_{n,c} Σ_{k∈b} |FFT(true)|²)``: which
    scales the operator gets wrong. Operators usually hold the large scales and lose the
    small ones first; a high band near 1 means the fine structure is not reproduced. Bands as
    in :func:`band_index` (low / mid / high thirds of the radial wavenumber range up to
    Nyquist); ``nan`` where the true field has exactly no energy in a band.
    """
    _check_rollouts(pred, true)
    space = _space(true)
    grid = tuple(true.shape[3:])
    index = band_index(grid, n_bands, device=true.device).reshape(-1)
    steps = true.shape[1]
    err = torch.zeros(steps, n_bands, dtype=torch.float64, device=true.device)
    energy = torch.zeros_like(err)
    for sl in _chunks(true):
        p, t = _f64(pred[sl]), _f64(true[sl])
        e_hat = torch.fft.fftn(p - t, dim=space).abs().square().sum(dim=(0, 2))
        t_hat = torch.fft.fftn(t, dim=space).abs().square().sum(dim=(0, 2))
        err.index_add_(1, index, e_hat.reshape(steps, -1))
        energy.index_add_(1, index, t_hat.reshape(steps, -1))
    ratio = _sqrt_ratio(err, energy)
    return {name: ratio[:, b] for b, name in enumerate(band_names(n_bands))}


def correlation_per_step(pred: Tensor, true: Tensor) -> Tensor:
    """Pattern correlation per step, aggregated over the test set like VRMSE: ``[T+1]``.

    ``r_t = Σ_{n,c,x} p̃ t̃ / sqrt(Σ_{n,c,x} p̃² · Σ_{n,c,x} t̃²)`` with ``p̃``, ``t̃`` the fields
    minus their spatial mean per sample and channel. It asks whether the *pattern* is right,
    whatever the offset. Sums are taken over the whole test set before dividing, for the reason
    VRMSE is (see the module docstring): a sample that decays to a uniform state contributes
    little to either sum instead of scoring 0 on its own — the per-sample rule made the CNO
    truth plus 0.1 % noise score 5 of 32 steps. Defined values: ``nan`` where every true field is
    uniform (nothing to correlate with); 0 where the prediction is uniform everywhere or not
    finite (a blown-up rollout has no pattern).
    """
    _check_rollouts(pred, true)
    space = _space(true)
    reduce = (0, 2, *space)
    cov = torch.zeros(true.shape[1], dtype=torch.float64, device=true.device)
    var_p, var_t = torch.zeros_like(cov), torch.zeros_like(cov)
    for sl in _chunks(true):
        p, t = _f64(pred[sl]), _f64(true[sl])
        pc = p - p.mean(dim=space, keepdim=True)
        tc = t - t.mean(dim=space, keepdim=True)
        cov += (pc * tc).sum(dim=reduce)
        var_p += pc.square().sum(dim=reduce)
        var_t += tc.square().sum(dim=reduce)
    r = (cov / (var_p * var_t).sqrt()).clamp(-1.0, 1.0)
    r = torch.where(torch.isfinite(r), r, torch.zeros_like(r))
    return torch.where(var_t == 0, torch.full_like(r, math.nan), r)


def spatial_mean_forecast(true: Tensor) -> Tensor:
    """The forecast "each field is its own spatial mean": ``[N, T+1, ...]`` like ``true``.

    An oracle of the mean (it reads the true frame's mean at every step) with no pattern at
    all: its VRMSE is exactly 1 by construction, the line an operator must stay below to be
    said to predict any structure.
    """
    _check_rollout(true)
    return true.mean(dim=_space(true), keepdim=True).expand_as(true)


def shuffled_forecast(true: Tensor, groups: Sequence[int] | None = None) -> Tensor:
    """Another sample's true trajectory for every sample: ``true[π(n)]`` with π a cyclic shift
    within each group (e.g. samples of the same categorical value), so every forecast is a
    genuine trajectory of the same kind of dynamics, just not this one. A group of one sample
    keeps it (nothing to shuffle with)."""
    _check_rollout(true)
    n = true.shape[0]
    labels = list(groups) if groups is not None else [0] * n
    if len(labels) != n:
        raise ValueError(f"{len(labels)} group labels for {n} samples")
    perm = list(range(n))
    for g in set(labels):
        members = [i for i in range(n) if labels[i] == g]
        for a, b in zip(members, members[1:] + members[:1]):
            perm[a] = b
    return true[torch.tensor(perm, device=true.device)]


def vrmse_per_channel(pred: Tensor, true: Tensor) -> Tensor:
    """VRMSE per channel and step ``[C, T+1]`` (each channel aggregated over the test set)."""
    _check_rollouts(pred, true)
    return torch.stack([vrmse_per_step(pred[:, :, c:c + 1], true[:, :, c:c + 1])
                        for c in range(true.shape[2])])


class CorrelationTime(NamedTuple):
    """Result of :func:`correlation_time`; unpacks as ``time, curve, horizon``."""

    time: float
    """First step whose correlation is below the threshold; the horizon T if none is."""
    correlation_per_step: Tensor
    """The averaged correlation at every step, ``[T+1]``."""
    horizon: int
    """T, the number of operator steps in the rollout."""

    @property
    def fraction(self) -> float:
        """``time / horizon`` (the summary's ``correlation_time_fraction``); nan if T = 0."""
        return self.time / self.horizon if self.horizon > 0 else math.nan


def first_drop(curve: Tensor, threshold: float) -> float:
    """First index where ``curve`` is below ``threshold`` (nan counts as below); else len − 1."""
    below = torch.nonzero(~(curve >= threshold))
    return float(below[0, 0]) if below.numel() else float(curve.shape[0] - 1)


def correlation_time(pred: Tensor, true: Tensor, threshold: float = 0.8) -> CorrelationTime:
    """How many steps the rollout keeps the right pattern: the first step (in frames) where
    :func:`correlation_per_step` drops below ``threshold``, or T if it never does.

    Returns a :class:`CorrelationTime` carrying the time, the per-step curve and T. A step
    where every true field is uniform (correlation nan: nothing to keep) is not a drop.
    """
    curve = correlation_per_step(pred, true)
    time = first_drop(torch.nan_to_num(curve, nan=1.0), threshold)
    return CorrelationTime(time, curve, true.shape[1] - 1)


def invariant_drift(
    pred: Tensor,
    true: Tensor,
    invariants: Mapping[str, Callable[[Tensor, Tensor], Tensor]],
    theta: Tensor,
) -> dict[str, dict[str, float | Tensor]]:
    """How far quantities the physics conserves (or dictates) drift in the rollout.

    Each invariant maps fields ``[..., C, *space]`` and the samples' physical θ ``[n, P]`` to
    one value per field ``[...]`` (total mass, energy, enstrophy...); it receives float64
    fields shaped ``[n, T+1, C, *space]`` with their θ rows and must return ``[n, T+1]``.
    ``theta`` is ``[N, P]``, one row per rollout. Per invariant::

        per_step_abs  [T+1]  mean over N of |I(pred) − I(true)| at each step
        mean_abs             that, averaged over all steps
        final_abs            that, at the final step
        scale                mean over N and steps of |I(true)|
        per_step_rel, mean_rel, final_rel   the same divided by ``scale``

    One scale for every step, not the true value at that step: an energy that decays to 0
    would otherwise make the relative drift at late steps explode. Where ``scale`` is exactly 0
    (an invariant that is identically 0, like the mean of a zero-mean field) the relative
    values are nan and only the absolute ones mean something.
    """
    _check_rollouts(pred, true)
    out: dict[str, dict[str, float | Tensor]] = {}
    for name, invariant in invariants.items():
        diffs, mags = [], []
        for sl in _chunks(true):
            th = _f64(theta[sl]).to(true.device)
            i_pred = invariant(_f64(pred[sl]), th)
            i_true = invariant(_f64(true[sl]), th)
            expected = tuple(true[sl].shape[:2])
            if tuple(i_true.shape) != expected or tuple(i_pred.shape) != expected:
                raise ValueError(
                    f"invariant {name!r} must map [n, T+1, C, *space] to [n, T+1] = {expected}, "
                    f"got {tuple(i_true.shape)}"
                )
            diffs.append((i_pred - i_true).abs())
            mags.append(i_true.abs())
        diff = torch.cat(diffs).to(torch.float64)
        per_step = diff.mean(dim=0)
        scale = float(torch.cat(mags).to(torch.float64).mean())
        rel = per_step / scale if scale != 0 else torch.full_like(per_step, math.nan)
        out[name] = {
            "per_step_abs": per_step,
            "mean_abs": float(per_step.mean()),
            "final_abs": float(per_step[-1]),
            "scale": scale,
            "per_step_rel": rel,
            "mean_rel": float(rel.mean()),
            "final_rel": float(rel[-1]),
        }
    return out
