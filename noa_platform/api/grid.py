"""The spatial grid a domain lives on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
