"""The public interfaces a domain plugin implements.

This module is the plugin contract. A domain plugin subclasses :class:`Domain` and hands an
instance to the platform from its ``noa_domains`` hook (see :mod:`noa_platform.hookspecs`).
The core never imports a domain package by name; everything it knows about a domain comes
through the objects defined here.

Conventions used throughout
---------------------------
* A *frame* is a field ``[C, H, W]``; a batch of frames is ``[B, C, H, W]``; a trajectory
  batch is ``[B, T+1, C, H, W]`` where index 0 along time is the initial condition and frames
  are ``frame_dt`` apart.
* θ comes in two encodings: the *unit cube* ``[B, P]`` in ``[0, 1]`` (what samplers draw and
  what learned operators are conditioned on) and *physical values* ``[B, P]`` (what solvers
  consume). Categorical and integer parameters are stored as float indices/values.
* Physical values are float64 NumPy arrays or tensors; fields are float32 unless a caller asks
  for float64 (reference runs, verification).
* Determinism: the same ``(u0, θ, seed)`` gives the same bits, whatever the batch it is
  computed in and whatever else is in that batch, on a given device and dtype.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from noa_platform.errors import ParameterError, SolverError

#: Version of this contract. A plugin declares the version it targets as the module-level
#: attribute ``NOA_PLUGIN_API``; a plugin that targets another version is skipped.
PLUGIN_API_VERSION = 1


# --------------------------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A uniform 2-D grid. ``shape`` is ``(H, W)`` points; ``extent`` the physical lengths."""

    shape: tuple[int, int]
    extent: tuple[float, float]
    periodic: bool = True

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 2:
            raise ValueError(f"grid shape must be two sizes >= 2, got {self.shape}")
        if len(self.extent) != 2 or min(self.extent) <= 0:
            raise ValueError(f"grid extent must be two positive lengths, got {self.extent}")

    @property
    def spacing(self) -> tuple[float, float]:
        return (self.extent[0] / self.shape[0], self.extent[1] / self.shape[1])

    def with_resolution(self, n: int, keep: str = "extent") -> Grid:
        """The same domain at ``n × n`` points, keeping either the extent or the spacing."""
        if keep == "extent":
            return Grid((n, n), self.extent, self.periodic)
        if keep == "spacing":
            dy, dx = self.spacing
            return Grid((n, n), (dy * n, dx * n), self.periodic)
        raise ValueError(f"keep must be 'extent' or 'spacing', got {keep!r}")

    def describe(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "extent": list(self.extent), "periodic": self.periodic}


# --------------------------------------------------------------------------------------------
# Parameters θ
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter(ABC):
    """One named component of θ with a map between the unit interval and physical values."""

    name: str
    description: str = ""
    kind: ClassVar[str] = "abstract"

    @abstractmethod
    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map unit-interval values (any shape) to physical values (float64)."""

    @abstractmethod
    def to_unit(self, value: np.ndarray) -> np.ndarray:
        """Map physical values to the unit interval; inverse of :meth:`from_unit`."""

    @abstractmethod
    def contains(self, value: np.ndarray) -> np.ndarray:
        """Boolean mask: which values are inside the parameter's range or choices."""

    @abstractmethod
    def range_text(self) -> str:
        """The admissible values, for error messages and ``noa domains show``."""

    def validate(self, value: Any) -> None:
        """Raise :class:`ParameterError` naming this parameter if any value is out of range."""
        arr = np.asarray(value, dtype=np.float64)
        ok = self.contains(arr)
        if not np.all(ok):
            bad = arr[~ok].ravel()[0]
            raise ParameterError(
                f"parameter {self.name!r} = {bad:g} is outside its range {self.range_text()}"
            )

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "range": self.range_text(),
                "description": self.description}


def _check_unit(u: np.ndarray, name: str) -> np.ndarray:
    u = np.asarray(u, dtype=np.float64)
    if not np.all(np.isfinite(u)) or np.any(u < 0) or np.any(u > 1):
        raise ParameterError(f"parameter {name!r}: unit-cube coordinate outside [0, 1]")
    return u


@dataclass(frozen=True)
class LinearParameter(Parameter):
    """A real parameter on ``[low, high]`` with uniform density in the unit cube."""

    low: float = 0.0
    high: float = 1.0
    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"parameter {self.name!r}: need finite low < high")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        u = _check_unit(u, self.name)
        return self.low + u * (self.high - self.low)

    def to_unit(self, value: np.ndarray) -> np.ndarray:
        return (np.asarray(value, dtype=np.float64) - self.low) / (self.high - self.low)

    def contains(self, value: np.ndarray) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        # A relative tolerance lets values that went through to_unit/from_unit round trips in.
        tol = 1e-12 * max(abs(self.low), abs(self.high), 1.0)
        return np.isfinite(v) & (v >= self.low - tol) & (v <= self.high + tol)

    def range_text(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "low": self.low, "high": self.high, "scale": "linear"}


@dataclass(frozen=True)
class LogParameter(LinearParameter):
    """A positive real parameter on ``[low, high]``, uniform in its logarithm."""

    kind: ClassVar[str] = "log"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log-scale range needs low > 0")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        u = _check_unit(u, self.name)
        lo, hi = math.log(self.low), math.log(self.high)
        # Clip: exp(log(high)) can exceed high by one ulp.
        return np.clip(np.exp(lo + u * (hi - lo)), self.low, self.high)

    def to_unit(self, value: np.ndarray) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        lo, hi = math.log(self.low), math.log(self.high)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(v) - lo) / (hi - lo)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scale": "log"}


@dataclass(frozen=True)
class IntegerParameter(Parameter):
    """An integer parameter on ``[low, high]`` (inclusive); each value owns an equal bin."""

    low: int = 0
    high: int = 1
    kind: ClassVar[str] = "integer"

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"parameter {self.name!r}: need low <= high")

    @property
    def count(self) -> int:
        return self.high - self.low + 1

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        u = _check_unit(u, self.name)
        idx = np.minimum(np.floor(u * self.count), self.count - 1)
        return (self.low + idx).astype(np.float64)

    def to_unit(self, value: np.ndarray) -> np.ndarray:
        # The centre of the value's bin, so from_unit(to_unit(v)) == v exactly.
        return (np.asarray(value, dtype=np.float64) - self.low + 0.5) / self.count

    def contains(self, value: np.ndarray) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        return np.isfinite(v) & (v == np.round(v)) & (v >= self.low) & (v <= self.high)

    def range_text(self) -> str:
        return f"integers {self.low}..{self.high}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "low": self.low, "high": self.high, "scale": "integer"}


@dataclass(frozen=True)
class CategoricalParameter(Parameter):
    """A choice among named options; its physical value is the option's index (as float)."""

    choices: tuple[str, ...] = ()
    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        if not self.choices or len(set(self.choices)) != len(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices must be non-empty and distinct")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        u = _check_unit(u, self.name)
        n = len(self.choices)
        return np.minimum(np.floor(u * n), n - 1).astype(np.float64)

    def to_unit(self, value: np.ndarray) -> np.ndarray:
        return (np.asarray(value, dtype=np.float64) + 0.5) / len(self.choices)

    def contains(self, value: np.ndarray) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        return np.isfinite(v) & (v == np.round(v)) & (v >= 0) & (v < len(self.choices))

    def index(self, choice: str) -> int:
        try:
            return self.choices.index(choice)
        except ValueError:
            raise ParameterError(
                f"parameter {self.name!r}: unknown choice {choice!r}; "
                f"choose one of {', '.join(self.choices)}"
            ) from None

    def range_text(self) -> str:
        return "{" + ", ".join(self.choices) + "}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "choices": list(self.choices), "scale": "categorical"}


class ParameterSpace:
    """An ordered set of parameters: θ is a vector with one column per parameter."""

    def __init__(self, parameters: Sequence[Parameter]):
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.parameters: tuple[Parameter, ...] = tuple(parameters)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def dim(self) -> int:
        return len(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ParameterError(f"unknown parameter {name!r}; known: {', '.join(self.names)}")

    def _columns(self, x: Any) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[-1] != self.dim:
            raise ParameterError(
                f"θ has {x.shape[-1]} columns, the parameter space {self.names} has {self.dim}"
            )
        return x

    def from_unit(self, u: Any) -> np.ndarray:
        """``[N, P]`` unit-cube points to ``[N, P]`` physical values (float64)."""
        u = self._columns(u)
        return np.stack([p.from_unit(u[:, i]) for i, p in enumerate(self.parameters)], axis=1)

    def to_unit(self, values: Any) -> np.ndarray:
        """``[N, P]`` physical values to ``[N, P]`` unit-cube points (float64)."""
        self.validate(values)
        v = self._columns(values)
        return np.stack([p.to_unit(v[:, i]) for i, p in enumerate(self.parameters)], axis=1)

    def validate(self, values: Any) -> None:
        """Raise :class:`ParameterError` naming the first parameter out of range."""
        v = self._columns(values.detach().cpu().numpy() if torch.is_tensor(values) else values)
        for i, p in enumerate(self.parameters):
            p.validate(v[:, i])

    def encode(self, values: Mapping[str, Any]) -> np.ndarray:
        """A ``{name: value}`` mapping (choices by name) to one row ``[P]`` of physical values."""
        unknown = set(values) - set(self.names)
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(self.names)}"
            )
        row = []
        for p in self.parameters:
            if p.name not in values:
                raise ParameterError(f"parameter {p.name!r} is missing")
            v = values[p.name]
            row.append(float(p.index(v)) if isinstance(p, CategoricalParameter) and isinstance(v, str)
                       else float(v))
        out = np.asarray(row, dtype=np.float64)
        self.validate(out)
        return out

    def decode(self, row: Any) -> dict[str, Any]:
        """One row of physical values to ``{name: value}``, categorical values by name."""
        row = self._columns(row)[0]
        out: dict[str, Any] = {}
        for p, v in zip(self.parameters, row):
            out[p.name] = p.choices[int(v)] if isinstance(p, CategoricalParameter) else float(v)
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [p.describe() for p in self.parameters]


# --------------------------------------------------------------------------------------------
# Initial conditions
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The CNO: a verified numerical solver
# --------------------------------------------------------------------------------------------


class Solver(ABC):
    """The domain's ground-truth operator (CNO).

    :meth:`rollout` contract:

    * ``u0``: ``[B, C, H, W]`` float32 or float64 on any device; must be finite.
    * ``params``: ``[B, P]`` physical θ values (float64 preferred), one row per sample.
    * ``seeds``: ``[B]`` integers, one per sample, used only for stochastic forcing
      (``noise_amplitude > 0``); ignored when the solver is deterministic.
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
    if not torch.is_floating_point(u0):
        raise SolverError(f"u0 must be floating point, got {u0.dtype}")
    bad = ~torch.isfinite(u0).flatten(1).all(dim=1)
    if bad.any():
        raise SolverError(
            f"initial condition is not finite (sample {int(bad.nonzero()[0])} has NaN or Inf)"
        )


# --------------------------------------------------------------------------------------------
# Specs handed out through the other hooks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchitectureSpec:
    """A learned-operator architecture: ``factory(**config) -> nn.Module``.

    The module maps ``(u [B, C, H, W], theta_unit [B, P])`` to the next frame ``[B, C, H, W]``.
    Constructor keywords: ``channels``, ``n_params``, ``resolution`` plus the architecture's own.
    """

    name: str
    factory: Callable[..., torch.nn.Module]
    description: str = ""


@dataclass(frozen=True)
class FeatureExtractorSpec:
    """A feature family: ``extract(traj [B, T+1, C, H, W]) -> [B, D]`` (or ``[B, T+1, D]``).

    ``names`` labels the ``D`` columns; ``temporal`` says the output keeps the time axis.
    """

    family: str
    extract: Callable[[torch.Tensor], torch.Tensor]
    names: tuple[str, ...]
    temporal: bool = False
    description: str = ""


@dataclass(frozen=True)
class TokenizerSpec:
    """A tokenizer family: ``factory(**config)`` builds an untrained tokenizer."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


# --------------------------------------------------------------------------------------------
# The domain
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invariant:
    """A named scalar of a frame batch: ``fn([..., C, H, W]) -> [...]`` (mass, energy...).

    ``conserved`` says whether the equations keep it constant (for some θ; see description).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    conserved: bool = False
    description: str = ""


class Domain(ABC):
    """A family of dynamics: θ space, initial conditions, CNO solver and preferred MNO.

    Subclasses set the class attributes and implement :meth:`architecture`. ``presets`` maps a
    preset name (at least ``quick`` and ``standard``) to a partial run config (a nested dict
    validated by :class:`noa_platform.config.RunConfig`).
    """

    name: str
    version: str
    description: str
    channels: tuple[str, ...]
    grid: Grid
    frame_dt: float
    parameter_space: ParameterSpace
    initial_conditions: Mapping[str, InitialCondition]
    solver: Solver
    invariants: Mapping[str, Invariant] = {}
    presets: Mapping[str, Mapping[str, Any]] = {}
    #: How the grid follows a change of resolution: keep the "extent" or the "spacing".
    grid_scaling: str = "extent"

    def grid_for(self, resolution: int) -> Grid:
        """The grid at ``resolution × resolution`` points."""
        return self.grid.with_resolution(resolution, keep=self.grid_scaling)

    @abstractmethod
    def architecture(self, config: Mapping[str, Any]) -> torch.nn.Module:
        """The MNO this domain prefers, built from an architecture config section."""

    def initial_condition(self, family: str) -> InitialCondition:
        try:
            return self.initial_conditions[family]
        except KeyError:
            raise ParameterError(
                f"domain {self.name!r} has no initial-condition family {family!r}; "
                f"known: {', '.join(self.initial_conditions)}"
            ) from None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "channels": list(self.channels),
            "grid": self.grid.describe(),
            "grid_scaling": self.grid_scaling,
            "frame_dt": self.frame_dt,
            "parameters": self.parameter_space.describe(),
            "initial_conditions": {k: v.description for k, v in self.initial_conditions.items()},
            "invariants": {k: v.description for k, v in self.invariants.items()},
            "presets": {k: dict(v) for k, v in self.presets.items()},
            "architecture": dict(self.presets.get("standard", {}).get("mno", {}).get(
                "architecture", {})) or {"name": "default"},
        }
