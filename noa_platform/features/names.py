"""The core's feature families by name: families, statistics and column names, without torch.

Registering the built-in families (``noa plugins list``, ``noa domains list``, every start-up
that discovers plugins) needs their names and column names but none of their arithmetic, so
the names live here, in a module that imports nothing heavier than the standard library; the
modules that compute the statistics import their column order from here.
"""

from __future__ import annotations

#: The core's families, in the order :func:`~noa_platform.features.extract_features` returns.
FAMILIES = ("initial", "summary", "temporal")

#: Definition version of the core's families, stored with their values in datasets. 2: spectral
#: shape statistics weighted by the fluctuation's significance
#: (``noa_platform.features.spectra.SIGNIFICANT_VARIANCE``).
DEFINITION_VERSION = "2"

#: Spectral energy fractions, one per band (edges: ``noa_platform.features.spectra.BAND_EDGES``).
BAND_NAMES = ("band_low", "band_mid", "band_high")

#: Per-frame statistics (TEMPORAL family and the SUMMARY time series), in column order.
FRAME_STATISTICS = (
    "mean",
    "std",
    "gradient_rms",
    "spectral_centroid",
    *BAND_NAMES,
)

#: Statistics of the initial condition (INITIAL family), in column order.
#:
#: * amplitudes, as ``sign(x) log(1 + |x|)``: ``mean``, ``std``, ``min``, ``max``, ``range``,
#:   ``gradient_rms`` (rms of ``|∇u|``, the root of the gradient energy, per domain length);
#: * distribution shape: ``skewness``, ``kurtosis`` (excess), ``histogram_entropy`` (``[0, 1]``);
#: * spectrum (scale-invariant): ``spectral_centroid`` and ``spectral_bandwidth`` (cycles per
#:   domain), ``spectral_slope`` (log-log), ``dominant_wavelength`` and
#:   ``correlation_length`` (fractions of the domain), ``band_low/mid/high`` (energy fractions);
#: * geometry: ``anisotropy`` (``[0, 1]``, 1 = parallel stripes).
FIELD_STATISTICS = (
    "mean",
    "std",
    "skewness",
    "kurtosis",
    "min",
    "max",
    "range",
    "gradient_rms",
    "anisotropy",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_slope",
    "dominant_wavelength",
    "correlation_length",
    "histogram_entropy",
    *BAND_NAMES,
)

#: Per-frame statistics of the TEMPORAL family; ``rate`` is the relative change from the
#: previous frame (0 at frame 0).
TEMPORAL_STATISTICS = (*FRAME_STATISTICS, "rate")

#: Per-channel statistics of the SUMMARY family. ``level`` = time mean, ``trend`` = slope
#: over normalized time τ ∈ [0, 1], ``variability`` = time std, ``change`` = last − first
#: (for the log-amplitudes ``std`` and ``gradient_rms`` this is a log ratio), ``final`` =
#: value at the last frame. ``autocorr.*``: correlation of frames 1, T/4, T/2 and T apart.
#: ``rate.*``: relative rate of change; ``settling_fraction``: share of the horizon before the
#: rate falls under 10 % of its first value. ``*_drift``: relative change of the spatial mean
#: and of the mean square between the first and last frame.
SUMMARY_STATISTICS = (
    "std.level",
    "std.trend",
    "std.variability",
    "std.change",
    "gradient_rms.level",
    "gradient_rms.trend",
    "gradient_rms.change",
    "spectral_centroid.level",
    "spectral_centroid.trend",
    "spectral_centroid.change",
    *(f"{band}.level" for band in BAND_NAMES),
    *(f"{band}.final" for band in BAND_NAMES),
    "autocorr.lag1",
    "autocorr.lag_quarter",
    "autocorr.lag_half",
    "autocorr.initial_final",
    "rate.level",
    "rate.final",
    "settling_fraction",
    "mean_drift",
    "energy_drift",
)

#: Reductions over channels, in column order (all ``chan_mean`` columns, then ``chan_max``);
#: :func:`noa_platform.features.pooling.pool_channels` computes them.
CHANNEL_POOLS = ("chan_mean", "chan_max")


def pooled_names(family: str, statistics: tuple[str, ...]) -> tuple[str, ...]:
    """Column names matching ``pool_channels``: ``"<family>.<statistic>.<pool>"``."""
    return tuple(f"{family}.{stat}.{pool}" for pool in CHANNEL_POOLS for stat in statistics)


INITIAL_NAMES = pooled_names("initial", FIELD_STATISTICS)
SUMMARY_NAMES = pooled_names("summary", SUMMARY_STATISTICS)
TEMPORAL_NAMES = pooled_names("temporal", TEMPORAL_STATISTICS)


def feature_names() -> dict[str, tuple[str, ...]]:
    """Column names of every family (a fresh dict; the tuples are constants)."""
    return {"initial": INITIAL_NAMES, "summary": SUMMARY_NAMES, "temporal": TEMPORAL_NAMES}
