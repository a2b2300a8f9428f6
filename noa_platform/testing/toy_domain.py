"""A tiny domain with an exact solver, for testing the platform without any physics plugin.

Linear decay ``u_t = -rate * u`` per channel: the exact solution ``u(t) = u0 exp(-rate t)``
makes solver checks trivial, and the domain exercises every part of the contract (a log,
linear and categorical parameter, two initial-condition families, an invariant, presets).
It is not registered anywhere by default; tests and plugin fixtures instantiate it.
"""

from __future__ import annotations

import math

import torch

from noa_platform.api import (
    CategoricalParameter,
    Channel,
    Domain,
    Grid,
    InitialCondition,
    Invariant,
    LinearParameter,
    LogParameter,
    ParameterSpace,
    Solver,
    check_initial_state,
)
from noa_platform.errors import SolverError


class DecaySolver(Solver):
    def __init__(self, space: ParameterSpace, channels: int):
        self.space = space
        self.channels = channels

    def rollout(self, u0, params, n_frames, *, grid, frame_dt, seeds=None, noise_amplitude=0.0):
        check_initial_state(u0, self.channels)
        self.space.validate(params)
        if not (math.isfinite(frame_dt) and frame_dt > 0):
            raise SolverError(f"frame_dt must be positive and finite, got {frame_dt}")
        rate = params[:, 0].to(torch.float64) * (1.0 + params[:, 2].to(torch.float64))
        offset = params[:, 1].to(torch.float64)
        t = torch.arange(n_frames + 1, dtype=torch.float64) * frame_dt
        decay = torch.exp(-rate[:, None] * t[None, :])  # [B, T+1]
        u = u0.to(torch.float64)
        traj = offset[:, None, None, None, None] + (u[:, None] - offset[:, None, None, None, None]) \
            * decay[:, :, None, None, None]
        traj = traj.to(dtype=u0.dtype, device=u0.device)
        # offset + (u0 - offset) * 1 need not be u0's bits; the contract says frame 0 is u0.
        traj[:, 0] = u0
        return traj


def _noise(n: int, grid: Grid, gen: torch.Generator, channels: int) -> torch.Tensor:
    return torch.randn((n, channels, *grid.shape), generator=gen, dtype=torch.float64)


def _waves(n: int, grid: Grid, gen: torch.Generator, channels: int) -> torch.Tensor:
    h, w = grid.shape
    y = torch.arange(h, dtype=torch.float64)[:, None] / h
    x = torch.arange(w, dtype=torch.float64)[None, :] / w
    k = torch.randint(1, 4, (n, channels, 2), generator=gen).to(torch.float64)
    phase = torch.rand((n, channels), generator=gen, dtype=torch.float64) * 6.283185307179586
    arg = 6.283185307179586 * (k[..., 0, None, None] * y + k[..., 1, None, None] * x)
    return torch.sin(arg + phase[..., None, None])


#: A u-afno small enough to build and train a step in well under a second.
TINY_U_AFNO = {"base_channels": 4, "levels": 2, "modes": 4, "afno_blocks": 1, "num_blocks": 2,
               "cond_dim": 4}


class ToyDomain(Domain):
    """Exponential relaxation towards an offset; exact, cheap, deterministic."""

    version = "1.0"
    description = "linear decay u_t = -rate (1 + boost) (u - offset), solved exactly"
    frame_dt = 0.1
    grid = Grid((16, 16), (1.0, 1.0))

    def __init__(self, name: str = "toy", channels: int = 2):
        self.name = name
        self.channels = tuple(Channel(f"u{i}") for i in range(channels))
        self.parameter_space = ParameterSpace([
            LogParameter("rate", "decay rate", low=0.1, high=10.0),
            LinearParameter("offset", "relaxation target", low=-1.0, high=1.0),
            CategoricalParameter("boost", "rate multiplier 1 + index", choices=("x1", "x2")),
        ])
        c = channels
        self.initial_conditions = {
            "noise": InitialCondition("noise", lambda n, g, gen: _noise(n, g, gen, c),
                                      "white Gaussian noise"),
            "waves": InitialCondition("waves", lambda n, g, gen: _waves(n, g, gen, c),
                                      "one random sinusoid per channel"),
        }
        self.invariants = {
            "mean": Invariant("mean", lambda u, grid, theta: u.mean(dim=(-3, -2, -1)),
                              description="mean over the field; decays with the field"),
        }
        self.presets = {
            "quick": {"generation": {"resolution": 16, "n_samples": 16, "n_frames": 4},
                      "mno": {"architecture": TINY_U_AFNO}},
            "standard": {"generation": {"resolution": 32, "n_samples": 64, "n_frames": 8}},
        }
        self.solver = DecaySolver(self.parameter_space, channels)
