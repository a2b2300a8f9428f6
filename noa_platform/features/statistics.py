"""Statistics of single periodic 2-D fields ``[..., H, W]`` (any leading batch dimensions).

Scale handling
--------------
Every field ``u`` is first divided by its own scale ``s = max|u|`` (``y = u / s``, so
``|y| <= 1``). All statistics are computed on ``y``, where squares and fourth powers cannot
overflow, whatever the magnitude of ``u`` (1e-30 or 1e30 in float32):

* *shape* statistics (skewness, kurtosis, spectra, anisotropy, entropy, correlation length)
  are scale-invariant and read straight off ``y``;
* *amplitude* statistics (mean, std, extremes, gradient rms) are reported as
  ``sign(x) log(1 + |x|)`` of the physical value ``x = s * r(y)``, formed without ever
  computing ``s * r`` (see :func:`~noa_platform.features.safe_math.signed_log_amplitude`).

A field whose scale is below about 1e-34 (float32; 2e-304 in float64) is treated as zero, and a
field whose normalized variance is below ``eps**2`` (spread under one unit of round-off) or
whose absolute standard deviation is below about 1e-34 (float32; 2e-304 in float64) as
constant: the degenerate values below then apply. Both limits exist because the gradient of
a scale-invariant statistic grows like ``1 / std``: past them it would not fit in the dtype.

Degenerate values (a constant field, zeros included): std, range, gradient rms, skewness,
(excess) kurtosis, anisotropy, entropy and every spectral statistic are 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from noa_platform.features.names import BAND_NAMES
from noa_platform.features.safe_math import (
    eps_of,
    magnitude_floor,
    safe_sqrt,
    signed_log_amplitude,
    tiny_of,
)
from noa_platform.features.spectra import (
    Spectrum,
    correlation_length,
    dominant_wavelength,
    spectral_slope,
    spectrum,
)

#: Bins of the soft histogram (entropy); Gaussian kernels one bin wide.
HISTOGRAM_BINS = 16


@dataclass
class NormalizedField:
    """A field ``u = scale * (mean + fluctuation)`` with ``max|u| = scale``.

    ``scale``, ``mean``, ``low`` and ``high`` are ``[...]``; ``fluctuation`` is ``[..., H, W]``.
    ``mean``, ``low``, ``high`` and ``fluctuation`` are in normalized units (``|y| <= 1``).
    The raw normalized field is not kept: ``y = mean + fluctuation``.
    """

    scale: Tensor
    mean: Tensor
    low: Tensor
    high: Tensor
    fluctuation: Tensor


def normalize(u: Tensor) -> NormalizedField:
    """Split fields ``u [..., H, W]`` into their scale ``max|u|``, mean and fluctuation."""
    high = u.amax(dim=(-2, -1))
    low = u.amin(dim=(-2, -1))
    # max|u| from two reductions: |u| would be one more field-sized temporary.
    scale = torch.maximum(high, -low)
    # Near the smallest normal number 1/scale (and the gradient of every scale-invariant
    # statistic with it) would overflow: such a field counts as zero (scale 0; its
    # normalized values are then tiny and every statistic is 0).
    nonzero = scale > magnitude_floor(u)
    scale = torch.where(nonzero, scale, torch.zeros_like(scale))
    safe = torch.where(nonzero, scale, torch.ones_like(scale))
    y = u / safe[..., None, None]
    mean = y.mean(dim=(-2, -1))
    # In place: the division's backward needs u and the scale, not y, and this saves a
    # field-sized temporary on the hot path.
    fluctuation = y.sub_(mean[..., None, None])
    return NormalizedField(
        scale=scale, mean=mean, low=low / safe, high=high / safe, fluctuation=fluctuation
    )


@dataclass
class ShapeMoments:
    """Skewness and *excess* kurtosis ``[...]`` (0 for a Gaussian, -2 for a two-valued field,
    -1.5 for a sinusoid; both 0 by definition for a constant field)."""

    skewness: Tensor
    kurtosis: Tensor


def shape_moments(fluctuation: Tensor, variance: Tensor, varying: Tensor) -> ShapeMoments:
    """Skewness and excess kurtosis of fields whose variance is already known."""
    # variance >= eps^2 where used, so 1/std <= 1/eps: gradients stay finite.
    std = torch.sqrt(torch.where(varying, variance, torch.ones_like(variance)))
    z = fluctuation / std[..., None, None]
    z2 = z.square()
    skewness = (z2 * z).mean(dim=(-2, -1))
    kurtosis = z2.square().mean(dim=(-2, -1)) - 3.0
    zero = torch.zeros_like(variance)
    return ShapeMoments(
        skewness=torch.where(varying, skewness, zero),
        kurtosis=torch.where(varying, kurtosis, zero),
    )


def histogram_entropy(y: Tensor, low: Tensor, high: Tensor, bins: int = HISTOGRAM_BINS) -> Tensor:
    """Normalized entropy in ``[0, 1]`` of a soft histogram of ``y [..., H, W]``.

    Values are mapped to ``[0, 1]`` by the field's own min and max (so the entropy is
    scale-invariant) and spread over ``bins`` Gaussian kernels one bin wide -- a smooth,
    differentiable stand-in for hard binning. 1 is a uniform histogram, values near 0 a field
    concentrated on a few levels; a constant field has entropy 0.
    """
    span = high - low
    spread = span > eps_of(y)
    unit = torch.where(
        spread[..., None, None],
        (y - low[..., None, None])
        / torch.where(spread, span, torch.ones_like(span))[..., None, None],
        torch.zeros_like(y),
    )
    centres = (torch.arange(bins, dtype=y.dtype, device=y.device) + 0.5) / bins
    offsets = (unit.flatten(-2).unsqueeze(-1) - centres) * bins
    # Every value lies within half a bin of some centre, so each row of kernels sums to > 0.8
    # and the histogram total is positive.
    counts = torch.exp(-0.5 * offsets.square()).mean(dim=-2)
    prob = counts / counts.sum(dim=-1, keepdim=True)
    # clamp_min keeps log finite for underflowed bins; p * log(tiny) -> 0 as p -> 0.
    entropy = -(prob * torch.log(prob.clamp_min(tiny_of(y)))).sum(dim=-1) / math.log(bins)
    return torch.where(spread, entropy, torch.zeros_like(entropy))


@dataclass
class FieldAnalysis:
    """Everything computed for fields ``[..., H, W]``; kept so callers can reuse pieces."""

    field: NormalizedField
    spectrum: Spectrum
    values: dict[str, Tensor]  # statistic name -> [...]

    def stack(self, names: tuple[str, ...]) -> Tensor:
        """The named statistics as columns ``[..., len(names)]``."""
        return torch.stack([self.values[n] for n in names], dim=-1)


def analyse_fields(u: Tensor, extended: bool = False, reference: Tensor | None = None
                   ) -> FieldAnalysis:
    """Statistics of fields ``u [..., H, W]``.

    The cheap set (:data:`~noa_platform.features.names.FRAME_STATISTICS`) is always computed;
    ``extended`` adds the rest of :data:`~noa_platform.features.names.FIELD_STATISTICS`
    (higher moments, extremes, anisotropy, slope, dominant wavelength, correlation length,
    histogram entropy).
    ``reference`` (``[...]``, broadcastable) is the scale spectral shape statistics are weighed
    against (:func:`~noa_platform.features.spectra.spectrum`); default: each field's own.

    On the hot path (every frame of a trajectory) this is two reductions for the scale, one
    division, one FFT and one small matrix product: the variance, gradients and anisotropy
    all come from the spectrum.
    """
    field = normalize(u)
    scale = field.scale
    spec = spectrum(field.fluctuation, scale, reference)
    values = {
        "mean": signed_log_amplitude(field.mean, scale),
        "std": signed_log_amplitude(safe_sqrt(spec.variance), scale),
        "gradient_rms": signed_log_amplitude(spec.gradient_rms, scale),
        "spectral_centroid": spec.centroid,
    }
    for i, name in enumerate(BAND_NAMES):
        values[name] = spec.bands[..., i]
    if extended:
        shape = shape_moments(field.fluctuation, spec.variance, spec.varying)
        entropy = histogram_entropy(
            field.fluctuation, field.low - field.mean, field.high - field.mean
        )
        values.update(
            skewness=shape.skewness,
            kurtosis=shape.kurtosis,
            min=signed_log_amplitude(field.low, scale),
            max=signed_log_amplitude(field.high, scale),
            range=signed_log_amplitude(field.high - field.low, scale),
            anisotropy=spec.anisotropy,
            spectral_bandwidth=spec.bandwidth,
            spectral_slope=spectral_slope(spec),
            dominant_wavelength=dominant_wavelength(spec),
            correlation_length=correlation_length(spec),
            # Masked like the other shape statistics (a sub-round-off spread is noise).
            histogram_entropy=torch.where(spec.varying, entropy, torch.zeros_like(scale)),
        )
    return FieldAnalysis(field=field, spectrum=spec, values=values)
