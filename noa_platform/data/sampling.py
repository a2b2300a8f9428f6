"""Every random choice of a dataset, derived from (dataset seed, sample index) alone.

θ comes from a scrambled Sobol sequence (low discrepancy: the parameter box is covered evenly
even at a few hundred samples); everything else (initial-condition family and draw, solver
noise) from a per-sample seed made with :class:`numpy.random.SeedSequence`, so no choice
depends on batch size, order of computation, process or device.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import qmc

# Purposes a per-sample seed is split into; changing these changes every dataset.
IC_DRAW, NOISE, FAMILY = 0, 1, 2


def sobol_unit(dim: int, n: int, seed: int) -> np.ndarray:
    """The first ``n`` points ``[n, dim]`` of the scrambled Sobol sequence seeded by ``seed``."""
    if dim == 0:
        return np.zeros((n, 0))
    sampler = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(seed))
    with warnings.catch_warnings():
        # Balance properties need n = 2^m; any prefix is still a valid low-discrepancy sample.
        warnings.simplefilter("ignore", category=UserWarning)
        return sampler.random(n)


def sample_seeds(dataset_seed: int, n: int) -> np.ndarray:
    """Per-sample seeds ``[n]`` (int64, non-negative), sample ``i`` from ``(seed, i)`` only."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        state = np.random.SeedSequence([dataset_seed, i]).generate_state(2, dtype=np.uint32)
        out[i] = ((int(state[0]) << 32) | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF
    return out


def derive_seed(sample_seed: int, purpose: int) -> int:
    """An independent 63-bit seed for one purpose (IC draw, noise, family choice) of a sample."""
    state = np.random.SeedSequence([int(sample_seed), purpose]).generate_state(2, dtype=np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF


def choose_families(
    seeds: Sequence[int], families: Sequence[str], weights: Mapping[str, float] | None = None
) -> list[str]:
    """The initial-condition family of each sample, drawn from its seed with the weights."""
    names = list(families)
    w = np.array([(weights or {}).get(f, 0.0 if weights else 1.0) for f in names], dtype=float)
    p = w / w.sum()
    return [names[np.random.default_rng(derive_seed(s, FAMILY)).choice(len(names), p=p)]
            for s in seeds]


def split_indices(n: int, fractions: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Contiguous index ranges ``train``, ``val``, ``test``, in that order.

    Sobol prefixes and suffixes both cover the box evenly, so contiguous blocks give each split
    a spread of θ, and test θ are never seen in training.
    """
    n_train = int(round(fractions["train"] * n))
    n_val = int(round(fractions["val"] * n))
    n_val = min(n_val, n - n_train)
    idx = np.arange(n)
    return {"train": idx[:n_train], "val": idx[n_train:n_train + n_val],
            "test": idx[n_train + n_val:]}
