"""Convolutional pieces of the U-Net: residual blocks, down- and upsampling.

All spatial convolutions pad circularly because every field on the platform lives on a periodic
grid: zero padding would invent a wall at the domain edge and make the operator position-dependent.
Normalisation is GroupNorm (batch-size independent, so a rollout of one sample behaves like a
batch of many) followed by FiLM and GELU, or no normalisation at all (``norm="none"``).

Why "none" exists: GroupNorm divides each sample's features by their own spatial spread, so a
field with fluctuations of 1e-3 and one with fluctuations of 1 produce the same normalised
pattern, and a block's output no longer knows how large its input's structure was. For
dynamics that decay to a uniform state (a third of Gray–Scott samples) the operator then
amplifies the residue of a pattern that should be vanishing into a pattern of full size.
Without normalisation the network is equivariant to nothing but what its weights learn, like
neuraloperator's FNO.

A middle way is a variance floor (``norm_floor``): GroupNorm divides by
``sqrt(var + floor)``, so groups whose spread is well above the floor are normalised as usual,
while a faint residue (variance far below the floor) passes scaled by ``1/sqrt(floor)``, its
size kept: it can fade as the physics says instead of being blown up to unit variance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from noa_platform.models.conditioning import MaybeFiLM

#: Upper bound on GroupNorm groups; channel counts here are powers of two times the base width.
MAX_GROUPS = 8
#: The ``norm`` choices of the convolutional and AFNO blocks.
NORMS = ("group", "none")


def num_groups(channels: int, max_groups: int = MAX_GROUPS) -> int:
    """Largest group count ``<= max_groups`` that divides ``channels`` (any width is accepted)."""
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


def make_norm(kind: str, channels: int, floor: float = 0.0) -> nn.Module:
    """GroupNorm for ``"group"`` (variance floored at ``floor``, never below PyTorch's 1e-5),
    the identity for ``"none"`` (see the module docstring)."""
    if kind == "group":
        return nn.GroupNorm(num_groups(channels), channels, eps=max(floor, 1e-5))
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {kind!r}")


def periodic_conv(c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1) -> nn.Conv2d:
    """A convolution with circular padding that keeps ``H, W`` (stride 1) or halves them.

    For stride 2 the kernel is 4 wide with padding 1: ``(H + 2 - 4) / 2 + 1 = H / 2`` exactly for
    even ``H``, and the receptive field is centred between input points instead of skewed to one
    side as a 3-wide stride-2 kernel would be.
    """
    if kernel_size == 1:
        return nn.Conv2d(c_in, c_out, 1, stride=stride)
    return nn.Conv2d(
        c_in, c_out, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
        padding_mode="circular",
    )


class NormFiLMAct(nn.Module):
    """``GELU(FiLM(norm(x), e))`` on ``x [B, C, H, W]``."""

    def __init__(self, channels: int, cond_dim: int | None, norm: str = "group",
                 floor: float = 0.0) -> None:
        super().__init__()
        self.norm = make_norm(norm, channels, floor)
        self.film = MaybeFiLM(cond_dim, channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        return F.gelu(self.film(self.norm(x), emb))


class ResBlock(nn.Module):
    """Pre-activation residual block ``x + conv(act(conv(act(x))))`` on ``[B, C, H, W]``."""

    def __init__(self, channels: int, cond_dim: int | None, norm: str = "group",
                 floor: float = 0.0) -> None:
        super().__init__()
        self.act1 = NormFiLMAct(channels, cond_dim, norm, floor)
        self.conv1 = periodic_conv(channels, channels)
        self.act2 = NormFiLMAct(channels, cond_dim, norm, floor)
        self.conv2 = periodic_conv(channels, channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(self.act1(x, emb))
        h = self.conv2(self.act2(h, emb))
        return x + h


class Downsample(nn.Module):
    """``[B, C_in, H, W] -> [B, C_out, H/2, W/2]`` by a learned stride-2 periodic convolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = periodic_conv(c_in, c_out, kernel_size=4, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """``[B, C_in, H, W] -> [B, C_out, 2H, 2W]``: nearest-neighbour doubling then a periodic conv.

    Nearest doubling has no edge handling to get wrong on a periodic grid (bilinear interpolation
    clamps at the border) and, followed by a 3×3 conv, avoids the checkerboard of transposed convs.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = periodic_conv(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DecoderLevel(nn.Module):
    """One decoder level: upsample, concatenate the encoder skip, fuse (1×1), residual block.

    ``x [B, C_in, H, W]``, ``skip [B, C_out, 2H, 2W]`` -> ``[B, C_out, 2H, 2W]``.
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int | None, norm: str = "group",
                 floor: float = 0.0) -> None:
        super().__init__()
        self.up = Upsample(c_in, c_out)
        self.fuse = periodic_conv(2 * c_out, c_out, kernel_size=1)
        self.block = ResBlock(c_out, cond_dim, norm, floor)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor, emb: torch.Tensor | None
    ) -> torch.Tensor:
        x = self.fuse(torch.cat([self.up(x), skip], dim=1))
        return self.block(x, emb)
