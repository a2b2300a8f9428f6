"""Errors and argument checks shared by the model modules."""

from __future__ import annotations

from noa_platform.errors import ConfigError


class ArchitectureConfigError(ConfigError, ValueError):
    """An architecture config that cannot build a model (unknown key, bad value, bad grid).

    A :class:`~noa_platform.errors.ConfigError`, so the CLI prints it as one line, and a
    ``ValueError``, because that is what callers of a constructor expect to catch.
    """


def grid_size_problem(height: int, width: int, levels: int) -> str | None:
    """Why an ``height × width`` grid cannot go through ``levels`` halvings, or ``None`` if it can.

    Each U-Net level halves the grid with a stride-2 convolution and the decoder doubles it back;
    a size that is not a multiple of ``2**levels`` would lose a row on the way down and the skip
    connections would no longer line up.
    """
    factor = 2**levels
    bad = [
        f"{name}={size}"
        for name, size in (("H", height), ("W", width))
        if size % factor or size < factor
    ]
    if not bad:
        return None
    return (
        f"grid {height}x{width} is not supported by a U-AFNO with levels={levels}: "
        f"{', '.join(bad)} must be a positive multiple of 2**levels = {factor} "
        f"(e.g. {factor * max(1, height // factor)}x{factor * max(1, width // factor)})"
    )


def as_resolution(resolution: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``n`` or ``(H, W)`` -> ``(H, W)``."""
    if isinstance(resolution, int):
        return resolution, resolution
    try:
        height, width = (int(s) for s in resolution)
    except (TypeError, ValueError):
        raise ArchitectureConfigError(
            f"resolution must be an int or a pair (H, W), got {resolution!r}"
        ) from None
    return height, width
