"""Radial power spectra of periodic 2-D fields and the statistics read from them.

Conventions
-----------
* The domain is the unit square whatever ``H × W``: wavenumbers are integers counting cycles
  per domain length, wavelengths are fractions of the domain length. A pattern keeps its
  spectral features when the grid is refined, so domains at different resolutions land in
  the same feature space.
* The power of the fluctuation ``y - mean(y)`` is normalized so that it sums to the field's
  variance (Parseval); spectral *fractions* divide by that total, which makes every spectral
  feature independent of amplitude.
* ``k_max = min(H, W) // 2`` is the largest wavenumber resolved in every direction. Shells are
  ``round(|k|) = 1, 2, ...`` up to the grid's corner; the spectral slope is fitted on shells
  ``1 .. k_max`` only, because corner shells are incomplete rings.
* Bands split the resolved range: low ``|k| <= k_max/4``, mid ``k_max/4 < |k| <= k_max/2``,
  high ``|k| > k_max/2`` (corners included), so the three fractions sum to 1.
* A (numerically) constant field has no spectrum: every spectral feature is 0.

Everything is one ``rfft2`` and one matrix product with a cached projection matrix (per grid
and dtype), so spectra of thousands of frames cost about as much as the FFT itself.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from noa_platform.features.names import BAND_NAMES
from noa_platform.features.safe_math import resolvable, safe_div, safe_log, safe_sqrt

#: Floor added to shell energy fractions before taking logs (spectral slope). It bounds the
#: slope of a spectrum with empty shells (a pure sinusoid) and the gradient of the log.
SLOPE_FLOOR = 1e-10
#: Exponent of the soft arg-max that picks the dominant shell: weights ∝ (E_k / max E)^8, so
#: a shell holding half the peak energy weighs 1/256 -- sharp, yet differentiable.
DOMINANT_SHARPNESS = 8
#: Width of the sigmoid that ends the autocorrelation integral at its first zero crossing.
CORRELATION_SOFTNESS = 0.02
#: Variance, relative to a reference scale squared, at which a fluctuation counts half as a
#: pattern: spectral *shape* statistics (shell and band fractions, centroid, bandwidth,
#: anisotropy) are weighted by ``v / (v + SIGNIFICANT_VARIANCE)``. Shape statistics are
#: scale-invariant, so without the weight a field that has decayed to uniform and the same
#: field plus noise of 1e-4 of its former spread get opposite spectra (white noise puts most
#: of its energy in the top band): measured on the quick reaction-diffusion val split, truth
#: plus 1e-4 noise moved ``band_high`` of the decayed samples by 300 dataset stds. With the
#: weight, a relative spread of 1 % (v = 1e-4) counts half, 10 % counts 99 %. The reference is
#: the trajectory's largest ``|u|`` over all frames and channels (a field that decays to 0
#: keeps the scale it had), or the frame's own ``max|u|`` for a lone frame.
SIGNIFICANT_VARIANCE = 1e-4
#: Band edges as fractions of k_max: (low | mid | high), named by ``names.BAND_NAMES``.
BAND_EDGES = (0.25, 0.5)


@dataclass(frozen=True)
class SpectralLayout:
    """Projection of an ``rfft2`` power array ``[H * (W//2+1)]`` onto shells and bands.

    ``matrix`` columns: shells ``1 .. n_shells``, then ``|k|``, ``|k|^2``, ``kx^2``, ``ky^2``,
    ``kx ky``, the three bands and the total (all ``k != 0``). Each rfft column that stands
    for two conjugate modes is counted twice, and everything is divided by ``(H W)^2`` so the
    total is the variance.
    """

    height: int
    width: int
    matrix: Tensor
    n_shells: int
    k_max: int
    shell_k: Tensor  # [n_shells] wavenumbers 1 .. n_shells
    lag_matrix: Tensor  # [H * W, n_lags]: mean over each ring of lags (real space)
    lag_step: float  # ring width, as a fraction of the domain

    @property
    def first_moment(self) -> int:
        return self.n_shells

    @property
    def second_moment(self) -> int:
        return self.n_shells + 1

    @property
    def structure(self) -> slice:
        """Columns ``kx^2, ky^2, kx ky``: the structure tensor of the gradient / (2π)^2."""
        return slice(self.n_shells + 2, self.n_shells + 5)

    @property
    def bands(self) -> slice:
        return slice(self.n_shells + 5, self.n_shells + 8)

    @property
    def total(self) -> int:
        return self.n_shells + 8


@functools.lru_cache(maxsize=64)
def spectral_layout(
    height: int, width: int, dtype: torch.dtype, device: torch.device
) -> SpectralLayout:
    """The cached :class:`SpectralLayout` of an ``H × W`` grid (built once in float64)."""
    ky = np.fft.fftfreq(height, d=1.0 / height)[:, None]
    kx = np.fft.rfftfreq(width, d=1.0 / width)[None, :]
    kmag = np.sqrt(ky**2 + kx**2)
    # rfft keeps column j for both +j and -j, except j = 0 and the Nyquist column of even W.
    twice = np.full(kx.shape, 2.0)
    twice[0, 0] = 1.0
    if width % 2 == 0:
        twice[0, -1] = 1.0
    weight = np.broadcast_to(twice, kmag.shape) / float(height * width) ** 2

    k_max = min(height, width) // 2
    shell = np.floor(kmag + 0.5).astype(np.int64)
    n_shells = int(shell.max())
    nonzero = kmag > 0
    lo, hi = BAND_EDGES[0] * k_max, BAND_EDGES[1] * k_max
    columns = [np.where(shell == s, weight, 0.0) for s in range(1, n_shells + 1)]
    columns += [
        weight * kmag,
        weight * kmag**2,
        weight * np.broadcast_to(kx**2, kmag.shape),
        weight * np.broadcast_to(ky**2, kmag.shape),
        # kx ky is unchanged by k -> -k, so counting the conjugate twice is right here too.
        weight * kx * ky,
        np.where(nonzero & (kmag <= lo), weight, 0.0),
        np.where((kmag > lo) & (kmag <= hi), weight, 0.0),
        np.where(kmag > hi, weight, 0.0),
        np.where(nonzero, weight, 0.0),
    ]
    matrix = np.stack([c.reshape(-1) for c in columns], axis=1)

    # Rings of periodic lags, one grid cell (of the coarser axis) wide, for the radially
    # averaged autocorrelation.
    cells = min(height, width)
    dy = np.minimum(np.arange(height), height - np.arange(height))[:, None] * cells / height
    dx = np.minimum(np.arange(width), width - np.arange(width))[None, :] * cells / width
    ring = np.floor(np.sqrt(dy**2 + dx**2) + 0.5).astype(np.int64)
    rings = [(ring == r).astype(np.float64) for r in range(int(ring.max()) + 1)]
    lag_matrix = np.stack([r.reshape(-1) / r.sum() for r in rings], axis=1)

    return SpectralLayout(
        height=height,
        width=width,
        matrix=torch.as_tensor(matrix, dtype=dtype, device=device),
        n_shells=n_shells,
        k_max=k_max,
        shell_k=torch.arange(1, n_shells + 1, dtype=dtype, device=device),
        lag_matrix=torch.as_tensor(lag_matrix, dtype=dtype, device=device),
        lag_step=1.0 / cells,
    )


@dataclass
class Spectrum:
    """Spectral statistics of fields ``[..., H, W]``; every tensor is ``[...]`` unless noted.

    * ``power``: ``|rfft2(y - mean)|^2`` ``[..., H, W//2+1]`` (kept for the autocorrelation).
    * ``variance``: the field's variance, ``Σ_{k≠0} power`` (Parseval); 0 if constant.
    * ``varying``: bool, the field varies measurably (see
      :func:`~noa_platform.features.safe_math.resolvable`).
    * ``significance``: ``v / (v + SIGNIFICANT_VARIANCE)`` in ``[0, 1)``, ``v`` the variance
      of the field over its reference scale squared: how much the fluctuation counts as a
      pattern.
    * ``shells``: energy fraction per shell ``[..., n_shells]`` times ``significance`` (sums
      to ``significance``).
    * ``centroid``: energy-weighted mean ``|k|`` (cycles per domain), times ``significance``.
    * ``bandwidth``: energy-weighted standard deviation of ``|k|``, times ``significance``.
    * ``bands``: low / mid / high energy fractions ``[..., 3]``, times ``significance``.
    * ``gradient_rms``: ``sqrt(mean |∇y|^2)`` with the exact spectral derivative, in units of
      the field per domain length (``2π k A / √2`` for ``A sin(2π k x)``).
    * ``anisotropy``: coherence of the gradient structure tensor, ``(λ1 - λ2) / (λ1 + λ2)`` in
      ``[0, 1]``: 0 for isotropic texture, 1 for parallel stripes of any orientation; times
      ``significance``.
    """

    layout: SpectralLayout
    power: Tensor
    variance: Tensor
    varying: Tensor
    significance: Tensor
    shells: Tensor
    centroid: Tensor
    bandwidth: Tensor
    bands: Tensor
    gradient_rms: Tensor
    anisotropy: Tensor


def significance(scale: Tensor, mean_square: Tensor, reference: Tensor | None = None) -> Tensor:
    """``m / (m + SIGNIFICANT_VARIANCE)`` with ``m = mean_square · (scale / reference)²``.

    ``mean_square`` is a statistic of the field divided by its ``scale`` (``max|u|``); the
    factor puts it on the reference scale (default: the field's own, factor 1). Fields with a
    zero reference weigh 0.
    """
    relative = mean_square
    if reference is not None:
        ref = torch.broadcast_to(reference, scale.shape)
        ok = ref > 0
        ratio = torch.where(ok, scale / torch.where(ok, ref, torch.ones_like(ref)),
                            torch.zeros_like(ref))
        relative = mean_square * ratio.square()
    return relative / (relative + SIGNIFICANT_VARIANCE)


def spectrum(fluctuation: Tensor, scale: Tensor, reference: Tensor | None = None) -> Spectrum:
    """Radial spectrum of ``fluctuation [..., H, W]`` (a normalized field minus its mean).

    ``scale [...]`` is the normalization (``max|u|``); ``reference`` (broadcastable to
    ``scale``, ``>= scale``; default ``scale``) the scale the significance weight measures the
    fluctuation against (see :data:`SIGNIFICANT_VARIANCE`). Fields that do not vary measurably
    (:func:`~noa_platform.features.safe_math.resolvable`) count as constant and get zero
    spectral features.
    """
    height, width = fluctuation.shape[-2:]
    layout = spectral_layout(height, width, fluctuation.dtype, fluctuation.device)
    coeffs = torch.view_as_real(torch.fft.rfft2(fluctuation))
    # |F|^2 as re^2 + im^2 in one pass (abs() would be a square root with an infinite
    # gradient at 0, and two squares would allocate two more field-sized temporaries).
    power = torch.einsum("...c,...c->...", coeffs, coeffs)
    projected = power.flatten(-2) @ layout.matrix
    total = projected[..., layout.total]
    varying = resolvable(total, scale)
    # Fractions only where the field varies: the total is then above eps^2, so the division
    # (and its gradient) is well conditioned; elsewhere divide by 1 and mask.
    norm = torch.where(varying, total, torch.ones_like(total)).unsqueeze(-1)
    fractions = torch.where(varying.unsqueeze(-1), projected / norm, torch.zeros_like(projected))
    centroid = fractions[..., layout.first_moment]
    spread = fractions[..., layout.second_moment] - centroid.square()
    jxx, jyy, jxy = fractions[..., layout.structure].unbind(-1)
    # jxx + jyy = <|k|^2> >= 1 wherever the field varies (integer wavenumbers, k = 0 excluded).
    split = safe_sqrt((jxx - jyy).square() + 4.0 * jxy.square())
    anisotropy = safe_div(split, jxx + jyy, threshold=0.5)
    # mean |∇y|^2 = (2π)^2 Σ |k|^2 power; >= (2π)^2 variance where varying, so the root is safe.
    gradient_energy = (2.0 * math.pi) ** 2 * projected[..., layout.second_moment]
    gradient_rms = torch.sqrt(torch.where(varying, gradient_energy, torch.ones_like(total)))
    variance = torch.where(varying, total, torch.zeros_like(total))
    weight = significance(scale, variance, reference)
    return Spectrum(
        layout=layout,
        power=power,
        variance=variance,
        varying=varying,
        significance=weight,
        shells=fractions[..., : layout.n_shells] * weight.unsqueeze(-1),
        centroid=centroid * weight,
        bandwidth=safe_sqrt(spread) * weight,
        bands=fractions[..., layout.bands] * weight.unsqueeze(-1),
        gradient_rms=torch.where(varying, gradient_rms, torch.zeros_like(total)),
        anisotropy=anisotropy * weight,
    )


def spectral_slope(spec: Spectrum) -> Tensor:
    """Least-squares slope of ``log E(k)`` against ``log k`` over shells ``1 .. k_max``.

    ``E(k)`` is the shell's energy fraction plus :data:`SLOPE_FLOOR` (so empty shells count as
    "very little energy" instead of ``-inf``). White noise gives about +1, smooth fields
    strongly negative values; a constant field, or a grid with ``k_max < 2``, gives 0.
    """
    k_max = spec.layout.k_max
    if k_max < 2:
        return torch.zeros_like(spec.variance)
    log_k = torch.log(spec.layout.shell_k[:k_max])
    centred = log_k - log_k.mean()
    log_e = safe_log(spec.shells[..., :k_max], SLOPE_FLOOR)
    # sum(centred) = 0, so the mean of log_e need not be removed.
    slope = (log_e * centred).sum(-1) / centred.square().sum()
    return torch.where(spec.varying, slope, torch.zeros_like(slope))


def dominant_wavenumber(spec: Spectrum) -> Tensor:
    """Soft arg-max of the shell energies (cycles per domain); 0 for a constant field."""
    peak = spec.shells.amax(-1, keepdim=True)
    relative = safe_div(spec.shells, peak)
    weights = relative.pow(DOMINANT_SHARPNESS)
    # The peak shell has weight 1, so the normalizer is >= 1 wherever the field varies.
    k = safe_div((weights * spec.layout.shell_k).sum(-1), weights.sum(-1))
    return torch.where(spec.varying, k, torch.zeros_like(k))


def dominant_wavelength(spec: Spectrum) -> Tensor:
    """``1 / dominant wavenumber``: wavelength as a fraction of the domain; 0 if constant."""
    k = dominant_wavenumber(spec)
    # k >= 1 wherever the field varies, so the threshold only selects the constant case.
    return safe_div(torch.ones_like(k), k, threshold=0.5)


def correlation_length(spec: Spectrum) -> Tensor:
    """Integral length scale: ``∫ R(r) dr`` from 0 to the first zero of ``R``.

    ``R(r)`` is the autocorrelation ``IFFT(|F|^2) / IFFT(|F|^2)(0)`` (Wiener-Khinchin, from the
    power already computed), averaged over rings of lag ``r``. Integrating only up to the
    first zero crossing keeps the long-range sampling noise of ``R`` out; the crossing is
    made soft, ``Π_{r' <= r} σ(R(r') / CORRELATION_SOFTNESS)``, so the result is
    differentiable. ``R = exp(-r^2/ℓ^2)`` gives ``0.886 ℓ``; white noise about half a grid
    cell. Fraction of the domain length; 0 for a constant field.
    """
    layout = spec.layout
    autocov = torch.fft.irfft2(spec.power, s=(layout.height, layout.width))
    # R(0) = H W variance: far from 0 where the field varies; elsewhere divide by 1 so the
    # masked branch has a harmless gradient too.
    at_zero = torch.where(spec.varying, autocov[..., 0, 0], torch.ones_like(spec.variance))
    radial = (autocov.flatten(-2) @ layout.lag_matrix) / at_zero.unsqueeze(-1)
    before_zero = torch.exp(torch.cumsum(F.logsigmoid(radial / CORRELATION_SOFTNESS), dim=-1))
    # Trapezoid rule: the r = 0 sample (R = 1) counts half.
    integral = (before_zero * radial).sum(-1) - 0.5 * before_zero[..., 0]
    length = integral * layout.lag_step
    return torch.where(spec.varying, length, torch.zeros_like(length))


__all__ = [
    "BAND_NAMES",
    "Spectrum",
    "SpectralLayout",
    "correlation_length",
    "dominant_wavelength",
    "dominant_wavenumber",
    "spectral_layout",
    "spectral_slope",
    "spectrum",
]
