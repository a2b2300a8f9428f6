"""Behavioural features of trajectories: fixed-size, differentiable, domain-agnostic.

A trajectory batch ``traj [B, T+1, C, H, W]`` (periodic 2-D fields, float32 or float64, any
device, ``T >= 0``, any ``C``, ``H, W >= 2``) is summarized in three families:

========== ================ ==========================================================
family     shape            what it describes
========== ================ ==========================================================
initial    ``[B, 36]``      the initial condition: moments, extremes, spectrum
                            (centroid, bandwidth, slope, dominant wavelength, bands),
                            gradients, anisotropy, correlation length, entropy
summary    ``[B, 50]``      the rollout: level / trend / variability / change of
                            per-frame statistics, spectral bands over time, temporal
                            autocorrelation, rate of change and settling, drift of the
                            mean and of the mean square
temporal   ``[B, T+1, 16]`` per frame: mean, std, gradient rms, spectral centroid,
                            band fractions, rate of change from the previous frame
========== ================ ==========================================================

Channels: every statistic is computed per channel and pooled by channel mean and channel max
(:mod:`.pooling`), so the columns and names (:func:`feature_names`) never depend on ``C``,
``H``, ``W`` or ``T``: every domain lands in the same feature space.

Scale: fields are normalized internally by ``max|u|`` (:mod:`.statistics`). Shape features
(skewness, kurtosis, spectral features, anisotropy, correlation length, entropy, rates,
correlations, drifts, band fractions) are **scale-invariant**. Amplitude features (mean, std,
min, max, range, gradient rms and their level/trend/change over time) are **not**; they are
reported as ``sign(x) log(1 + |x|)``, which stays finite and of order 1-100 from 1e-30 to
1e30 and beyond. Lengths are fractions of the domain (taken as the unit square) and
wavenumbers are cycles per domain, so they do not change with grid resolution.

Degenerate statistics are defined, never NaN: for a constant field (zeros included) std,
skewness, excess kurtosis, anisotropy, entropy and every spectral feature are 0; for a
one-frame trajectory trends, rates, settling and drifts are 0. Every feature is finite for
finite input and has a finite gradient (:mod:`.safe_math`).

Names are importable without torch: the families', statistics' and columns' names are in
:mod:`.names`, and the computing functions are imported on first use (PEP 562). The core
registers the families (:func:`builtin_extractors`, in :mod:`noa_platform.builtins`) with
extract functions that import :mod:`.families` only when called, so discovering plugins
(``noa plugins list``) does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from noa_platform.features.names import (
    FAMILIES,
    FIELD_STATISTICS,
    SUMMARY_STATISTICS,
    TEMPORAL_STATISTICS,
    feature_names,
)
from noa_platform.lazy_exports import lazy_exports

#: Public names imported on first use -> module that defines them. The computing functions
#: need torch; ``builtin_extractors`` is defined with the core's other registrations.
_EXPORTS = {
    "builtin_extractors": "noa_platform.builtins",
    "extract_features": "noa_platform.features.families",
    "initial_features": "noa_platform.features.families",
    "summary_features": "noa_platform.features.families",
    "temporal_features": "noa_platform.features.families",
    "sanitize": "noa_platform.features.safe_math",
}

if TYPE_CHECKING:
    from noa_platform.builtins import builtin_extractors
    from noa_platform.features.families import (
        extract_features,
        initial_features,
        summary_features,
        temporal_features,
    )
    from noa_platform.features.safe_math import sanitize


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


__all__ = [
    "FAMILIES",
    "FIELD_STATISTICS",
    "SUMMARY_STATISTICS",
    "TEMPORAL_STATISTICS",
    "builtin_extractors",
    "extract_features",
    "feature_names",
    "initial_features",
    "sanitize",
    "summary_features",
    "temporal_features",
]
