"""The feature space two vocabularies are compared in, and its metric.

**Shared columns.** The core's feature families pool every statistic over channels (channel
mean and channel max, :mod:`noa_platform.features.pooling`), so their columns do not depend on
a domain's channel count, grid or horizon: two domains using the core's families have the same
named columns. A plugin may add families of its own; the shared space is the intersection of
the two tokenizers' column keys (``family:column``, and ``family:column@t`` for a temporal
family's time profile, which therefore also needs the same ``temporal_points``), in the first
tokenizer's order. No shared column is an error.

**Standardization.** Each tokenizer standardizes columns with its own statistics, which differ
between domains, so neither is the common unit. A column is standardized by the statistics of
the two training sets pooled with equal weight, computed from the two normalizers alone:
centre ``(m_A + m_B) / 2`` and variance ``(s_A^2 + s_B^2) / 2 + ((m_A - m_B) / 2)^2`` (the
variance of the equal mixture). Aligned with itself, a tokenizer's space is its own.

**Metric.** Squared Euclidean distance with column weights that give every family the same
total weight (``1 / (n_families * n_columns_of_family)``): the temporal profile has hundreds
of columns and would otherwise outweigh the static families. A cost of 1 is one pooled
standard deviation of difference on average.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist

from noa_platform.alignment.codebooks import Vocabulary
from noa_platform.errors import NoaError


def family_weights(families: Sequence[str]) -> np.ndarray:
    """Column weights summing to 1, every family with the same total."""
    fams = np.asarray(families)
    names, counts = np.unique(fams, return_counts=True)
    per = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return np.array([1.0 / (len(per) * per[f]) for f in fams.tolist()])


def shared_space(a: Vocabulary, b: Vocabulary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xa, xb, weights)``: both vocabularies' prototypes on their shared columns, in pooled
    standardized units, and the column weights of the metric."""
    index_b = {c: i for i, c in enumerate(b.columns)}
    ia = [i for i, c in enumerate(a.columns) if c in index_b]
    if not ia:
        raise NoaError(
            f"no feature column is shared by {a.label or 'A'} and {b.label or 'B'} "
            f"(e.g. {a.columns[0]!r} vs {b.columns[0]!r}); prototypes need a shared space"
        )
    ib = [index_b[a.columns[i]] for i in ia]
    ma, sa, mb, sb = a.center[ia], a.scale[ia], b.center[ib], b.scale[ib]
    centre = (ma + mb) / 2
    spread = np.sqrt((sa**2 + sb**2) / 2 + ((ma - mb) / 2) ** 2)
    xa = (a.prototypes[:, ia] - centre) / spread
    xb = (b.prototypes[:, ib] - centre) / spread
    return xa, xb, family_weights([a.families[i] for i in ia])


def weighted_sq_distances(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``[n, m]``: ``sum_c w_c (x_ic - y_jc)^2``."""
    sw = np.sqrt(weights)
    return cdist(x * sw, y * sw, "sqeuclidean")
