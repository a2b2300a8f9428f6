"""The small, cheap setting every check runs the domain in: a coarse grid, a few θ rows, a
few seeded initial conditions. Checks build their inputs here so they agree on them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from noa_platform.api import Domain, Grid
from noa_platform.config import GenerationConfig, domain_config
from noa_platform.data.sampling import sobol_unit
from noa_platform.data.simulate import initial_states

#: The finest grid the solver checks use: enough for any reasonable PDE to be itself, small
#: enough for the whole kit to run in seconds on a laptop.
MAX_CHECK_RESOLUTION = 16
#: Corners of the θ box checked over the full horizon, at most (2**P grows fast).
MAX_CORNERS = 16
#: Sobol points checked over the full horizon besides the corners.
N_SOBOL = 1


class Probe:
    """Inputs for checking ``domain`` at ``resolution`` (default: the quick preset's, at most
    :data:`MAX_CHECK_RESOLUTION`) over ``horizon`` frames (default: the quick preset's)."""

    def __init__(self, domain: Domain, resolution: int | None = None,
                 horizon: int | None = None):
        self.domain = domain
        quick = quick_generation(domain)
        self.resolution = resolution or min(MAX_CHECK_RESOLUTION, quick.resolution)
        self.horizon = horizon or quick.n_frames
        self.grid: Grid = domain.grid_for(self.resolution)
        self.space = domain.parameter_space
        self.families = list(domain.initial_conditions)

    # -- θ -----------------------------------------------------------------------------------

    def centre(self, n: int = 1) -> np.ndarray:
        """``[n, P]`` physical values at the centre of the unit cube."""
        return self.space.from_unit(np.full((n, self.space.dim), 0.5))

    def varied(self, n: int) -> np.ndarray:
        """``[n, P]`` distinct physical rows (Sobol points), for batches of unlike samples."""
        return self.space.from_unit(sobol_unit(self.space.dim, n, seed=7))

    def corners(self) -> np.ndarray:
        """Physical values at the corners of the unit cube, one per distinct conditioning (a
        corner that differs from another only in parameters its category does not read adds
        nothing), at most :data:`MAX_CORNERS` (taken evenly when there are more)."""
        unit = np.array(list(itertools.product((0.0, 1.0), repeat=self.space.dim)))
        values = self.space.from_unit(unit)
        try:
            cond = self.space.conditioning(values)
            _, first = np.unique(cond, axis=0, return_index=True)
            values = values[np.sort(first)]
        except Exception:  # conditioning is checked on its own; here it only saves work
            pass
        if len(values) > MAX_CORNERS:
            pick = np.linspace(0, len(values) - 1, MAX_CORNERS).round().astype(int)
            values = values[pick]
        return values

    def box(self) -> np.ndarray:
        """Corners plus :data:`N_SOBOL` Sobol points: where the horizon must stay finite."""
        return np.concatenate([self.corners(), self.space.from_unit(
            sobol_unit(self.space.dim, N_SOBOL, seed=11))])

    # -- fields ------------------------------------------------------------------------------

    def initial(self, n: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
        """``[n, C, H, W]`` initial conditions cycling through the families, seeded."""
        fams = [self.families[i % len(self.families)] for i in range(n)]
        seeds = [seed + i for i in range(n)]
        return initial_states(self.domain, fams, seeds, self.resolution).to(dtype)

    def family_list(self, n: int) -> list[str]:
        return [self.families[i % len(self.families)] for i in range(n)]

    def rollout(self, u0: torch.Tensor, values: Any, n_frames: int, *,
                frame_dt: float | None = None, seeds: Sequence[int] | None = None,
                noise_amplitude: float = 0.0) -> torch.Tensor:
        """The domain's solver on the probe grid; ``values`` physical θ ``[B, P]``."""
        params = torch.as_tensor(np.asarray(values, dtype=np.float64), device=u0.device)
        return self.domain.solver.rollout(
            u0, params, n_frames, grid=self.grid,
            frame_dt=self.domain.frame_dt if frame_dt is None else frame_dt,
            seeds=None if seeds is None else torch.as_tensor(list(seeds), dtype=torch.int64),
            noise_amplitude=noise_amplitude)

    def describe_row(self, row: np.ndarray) -> str:
        """One θ row by name, for failure messages."""
        try:
            d = self.space.decode(row)
            return "{" + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in d.items()) + "}"
        except Exception:
            return str(np.asarray(row).tolist())


def quick_generation(domain: Domain) -> GenerationConfig:
    """The quick preset's generation settings, or the defaults when that preset is unusable
    (the ``presets`` check reports why)."""
    try:
        return domain_config(domain, "quick").generation
    except Exception:
        return GenerationConfig()


def noise_scale(u0: torch.Tensor) -> float:
    """A noise amplitude small against the fields (1e-3 of their typical size)."""
    s = float(u0.abs().mean())
    return 1e-3 * (s if math.isfinite(s) and s > 0 else 1.0)
