"""Numerically safe building blocks: square roots, divisions and logarithms whose value *and*
gradient stay finite for every finite input, including exact zeros.

The pattern throughout is the "double where": the unsafe operation is evaluated on a tensor in
which the bad entries have been replaced by a harmless value, and the result is then masked.
A plain ``torch.where(ok, sqrt(x), 0)`` is not enough, because the backward pass of
``sqrt(0)`` is ``inf`` and ``inf * 0`` is NaN even on the branch that was not selected.

:func:`sanitize` is the last line of defence only; the feature formulas are written so that it
never has to act on finite input (the property tests run with the guard disabled).
"""

from __future__ import annotations

import torch
from torch import Tensor


def eps_of(x: Tensor) -> float:
    """Machine epsilon of ``x``'s dtype (relative round-off of one operation)."""
    return float(torch.finfo(x.dtype).eps)


def tiny_of(x: Tensor) -> float:
    """Smallest positive normal number of ``x``'s dtype."""
    return float(torch.finfo(x.dtype).tiny)


def noise_variance(x: Tensor) -> float:
    """Variance of a field normalized to ``max|y| = 1`` below which it is round-off, not signal.

    A field whose relative spread is below machine epsilon is a constant plus rounding noise;
    its shape statistics (skewness, spectrum, ...) would only describe that noise. Treating it
    as constant also bounds ``1 / variance`` by ``1 / eps**2``, which keeps gradients finite.
    """
    return eps_of(x) ** 2


#: Smallest magnitude, in units of the dtype's smallest normal number, that a field's scale
#: (``max|u|``) and its standard deviation need for scale-invariant statistics to be defined.
#: Their gradients grow like ``1 / scale`` or ``1 / std(u)``; below about 1e-34 (float32)
#: that no longer fits in the dtype.
ABSOLUTE_FLOOR = 1e4


def magnitude_floor(x: Tensor) -> float:
    """``ABSOLUTE_FLOOR * tiny``: about 1.2e-34 in float32, 2.2e-304 in float64."""
    return ABSOLUTE_FLOOR * tiny_of(x)


def resolvable(variance: Tensor, scale: Tensor) -> Tensor:
    """Whether fields with normalized variance ``variance`` and scale ``scale`` vary (bool).

    True when the relative spread is above round-off (:func:`noise_variance`) *and* the
    absolute standard deviation ``scale * sqrt(variance)`` is above
    :func:`magnitude_floor` (about 1e-34 in float32, 2e-304 in float64). Fields that
    fail either test are treated as constant. Masks carry no gradient.
    """
    with torch.no_grad():
        relative = variance > noise_variance(variance)
        spread = scale * torch.sqrt(variance.clamp_min(0))
        absolute = spread > magnitude_floor(variance)
    return relative & absolute


def safe_sqrt(x: Tensor, threshold: float | None = None) -> Tensor:
    """``sqrt(x)`` where ``x > threshold``, else 0; the gradient is finite everywhere.

    ``threshold`` defaults to the dtype's smallest normal number, so that the derivative
    ``1 / (2 sqrt(x))`` is at most ``1 / (2 sqrt(tiny))`` (about 5e18 in float32).
    """
    if threshold is None:
        threshold = tiny_of(x)
    ok = x > threshold
    return torch.where(ok, torch.sqrt(torch.where(ok, x, torch.ones_like(x))), torch.zeros_like(x))


def safe_div(num: Tensor, den: Tensor, threshold: float | None = None, fill: float = 0.0) -> Tensor:
    """``num / den`` where ``|den| > threshold``, else ``fill`` (a defined degenerate value).

    ``threshold`` defaults to the dtype's smallest normal number.
    """
    if threshold is None:
        threshold = tiny_of(den)
    ok = den.abs() > threshold
    quotient = num / torch.where(ok, den, torch.ones_like(den))
    return torch.where(ok, quotient, torch.full_like(quotient, fill))


def safe_log(x: Tensor, floor: float) -> Tensor:
    """``log(x + floor)`` for ``x >= 0``: at least ``log(floor)``, gradient at most ``1/floor``."""
    return torch.log(x.clamp_min(0) + floor)


def scaled_log1p(r: Tensor, scale: Tensor) -> Tensor:
    """``log(1 + scale * r)`` for ``r >= 0``, ``scale >= 0``, without forming ``scale * r``.

    ``r`` is a statistic of a normalized field (``O(1)``) and ``scale`` the normalization
    (``max|u|``, anything from 0 to the dtype's largest value). For ``scale > 1`` the identity
    ``log(1 + s r) = log(s) + log(1/s + r)`` never overflows, and its derivative in ``r``,
    ``1 / (1/s + r)``, is at most ``s`` -- finite.
    """
    big = scale > 1
    s_small = torch.where(big, torch.zeros_like(scale), scale)
    s_big = torch.where(big, scale, torch.ones_like(scale))
    small = torch.log1p(s_small * r)
    large = torch.log(s_big) + torch.log(1.0 / s_big + r)
    return torch.where(big, large, small)


def signed_log_amplitude(r: Tensor, scale: Tensor) -> Tensor:
    """``sign(x) * log(1 + |x|)`` of the physical value ``x = scale * r``.

    This is how amplitude features (mean, std, extremes, gradient rms) are reported: large
    magnitudes are compressed logarithmically (1e30 -> 69, so every domain's amplitudes share
    one feature space and float32 never overflows), small ones stay nearly linear (1e-30 ->
    1e-30; ``log1p`` keeps 0 at 0 and is smooth there), and the sign keeps the direction of
    signed quantities. Amplitudes far below 1 are therefore all close to 0: the scale-invariant
    shape features, not these, tell such fields apart.
    """
    return torch.sign(r) * scaled_log1p(r.abs(), scale)


def sanitize(x: Tensor) -> Tensor:
    """Replace NaN and ±inf by 0, the value this package gives every degenerate statistic.

    Last line of defence only (non-finite *input* can still produce them); the formulas do
    not rely on it.
    """
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
