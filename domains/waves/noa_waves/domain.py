"""The waves :class:`~noa_platform.api.Domain`."""

from __future__ import annotations

from noa_platform.api import Channel, Domain, Grid, Invariant, Solver
from noa_waves.initial_conditions import INITIAL_CONDITIONS
from noa_waves.invariants import energy
from noa_waves.parameters import COL_GAMMA, PARAMETER_SPACE

_IC_WEIGHTS = {"gaussian-pulse": 0.4, "plane-waves": 0.3, "random-field": 0.3}


class Waves(Domain):
    """Linear waves in a heterogeneous, damped medium on the periodic unit square.

    ``u_tt = ∇·(c(x)² ∇u) − γ u_t``, state ``(u, u_t)``. θ (:mod:`noa_waves.parameters`): mean
    speed, amplitude and correlation length of the speed field ``c(x)`` (drawn from the
    sample's seed, :mod:`noa_waves.speed`) and damping γ. Solver: :mod:`noa_waves.solver`.
    Frames every 0.02 time units: a wave moves 0.01–0.02 of the domain (0.3–0.6 cells at 32²)
    per frame and 0.3–0.6 domain lengths over the quick horizon of 32 frames; the typical
    initial condition's phase turns by ~0.3 rad per frame (persistence VRMSE of u after one
    frame 0.36, 48 quick samples), and the fields decorrelate from frame 0 within ~4 frames.
    """

    name = "waves"
    version = "0.1.0"
    description = ("Linear waves u_tt = div(c(x)^2 grad u) - gamma u_t in a seeded heterogeneous "
                   "medium (pseudo-spectral, symplectic kick-flow-kick splitting)")
    channels = (
        Channel("u", "state", "dimensionless", description="displacement"),
        Channel("u_t", "rate", "per time unit", rate_of="u", description="velocity ∂u/∂t"),
    )
    grid = Grid((64, 64), (1.0, 1.0), periodic=True)
    grid_scaling = "extent"
    frame_dt = 0.02
    parameter_space = PARAMETER_SPACE
    initial_conditions = INITIAL_CONDITIONS
    invariants = {
        "energy": Invariant(
            "energy", energy, conserved=True, conserved_under={"gamma": 0.0}, rtol=1e-3,
            description=("½∫(u_t² + c(x)²|∇u|²): conserved without damping (symplectic "
                         "scheme: bounded O(dt²) oscillation, no drift); decays at rate "
                         "γ∫u_t² otherwise")),
    }
    presets = {
        "quick": {
            "generation": {
                "resolution": 32, "n_samples": 256, "n_frames": 32, "batch_size": 32,
                "ic_families": _IC_WEIGHTS, "burn_in_frames": 2,
            },
            "mno": {"architecture": {"width": 24, "depth": 2, "cond_dim": 32,
                                     "symbol_width": 64}},
            "training": {"epochs": 20, "batch_size": 16, "lr": 3e-3, "warmup_steps": 50,
                         "windows_per_sample": 2, "bptt_window": 4, "start_at_zero": 0.1,
                         "early_stop_patience": 10},
        },
        "standard": {
            "generation": {
                "resolution": 64, "n_samples": 4096, "n_frames": 64, "batch_size": 64,
                "ic_families": _IC_WEIGHTS, "burn_in_frames": 2,
            },
            "mno": {"architecture": {"width": 48, "depth": 3, "cond_dim": 64,
                                     "symbol_width": 128}},
            "training": {"epochs": 40, "batch_size": 16, "lr": 1e-3, "warmup_steps": 200,
                         "bptt_window": 8, "start_at_zero": 0.1, "early_stop_patience": 10},
        },
    }
    # The kick–drift–kick operator of noa_waves.architecture; θ's damping column switches its
    # one dissipative sub-step off exactly for undamped rows.
    default_architecture = {"name": "wave-leapfrog", "damping_index": COL_GAMMA}
    # A wave's error is mostly phase: a relative speed error ε shifts the phase by ε·|k|·c·t,
    # and VRMSE = 2|sin(Δφ/2)| grows linearly with t while the pattern stays right. The core's
    # 0.5 / 1.0 are phase errors of 29° / 60°: kept at a quarter of the horizon, asked for
    # sooner (one frame moves a wave by about one cell: persistence is already small there),
    # and relaxed at the end, where a 3 % speed error alone accumulates ~45°. Correlation
    # (cos Δφ) falls below 0.8 at Δφ = 37°.
    validation_thresholds = {
        "vrmse_step1": {"good": 0.2, "fair": 0.5},
        "vrmse_final": {"good": 0.75, "fair": 1.0},
        "correlation_time_fraction": {"good": 0.5, "fair": 0.2},
    }
    baselines = ("persistence", "spatial-mean", "shuffled", "constant-latent")

    def __init__(self) -> None:
        self._solver: Solver | None = None

    @property
    def solver(self) -> Solver:  # type: ignore[override]
        """The CNO, built on first use (it imports torch; listing domains must not)."""
        if self._solver is None:
            from noa_waves.solver import WaveSolver

            self._solver = WaveSolver()
        return self._solver
