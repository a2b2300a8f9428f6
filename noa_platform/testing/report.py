"""What the conformance kit reports: one :class:`CheckResult` per named check, in a table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip"]


class CheckFailed(AssertionError):
    """Raised by a check whose promise the domain breaks; the message is the one-line reason."""


class CheckSkipped(Exception):
    """Raised by a check that does not apply to the domain (e.g. no conserved invariant)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``status`` is ``pass``, ``fail`` or ``skip``."""

    name: str
    status: Status
    reason: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class CheckReport:
    """Every check run on one domain, in order. ``ok`` is true when no check failed."""

    domain: str
    results: list[CheckResult] = field(default_factory=list)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.status == "fail"]

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "ok": self.ok, "seconds": round(self.seconds, 3),
                "checks": [{**asdict(r), "seconds": round(r.seconds, 3)} for r in self.results]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @staticmethod
    def header(width: int) -> str:
        return f"{'check':<{width}}  status  {'time':>6}  reason"

    @staticmethod
    def row(r: CheckResult, width: int) -> str:
        return f"{r.name:<{width}}  {r.status:<6}  {r.seconds:>5.2f}s  {r.reason}"

    def summary(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "skip")}
        verdict = "conforms" if self.ok else "does NOT conform"
        return (f"domain {self.domain!r} {verdict}: {counts['pass']} passed, "
                f"{counts['fail']} failed, {counts['skip']} skipped in {self.seconds:.1f}s")

    def table(self) -> str:
        """A fixed-width table: check, status, seconds, reason; then a summary line."""
        width = max([len(r.name) for r in self.results] + [5])
        lines = [self.header(width)] + [self.row(r, width) for r in self.results]
        return "\n".join([*lines, self.summary()])

    def __str__(self) -> str:
        return self.table()
