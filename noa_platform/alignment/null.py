"""The null of random codebooks of the same sizes: every summary score beside its distribution
over ``n`` random draws (mean, standard deviation, and the draws themselves).

What a random codebook is depends on the method (each method's ``*_null_draw``): random code
vectors decoded like the real ones for prototypes and geometry
(:meth:`~noa_platform.alignment.codebooks.Vocabulary.randomized`), a random split of the
trajectories into groups of the same sizes for co-occurrence. Draws come from one seeded
generator, so a null is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Random draws per null unless asked otherwise (``noa align --null N``).
DEFAULT_DRAWS = 20


def null_distribution(
    draw: Callable[[np.random.Generator], dict[str, float]], n: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """``score -> {"null_mean", "null_std", "null_n"}`` over ``n`` draws of ``draw(rng)``."""
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n):
        for name, value in draw(rng).items():
            values.setdefault(name, []).append(value)
    return {
        name: {
            "null_mean": float(np.mean(v)),
            "null_std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "null_n": len(v),
        }
        for name, v in values.items()
    }
