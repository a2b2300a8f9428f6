"""Building blocks for the nonlinear term ``N̂(û)`` of a spectral solver.

A nonlinear term maps the state's spectrum ``[B, C, H, W//2+1]`` to the spectrum of ``N(u)``.
Most are evaluated in physical space (products are cheap there, convolutions in Fourier space
are not): :func:`pointwise` wraps such a function. :func:`dealiased` applies a dealiasing mask
around any term; :class:`~noa_platform.numerics.template.SpectralSolver` does that from the
solver's ``dealiasing`` rule, so a domain writes its term without thinking about aliasing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from noa_platform.api import Grid

__all__ = ["Nonlinear", "dealiased", "pointwise"]

#: A nonlinear term: state spectrum in, spectrum of ``N(u)`` out (same shape).
Nonlinear = Callable[[torch.Tensor], torch.Tensor]


def pointwise(fn: Callable[[torch.Tensor], torch.Tensor], grid: Grid) -> Nonlinear:
    """``N̂(û) = rfft2(fn(irfft2(û)))`` for ``fn`` acting on physical fields ``[B, C, H, W]``.

    For reaction terms and other pointwise functions of the state; ``fn`` may also take
    derivatives itself (e.g. with :func:`~noa_platform.numerics.spectral.gradient`).
    """
    shape = tuple(grid.shape)

    def term(u_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(fn(torch.fft.irfft2(u_hat, s=shape)))

    return term


def dealiased(term: Nonlinear, mask: torch.Tensor | None) -> Nonlinear:
    """``mask · N̂(mask · û)``: Orszag's rule applied to the input and the output of ``term``.

    Truncating the input to the kept modes makes a quadratic product alias only into the
    removed modes; truncating the output removes them. ``mask`` is a boolean ``[H, W//2+1]`` on
    the run's device, or ``None`` for no dealiasing (``term`` returned unchanged, so its bits
    are untouched). Zeroing is a select, not a multiplication, so kept modes keep their bits.
    """
    if mask is None:
        return term
    removed = ~mask

    def wrapped(u_hat: torch.Tensor) -> torch.Tensor:
        return term(u_hat.masked_fill(removed, 0)).masked_fill(removed, 0)

    return wrapped
