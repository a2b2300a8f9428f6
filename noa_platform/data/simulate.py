"""Turning stored sample descriptions into trajectories: the one path for generation and replay.

A sample is fully described by its physical θ, its seed and its initial-condition family.
:func:`simulate` is used both to generate a dataset and to replay any sample of it, so a
replayed sample is bit-identical to the stored one by construction (given the solver keeps
its contract that a sample does not depend on its batch-mates).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from noa_platform.api import Domain
from noa_platform.data.sampling import IC_DRAW, NOISE, derive_seed


def initial_states(domain: Domain, families: Sequence[str], seeds: Sequence[int],
                   resolution: int) -> torch.Tensor:
    """``[B, C, H, W]`` float64 initial conditions, sample ``i`` from ``(family_i, seed_i)``."""
    grid = domain.grid_for(resolution)
    states = []
    for family, seed in zip(families, seeds):
        gen = torch.Generator(device="cpu").manual_seed(derive_seed(seed, IC_DRAW))
        states.append(domain.initial_condition(family).sample(1, grid, gen))
    return torch.cat(states).to(torch.float64)


def simulate(
    domain: Domain,
    values: np.ndarray,
    seeds: Sequence[int],
    families: Sequence[str],
    *,
    n_frames: int,
    resolution: int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    noise_amplitude: float = 0.0,
) -> torch.Tensor:
    """Trajectories ``[B, n_frames + 1, C, H, W]`` (in ``dtype``, on ``device``)."""
    u0 = initial_states(domain, families, seeds, resolution).to(dtype=dtype, device=device)
    params = torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
    noise_seeds = torch.tensor([derive_seed(s, NOISE) for s in seeds], dtype=torch.int64)
    return domain.solver.rollout(
        u0, params, n_frames,
        grid=domain.grid_for(resolution),
        frame_dt=domain.frame_dt,
        seeds=noise_seeds,
        noise_amplitude=noise_amplitude,
    )
