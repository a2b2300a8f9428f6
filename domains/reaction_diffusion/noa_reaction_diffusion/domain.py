"""The reaction-diffusion :class:`~noa_platform.api.Domain`."""

from __future__ import annotations

import torch

from noa_platform.api import Channel, Domain, Grid, Invariant, ParameterSpace
from noa_reaction_diffusion.initial_conditions import INITIAL_CONDITIONS
from noa_reaction_diffusion.kinetics import PARAMETER_SPACE
from noa_reaction_diffusion.solver import ReactionDiffusionSolver


def _channel_mean(channel: int):
    def mean(frames: torch.Tensor, grid: Grid, theta: torch.Tensor) -> torch.Tensor:
        return frames[..., channel, :, :].mean(dim=(-2, -1))
    return mean


#: Which θ columns each kinetics reads (see :mod:`.kinetics`); learned operators see the others
#: masked.
READS = {"kinetics": {"gray-scott": ("F", "k"), "fitzhugh-nagumo": ("kappa", "tau")}}


_IC_WEIGHTS = {"random-squares": 0.4, "gaussian-random-field": 0.15, "multiscale": 0.15,
               "sinusoids": 0.15, "blobs": 0.15}


class ReactionDiffusion(Domain):
    """Two-species reaction-diffusion: Gray–Scott or FitzHugh–Nagumo kinetics.

    Periodic grid in grid units (spacing 1): the default 64×64 grid has extent 64, and a change
    of resolution keeps the spacing (``grid_scaling = "spacing"``), so patterns keep their size in
    cells and a 32² run is a smaller window of the same physics. θ, the equations and the FHN
    box are documented in :mod:`noa_reaction_diffusion.kinetics`; the scheme in
    :mod:`noa_reaction_diffusion.solver`.
    """

    name = "reaction-diffusion"
    version = "0.1.0"
    description = ("Gray–Scott and FitzHugh–Nagumo reaction-diffusion on a periodic grid "
                   "(pseudo-spectral, ETDRK4)")
    channels = (
        Channel("u", "state", "dimensionless", description="substrate / activator"),
        Channel("v", "state", "dimensionless", description="catalyst / inhibitor"),
    )
    grid = Grid((64, 64), (64.0, 64.0), periodic=True)
    grid_scaling = "spacing"
    frame_dt = 50.0
    parameter_space = ParameterSpace(PARAMETER_SPACE.parameters, reads=READS)
    initial_conditions = INITIAL_CONDITIONS
    invariants = {
        "mass_u": Invariant("mass_u", _channel_mean(0), conserved=False,
                            description="spatial mean of u; not conserved (reactions)"),
        "mass_v": Invariant("mass_v", _channel_mean(1), conserved=False,
                            description="spatial mean of v; not conserved (reactions)"),
    }
    # Presets: `quick` fits `make demo` (minutes on 2 CPU cores); `standard` is the real size.
    # Training rollouts are shorter than the stored horizon: every batch then starts from an
    # initial condition, the rarest and hardest transition (frame 0 -> 1 changes the field
    # about 20x more than a later frame does), and validation still rolls out the full horizon.
    presets = {
        "quick": {
            "generation": {
                "resolution": 32, "n_samples": 256, "n_frames": 32, "batch_size": 32,
                "ic_families": _IC_WEIGHTS,
            },
            "mno": {"architecture": {"base_channels": 16, "levels": 2, "modes": 8,
                                     "afno_blocks": 2, "num_blocks": 4, "cond_dim": 32}},
            "training": {"epochs": 50, "batch_size": 16, "lr": 3e-3, "warmup_steps": 50,
                         "timesteps": 8, "bptt_window": 4, "early_stop_patience": 20,
                         "lambda_commit": 0.01, "lambda_latent": 0.01},
        },
        "standard": {
            "generation": {
                "resolution": 64, "n_samples": 4096, "n_frames": 64, "batch_size": 64,
                "ic_families": _IC_WEIGHTS,
            },
            "mno": {"architecture": {"base_channels": 32, "levels": 3, "modes": 16,
                                     "afno_blocks": 4, "num_blocks": 8, "cond_dim": 64}},
            "training": {"epochs": 40, "batch_size": 16, "lr": 1e-3, "warmup_steps": 200,
                         "timesteps": 32, "bptt_window": 8, "early_stop_patience": 10,
                         "lambda_commit": 0.01, "lambda_latent": 0.01},
        },
    }

    default_architecture = {"name": "u-afno"}

    def __init__(self) -> None:
        self.solver = ReactionDiffusionSolver()
