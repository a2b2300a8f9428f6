"""The reaction-diffusion CNO: pseudo-spectral in space, ETDRK4 in time, on the core template.

Composition (see :mod:`noa_platform.numerics.template`): the linear part is diffusion, the
symbol ``diag(D_u, D_v) · (−|k|²)`` (exact in time under ETD, so diffusion never limits the
step); the nonlinear part is the kinetics' reaction, evaluated pointwise in physical space; no
dealiasing (the reactions are polynomials of well-resolved fields, and the 2/3 rule would
change the physics on coarse grids); the integrator is ETDRK4 by default.

Internal step. Each kinetics has a default internal step (for accuracy) and a rate bound, both
computed from the sample's own θ row (see :mod:`.kinetics`); the template turns them into a
per-sample step plan, and samples are integrated in groups that share kinetics (the group key)
and step plan. Input checks, noise, the frame loop, non-finite detection and bit-exact batch
independence are the template's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from noa_platform.api import Grid
from noa_platform.numerics.nonlinear import Nonlinear, pointwise
from noa_platform.numerics.spectral import batch_stable_rfft2, laplacian_symbol
from noa_platform.numerics.template import MAX_STEPS_PER_FRAME, SpectralSolver
from noa_reaction_diffusion.kinetics import (
    COL_KINETICS,
    KINETICS_LAWS,
    PARAMETER_SPACE,
    Kinetics,
    ReactionSplit,
)

__all__ = ["MAX_STEPS_PER_FRAME", "ReactionDiffusionSolver"]


class ReactionDiffusionSolver(SpectralSolver):
    """Batched Gray–Scott / FitzHugh–Nagumo solver; see the module docstring.

    ``rollout(u0 [B, 2, H, W], params [B, 5], n_frames, grid=, frame_dt=, seeds=,
    noise_amplitude=, internal_dt=None) -> [B, n_frames + 1, 2, H, W]``; θ columns as in
    :mod:`.kinetics`.
    """

    name = "reaction-diffusion"
    channels = 2
    dealiasing = "none"

    def __init__(self, integrator: str = "etdrk4",
                 laws: Sequence[Kinetics] = KINETICS_LAWS):
        """``integrator``: a name in :data:`~noa_platform.numerics.etd.INTEGRATORS`; ``laws``:
        the kinetics by index of the ``kinetics`` column (replace them to verify the scheme with
        other reaction terms, e.g. none at all)."""
        super().__init__(integrator)
        if len(laws) != len(KINETICS_LAWS):
            raise ValueError(f"need {len(KINETICS_LAWS)} kinetics laws, got {len(laws)}")
        self.laws = tuple(laws)
        self.parameter_space = PARAMETER_SPACE

    def _law(self, theta: np.ndarray) -> Kinetics:
        """The kinetics of a group (all its rows share it: it is the group key)."""
        return self.laws[int(np.atleast_2d(theta)[0, COL_KINETICS])]

    # -- the template's hooks --------------------------------------------------------------------

    def group_key(self, theta_row: np.ndarray) -> int:
        return int(theta_row[COL_KINETICS])

    def label(self, theta_row: np.ndarray) -> str:
        return self._law(theta_row).name

    def default_dt(self, theta: np.ndarray) -> np.ndarray:
        return np.concatenate([self._law(row).default_dt(row[None]) for row in theta])

    def rate_bound(self, theta: np.ndarray) -> np.ndarray:
        return np.concatenate([self._law(row).rate_bound(row[None]) for row in theta])

    def linear_part(self, theta: np.ndarray, grid: Grid) -> torch.Tensor:
        diffusion = torch.as_tensor(self._law(theta).diffusion(theta), dtype=torch.float64)
        return diffusion[:, :, None, None] * laplacian_symbol(grid)

    def nonlinear_term(self, theta: np.ndarray, grid: Grid, dtype: torch.dtype,
                       device: torch.device) -> Nonlinear:
        law = self._law(theta)
        coeffs = law.coefficients(theta, dtype, device)
        split = law.split(coeffs) if _split_matches_reaction(law) else None
        if split is None:
            def reaction(x: torch.Tensor) -> torch.Tensor:
                return torch.stack(law.reaction(x[:, 0], x[:, 1], coeffs), dim=1)

            return pointwise(reaction, grid)
        return _split_term(split, grid)


def _split_matches_reaction(law: Kinetics) -> bool:
    """Whether ``law.split`` describes ``law.reaction``: both defined by the same class (a
    subclass that replaces the reaction but inherits the split keeps the plain path)."""
    def owner(name: str) -> type:
        return next(k for k in type(law).__mro__ if name in k.__dict__)
    return owner("split") is owner("reaction")


def _as_column(value):
    """A per-sample scalar ``[b, 1, 1]`` as ``[b, 1, 1, 1]`` (it meets one channel's real view
    ``[b, H, W//2+1, 2]``); Python floats pass through."""
    return value.reshape(-1, 1, 1, 1) if torch.is_tensor(value) else value


def _split_term(split: ReactionSplit, grid: Grid) -> Nonlinear:
    """``N̂`` of a reaction in the form of :class:`~.kinetics.ReactionSplit`: the product field
    ``P`` in physical space and one forward FFT of it; ``Σ_j A_ij x̂_j + w_i P̂`` on real views
    (real products: bit-reproducible) and ``b_i`` on the mean mode (``rfft2`` of a constant
    ``b`` is ``b·H·W`` there)."""
    shape = tuple(grid.shape)
    cells = float(shape[0] * shape[1])
    linear = {key: _as_column(a) for key, a in split.linear.items()}
    weight = {i: _as_column(w) for i, w in split.weight.items()}

    def term(x_hat: torch.Tensor) -> torch.Tensor:
        x = torch.fft.irfft2(x_hat, s=shape)
        p_hat = torch.view_as_real(
            batch_stable_rfft2(split.product(x[:, 0], x[:, 1]).unsqueeze(1)))[:, 0]
        xr = torch.view_as_real(x_hat)
        out = torch.empty_like(xr)
        for i in range(2):
            parts = [(weight[i], p_hat)] if i in weight else []
            parts += [(linear[i, j], xr[:, j]) for j in range(2) if (i, j) in linear]
            o = out[:, i]
            if not parts:
                o.zero_()
                continue
            if isinstance(parts[0][0], float) and parts[0][0] == 1.0 and len(parts) > 1 \
                    and torch.is_tensor(parts[1][0]):
                torch.addcmul(parts[0][1], parts[1][0], parts[1][1], out=o)   # P̂ + A x̂
                parts = parts[1:]
            else:
                torch.mul(parts[0][1], parts[0][0], out=o)
            for a, field in parts[1:]:
                if torch.is_tensor(a):
                    o.addcmul_(a, field)
                else:
                    o.add_(field, alpha=a)
            if i in split.constant:
                o[:, 0, 0, 0].add_(split.constant[i].reshape(-1), alpha=cells)
        return torch.view_as_complex(out)

    return term
