"""The domain: channels, θ space, initial conditions, CNO, invariants, validation, presets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from noa_platform.api.grid import Grid
from noa_platform.api.parameters import ParameterSpace
from noa_platform.api.solver import InitialCondition, Solver
from noa_platform.errors import ParameterError

#: The roles a channel can play. A *state* channel is a field the dynamics evolves (a
#: concentration, a displacement, a vorticity); a *rate* channel is the time derivative of
#: another channel carried as state (``u_t`` of the wave equation). Features and metrics that
#: pool channels pool like with like.
ROLES = ("state", "rate")


@dataclass(frozen=True)
class Channel:
    """One field of the state: ``name``, its ``role`` (see :data:`ROLES`) and ``units``.

    ``rate_of`` names the state channel a rate channel is the time derivative of.
    """

    name: str
    role: Literal["state", "rate"] = "state"
    units: str = ""
    rate_of: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a channel needs a non-empty name, got {self.name!r}")
        if self.role not in ROLES:
            raise ValueError(f"channel {self.name!r}: role must be one of {ROLES}, "
                             f"got {self.role!r}")
        if self.role == "rate" and not self.rate_of:
            raise ValueError(f"channel {self.name!r}: a rate channel names its state (rate_of)")

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "role": self.role, "units": self.units}
        if self.rate_of:
            d["rate_of"] = self.rate_of
        if self.description:
            d["description"] = self.description
        return d


#: The no-model forecasts the post-training report computes beside every metric (see
#: ``docs/validation.md``); a domain names those that apply to it (``Domain.baselines``).
BASELINES = ("persistence", "spatial-mean", "shuffled", "constant-latent")

InvariantFn = Callable[[Any, Grid, Any], Any]


@dataclass(frozen=True)
class Invariant:
    """A named scalar of frames: ``fn(frames [B, ..., C, H, W], grid, theta [B, P]) -> [B, ...]``.

    ``theta`` holds physical values (float64 tensor on the frames' device), so an invariant can
    read spatially varying coefficients or the spacing (a wave's energy needs both).
    ``conserved`` says the equations keep it constant; ``conserved_under`` restricts that to
    θ with the given parameters at the given values (``{"gamma": 0.0}``: energy is conserved
    without damping), and ``rtol`` is the relative drift over the default horizon that the
    conformance kit accepts for a conserved invariant.
    """

    name: str
    fn: InvariantFn
    conserved: bool = False
    conserved_under: Mapping[str, float] = field(default_factory=dict)
    rtol: float = 1e-6
    description: str = ""

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"description": self.description, "conserved": self.conserved}
        if self.conserved and self.conserved_under:
            d["conserved_under"] = dict(self.conserved_under)
        return d


class Domain:
    """A family of dynamics: θ space, initial conditions, CNO solver and preferred MNO.

    A plugin subclasses this and sets the class attributes below (or sets them in
    ``__init__``). Everything the platform knows about a domain comes through them.

    ``presets`` maps a preset name (at least ``quick`` and ``standard``) to a partial run
    config (a nested dict validated by :class:`noa_platform.config.RunConfig`).
    ``default_architecture`` is the ``[mno.architecture]`` section used when a run config names
    no architecture; presets may still override any of its keys. ``validation_thresholds``
    overrides rows of the core's verdict table (``{"vrmse_step1": {"good": 0.5}}``) for
    physics where the core's defaults do not fit (phase errors of waves, decorrelation of
    chaotic flow); ``baselines`` names the no-model forecasts every metric is compared with.
    """

    name: str
    version: str
    description: str
    channels: tuple[Channel, ...]
    grid: Grid
    frame_dt: float
    parameter_space: ParameterSpace
    initial_conditions: Mapping[str, InitialCondition]
    solver: Solver
    invariants: Mapping[str, Invariant] = {}
    presets: Mapping[str, Mapping[str, Any]] = {}
    default_architecture: Mapping[str, Any] = {"name": "u-afno"}
    validation_thresholds: Mapping[str, Mapping[str, float]] = {}
    baselines: tuple[str, ...] = BASELINES
    #: How the grid follows a change of resolution: keep the "extent" or the "spacing".
    grid_scaling: str = "extent"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A bare channel name is a state channel without units: convenient for simple domains.
        chans = cls.__dict__.get("channels")
        if chans is not None:
            cls.channels = tuple(c if isinstance(c, Channel) else Channel(str(c))
                                 for c in chans)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def grid_for(self, resolution: int) -> Grid:
        """The grid at ``resolution × resolution`` points."""
        return self.grid.with_resolution(resolution, keep=self.grid_scaling)

    def initial_condition(self, family: str) -> InitialCondition:
        try:
            return self.initial_conditions[family]
        except KeyError:
            raise ParameterError(
                f"domain {self.name!r} has no initial-condition family {family!r}; "
                f"known: {', '.join(self.initial_conditions)}"
            ) from None

    def conditioning(self, values: Any) -> np.ndarray:
        """θ as the learned operator sees it (see :meth:`ParameterSpace.conditioning`)."""
        return self.parameter_space.conditioning(values)

    def architecture_config(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``[mno.architecture]`` section: the domain's default updated by ``config``.

        A config naming another architecture replaces the default rather than merging with
        it (the default's keys belong to the default architecture).
        """
        config = dict(config or {})
        default = dict(self.default_architecture)
        if "name" in config and config["name"] != default.get("name"):
            return config
        return {**default, **config}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "channels": [c.describe() for c in self.channels],
            "grid": self.grid.describe(),
            "grid_scaling": self.grid_scaling,
            "frame_dt": self.frame_dt,
            "parameters": self.parameter_space.describe(),
            "initial_conditions": {k: v.description for k, v in self.initial_conditions.items()},
            "invariants": {k: v.describe() for k, v in self.invariants.items()},
            "presets": {k: dict(v) for k, v in self.presets.items()},
            "default_architecture": dict(self.default_architecture),
            "validation_thresholds": {k: dict(v) for k, v in self.validation_thresholds.items()},
            "baselines": list(self.baselines),
        }
