"""AFNO spectral mixing (Guibas et al., "Adaptive Fourier Neural Operators", ICLR 2022).

The filter mixes tokens globally in Fourier space: ``rfft2`` of the feature map, keep the lowest
``modes`` frequencies per axis, apply a block-diagonal two-layer complex MLP to the channel
vector of every kept mode (weights shared across modes), soft-threshold, inverse FFT.

Two mixings (``mixing``):

* ``"afno"``, as published: complex biases added to every kept mode and ReLU / softshrink on
  the real and imaginary parts separately. Neither commutes with the phase factor a spatial
  shift puts on each mode, so the filter is not translation-equivariant, and its biases alone
  (a constant spectrum: a bump at the grid's origin) make a uniform input non-uniform. A
  trained reaction-diffusion U-AFNO grew such a bump, step after step, out of exactly uniform
  Gray–Scott states that the CNO keeps uniform.
* ``"equivariant"``: no additive biases, and both nonlinearities act on each mode's modulus
  only (complex soft-thresholding ``z · relu(|z| − s) / |z|``, the phase kept), with learned
  thresholds ``s ≥ 0`` inside and ``sparsity`` at the output. Every operation commutes with a
  common phase factor, so the filter commutes with every periodic shift of the grid, and a
  uniform input (only the mean mode non-zero) stays uniform. The gain is at most 1, so modes
  that are round-off noise are never amplified.

Because the MLP weights are shared across modes, no parameter depends on how many modes exist:
``modes`` is only a cut-off, clamped at run time to what the actual grid holds. A model built
for one resolution therefore runs on another, and no weight is ever left without a gradient
because its mode was absent from a small grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from noa_platform.models.conditioning import MaybeFiLM
from noa_platform.models.unet import make_norm


def clamp_modes(modes: int, height: int, width: int) -> tuple[int, int]:
    """Modes actually kept on an ``height × width`` grid: ``(m_h, m_w)``.

    Along ``W`` (the rfft axis) the grid holds ``W // 2 + 1`` non-negative frequencies; along
    ``H`` it holds ``H`` frequencies (both signs). Asking for more is not an error: a model
    configured for fine grids must still run on coarse ones.
    """
    return min(modes, height), min(modes, width // 2 + 1)


#: The spectral filter's mixings (see the module docstring).
MIXINGS = ("afno", "equivariant")


def complex_shrink(zr: torch.Tensor, zi: torch.Tensor, threshold: torch.Tensor | float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-thresholding of the modulus of ``zr + i zi``, the phase kept: ``z · relu(|z| − s)
    / |z|``. The gain is in ``[0, 1)``; the tiny constant keeps the modulus's gradient finite
    at ``z = 0``, where the output is 0."""
    modulus = torch.sqrt(zr * zr + zi * zi + 1e-20)
    gain = F.relu(modulus - threshold) / modulus
    return zr * gain, zi * gain


def split_rows(m_h: int) -> tuple[int, int]:
    """How many of the ``m_h`` kept ``H``-frequencies are non-negative and how many negative.

    The lowest ``|k|`` are ``0, 1, -1, 2, -2, ...``; with ``m_h = H`` this covers every row once.
    """
    return (m_h + 1) // 2, m_h // 2


class AFNOSpectralFilter(nn.Module):
    """``x [B, C, H, W] -> [B, C, H, W]``: global mixing through the kept Fourier modes.

    Weights are real tensors with a leading axis of 2 for the real and imaginary parts:
    ``w1 [2, nb, bs, bs*hf]``, ``w2 [2, nb, bs*hf, bs]`` with ``nb = num_blocks`` and
    ``bs = C / nb``; ``mixing="afno"`` adds biases ``b1 [2, nb, bs*hf]``, ``b2 [2, nb, bs]``,
    ``mixing="equivariant"`` the hidden thresholds' pre-softplus values ``b1 [nb, bs*hf]``.
    Block-diagonal weights cut the cost of the per-mode channel MLP by ``nb`` relative to a
    dense complex matrix.

    Soft-thresholding of the output (``sparsity`` as λ; of the real and imaginary parts, or of
    the modulus) drives weak modes to exactly zero, AFNO's adaptive sparsification.
    """

    def __init__(
        self,
        channels: int,
        *,
        num_blocks: int = 8,
        hidden_factor: int = 1,
        modes: int = 16,
        sparsity: float = 0.01,
        mixing: str = "afno",
    ) -> None:
        super().__init__()
        if mixing not in MIXINGS:
            raise ValueError(f"mixing must be one of {', '.join(MIXINGS)}, got {mixing!r}")
        if num_blocks < 1 or channels % num_blocks != 0:
            raise ValueError(
                f"num_blocks={num_blocks} must be >= 1 and divide the {channels} "
                "bottleneck channels"
            )
        if hidden_factor < 1:
            raise ValueError(f"hidden_factor must be >= 1, got {hidden_factor}")
        if modes < 1:
            raise ValueError(f"modes must be >= 1, got {modes}")
        if sparsity < 0:
            raise ValueError(f"sparsity (softshrink lambda) must be >= 0, got {sparsity}")
        self.channels = channels
        self.num_blocks = num_blocks
        self.block_size = channels // num_blocks
        self.hidden_factor = hidden_factor
        self.modes = modes
        self.sparsity = float(sparsity)
        self.mixing = mixing
        bs, hid = self.block_size, self.block_size * hidden_factor
        # Variance-preserving complex init: each output part sums 2*fan_in real products.
        # AFNO's original 0.02 scale shrinks the spectrum so far that softshrink (λ=0.01) zeroes
        # it and the filter starts dead; this one keeps coefficients O(1) relative to λ.
        self.w1 = nn.Parameter(torch.randn(2, num_blocks, bs, hid) / math.sqrt(2 * bs))
        self.w2 = nn.Parameter(torch.randn(2, num_blocks, hid, bs) / math.sqrt(2 * hid))
        if mixing == "afno":
            self.b1 = nn.Parameter(torch.zeros(2, num_blocks, hid))
            self.b2 = nn.Parameter(torch.zeros(2, num_blocks, bs))
        else:
            # Hidden thresholds softplus(b1) >= 0, starting at the output's λ scale (0.01)
            # so that the hidden layer is non-linear from the first step.
            self.b1 = nn.Parameter(torch.full((num_blocks, hid), math.log(math.expm1(0.01))))

    def kept_modes(self, height: int, width: int) -> tuple[int, int]:
        """``(m_h, m_w)`` used on an ``height × width`` input (see :func:`clamp_modes`)."""
        return clamp_modes(self.modes, height, width)

    def _complex_linear(
        self, zr: torch.Tensor, zi: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Block-diagonal complex affine map ``z [B, nb, i, m_h, m_w] -> [B, nb, o, m_h, m_w]``
        (linear when ``b`` is None)."""
        w = w.to(zr.dtype)

        def mm(t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            return torch.einsum("bnixy,nio->bnoxy", t, m)
        real = mm(zr, w[0]) - mm(zi, w[1])
        imag = mm(zi, w[0]) + mm(zr, w[1])
        if b is not None:
            b = b.to(zr.dtype)
            real = real + b[0][None, :, :, None, None]
            imag = imag + b[1][None, :, :, None, None]
        return real, imag

    def _mlp(self, zr: torch.Tensor, zi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-mode two-layer complex MLP and the output's soft-thresholding."""
        if self.mixing == "afno":
            hr, hi = self._complex_linear(zr, zi, self.w1, self.b1)
            hr, hi = F.relu(hr), F.relu(hi)
            yr, yi = self._complex_linear(hr, hi, self.w2, self.b2)
            return F.softshrink(yr, self.sparsity), F.softshrink(yi, self.sparsity)
        hr, hi = self._complex_linear(zr, zi, self.w1, None)
        threshold = F.softplus(self.b1).to(zr.dtype)[None, :, :, None, None]
        hr, hi = complex_shrink(hr, hi, threshold)
        yr, yi = self._complex_linear(hr, hi, self.w2, None)
        return complex_shrink(yr, yi, self.sparsity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_dtype = x.dtype
        # FFTs of half-precision tensors are restricted to power-of-two sizes and lose accuracy;
        # do the spectral part in at least float32 whatever autocast says.
        with torch.autocast(device_type=x.device.type, enabled=False):
            if x.dtype not in (torch.float32, torch.float64):
                x = x.float()
            batch, chans, height, width = x.shape
            m_h, m_w = self.kept_modes(height, width)
            n_pos, n_neg = split_rows(m_h)

            spec = torch.fft.rfft2(x, norm="ortho")  # [B, C, H, W//2+1]
            pieces = [spec[:, :, :n_pos, :m_w]]
            if n_neg:
                pieces.append(spec[:, :, height - n_neg :, :m_w])
            z = torch.cat(pieces, dim=2).reshape(batch, self.num_blocks, self.block_size, m_h, m_w)

            yr, yi = self._mlp(z.real, z.imag)
            y = torch.complex(yr, yi).reshape(batch, chans, m_h, m_w)

            out = spec.new_zeros(spec.shape)
            out[:, :, :n_pos, :m_w] = y[:, :, :n_pos]
            if n_neg:
                out[:, :, height - n_neg :, :m_w] = y[:, :, n_pos:]
            result = torch.fft.irfft2(out, s=(height, width), norm="ortho")
        return result.to(in_dtype)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_blocks={self.num_blocks}, "
            f"hidden_factor={self.hidden_factor}, modes={self.modes}, sparsity={self.sparsity}, "
            f"mixing={self.mixing}"
        )


class AFNOBlock(nn.Module):
    """Transformer-style block on ``[B, C, H, W]``: spectral token mixing, then a channel MLP.

    ``x = x + filter(FiLM(norm(x))); x = x + mlp(FiLM(norm(x)))``. Both halves are residual so a
    stack of blocks starts close to the identity and stays trainable at depth.
    """

    def __init__(
        self,
        channels: int,
        cond_dim: int | None,
        *,
        num_blocks: int = 8,
        hidden_factor: int = 1,
        modes: int = 16,
        sparsity: float = 0.01,
        mlp_ratio: int = 2,
        norm: str = "group",
        norm_floor: float = 0.0,
        mixing: str = "afno",
    ) -> None:
        super().__init__()
        if mlp_ratio < 1:
            raise ValueError(f"mlp_ratio must be >= 1, got {mlp_ratio}")
        self.norm1 = make_norm(norm, channels, norm_floor)
        self.film1 = MaybeFiLM(cond_dim, channels)
        self.filter = AFNOSpectralFilter(
            channels, num_blocks=num_blocks, hidden_factor=hidden_factor, modes=modes,
            sparsity=sparsity, mixing=mixing,
        )
        self.norm2 = make_norm(norm, channels, norm_floor)
        self.film2 = MaybeFiLM(cond_dim, channels)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, channels * mlp_ratio, 1),
            nn.GELU(),
            nn.Conv2d(channels * mlp_ratio, channels, 1),
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        x = x + self.filter(self.film1(self.norm1(x), emb))
        return x + self.mlp(self.film2(self.norm2(x), emb))
