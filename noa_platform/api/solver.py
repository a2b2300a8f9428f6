"""The CNO contract: a verified numerical solver, and the checks every solver makes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from noa_platform.api.grid import Grid
from noa_platform.errors import SolverError

if TYPE_CHECKING:  # the contract module stays importable without loading torch
    import torch


@dataclass(frozen=True)
class InitialCondition:
    """A named, seeded family of initial conditions.

    ``sample(n, grid, generator)`` returns ``[n, C, H, W]`` float64 on the CPU, drawing every
    random number from ``generator`` (a CPU :class:`torch.Generator`), so a family member is a
    pure function of the generator's seed. Callers cast to the run's dtype and device.
    """

    name: str
    sample: Callable[[int, Grid, torch.Generator], torch.Tensor]
    description: str = ""

    @classmethod
    def from_function(cls, name: str, sample: Callable[[int, Grid, torch.Generator],
                                                       torch.Tensor]) -> InitialCondition:
        """The family ``name`` drawn by ``sample``, described by its docstring's first line."""
        return cls(name, sample, (sample.__doc__ or "").split("\n")[0])


class Solver(ABC):
    """The domain's ground-truth operator (CNO).

    :meth:`rollout` contract:

    * ``u0``: ``[B, C, H, W]`` float32 or float64 on any device; must be finite.
    * ``params``: ``[B, P]`` physical θ values (float64 preferred), one row per sample.
    * ``seeds``: ``[B]`` integers, one per sample, for stochastic forcing
      (``noise_amplitude > 0``) and for per-sample static fields a domain draws from them
      (e.g. a heterogeneous wave speed); a deterministic solver without such fields ignores
      them.
    * Returns ``[B, n_frames + 1, C, H, W]`` in ``u0``'s dtype and device; frame 0 is ``u0``.
    * Sample ``i`` depends only on ``(u0[i], params[i], seeds[i])``: any internal step count is
      decided per sample, never from the batch's worst case.
    * Refuses out-of-range θ (:class:`~noa_platform.errors.ParameterError`), non-finite
      ``u0`` and frame intervals it cannot step stably (:class:`SolverError`).
    """

    @abstractmethod
    def rollout(
        self,
        u0: torch.Tensor,
        params: torch.Tensor,
        n_frames: int,
        *,
        grid: Grid,
        frame_dt: float,
        seeds: torch.Tensor | None = None,
        noise_amplitude: float = 0.0,
    ) -> torch.Tensor:
        """Integrate ``n_frames`` frames of ``frame_dt`` from ``u0``."""


def check_initial_state(u0: torch.Tensor, channels: int) -> None:
    """The checks every solver makes on ``u0``: shape ``[B, C, H, W]`` and finiteness."""
    if u0.ndim != 4 or u0.shape[1] != channels:
        raise SolverError(f"u0 must be [B, {channels}, H, W], got {list(u0.shape)}")
    import torch

    if not torch.is_floating_point(u0):
        raise SolverError(f"u0 must be floating point, got {u0.dtype}")
    bad = ~torch.isfinite(u0).flatten(1).all(dim=1)
    if bad.any():
        raise SolverError(
            f"initial condition is not finite (sample {int(bad.nonzero()[0])} has NaN or Inf)"
        )
