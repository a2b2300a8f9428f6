"""θ: named parameters, their maps between the unit cube and physical values, and which
parameters each categorical choice reads."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from noa_platform.errors import ParameterError


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
        # Clip: low + 1·(high − low) can exceed high by an ulp when |low| ≫ |high|.
        return np.clip(self.low + u * (self.high - self.low), self.low, self.high)

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

    def __init__(self, parameters: Sequence[Parameter],
                 reads: Mapping[str, Mapping[str, Sequence[str]]] | None = None):
        """``reads`` says which parameters each choice of a categorical parameter reads:
        ``{"kinetics": {"gray-scott": ("F", "k"), "fitzhugh-nagumo": ("kappa", "tau")}}``.

        A parameter named under some choice of a categorical parameter is read only when that
        parameter takes such a choice; a parameter named nowhere is always read. Learned
        operators see unread parameters masked (:meth:`conditioning`), so they cannot respond
        to values the physics ignores.
        """
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.parameters: tuple[Parameter, ...] = tuple(parameters)
        self.reads: dict[str, dict[str, tuple[str, ...]]] = {}
        for cat_name, table in (reads or {}).items():
            cat = self[cat_name]
            if not isinstance(cat, CategoricalParameter):
                raise ValueError(f"reads: parameter {cat_name!r} is not categorical")
            missing = set(cat.choices) - set(table)
            extra = set(table) - set(cat.choices)
            if missing or extra:
                raise ValueError(f"reads[{cat_name!r}] must list every choice of {cat_name!r} "
                                 f"exactly once (missing {sorted(missing)}, unknown {sorted(extra)})")
            for choice, read in table.items():
                for name in read:
                    if name not in names or name == cat_name:
                        raise ValueError(f"reads[{cat_name!r}][{choice!r}]: {name!r} is not "
                                         f"another parameter of this space")
            self.reads[cat_name] = {c: tuple(table[c]) for c in cat.choices}

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
        # Duck-typed so that this module needs no torch import.
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        v = self._columns(values)
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

    def active(self, values: Any) -> np.ndarray:
        """``[N, P]`` booleans: which parameters each row's categorical choices read."""
        v = self._columns(values)
        mask = np.ones(v.shape, dtype=bool)
        for cat_name, table in self.reads.items():
            ci = self.names.index(cat_name)
            choices = self[cat_name].choices  # type: ignore[attr-defined]
            governed = {name for read in table.values() for name in read}
            for name in governed:
                j = self.names.index(name)
                reading = [c for c, read in table.items() if name in read]
                rows = np.isin(v[:, ci], [float(choices.index(c)) for c in reading])
                mask[:, j] &= rows
        return mask

    def conditioning(self, values: Any) -> np.ndarray:
        """``[N, P]`` float32 θ as a learned operator sees it, from physical values.

        Canonical unit values — a categorical or integer parameter sits at the centre of its
        bin, whatever raw Sobol coordinate produced it — with every parameter that the row's
        categorical choices do not read set to 0 (:meth:`active`). Two rows that the solver
        treats alike therefore condition the operator alike.
        """
        unit = self.to_unit(values)
        return np.where(self.active(values), unit, 0.0).astype(np.float32)

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for p in self.parameters:
            d = p.describe()
            readers = {cat: [c for c, read in table.items() if p.name in read]
                       for cat, table in self.reads.items()
                       if any(p.name in read for read in table.values())}
            if readers:
                d["read_when"] = readers
            if p.name in self.reads:
                d["reads"] = {c: list(r) for c, r in self.reads[p.name].items()}
            out.append(d)
        return out
