"""Alignment by geometry alone: Gromov–Wasserstein between the vocabularies' own distance
matrices (POT's ``ot.gromov.gromov_wasserstein``, square loss, uniform marginals).

Each vocabulary's distances are measured in its tokenizer's *own* normalized feature space
(every column it reads, families weighted equally as in :mod:`.space`), so nothing has to be
shared: two tokenizers of domains with no column in common can still be compared. Each matrix
is divided by its mean off-diagonal distance, so the comparison is of shapes, not of scales.
Distances are invariant under any rotation of the latent or feature space, and so is the
alignment.

The solver starts from the product coupling. From there its first linear step pairs codes by
their mean distance to the others, so two vocabularies that are the same points in another
order are matched exactly when those means are distinct.

Summary scores:

* ``gw_discrepancy`` (lower is better): the Gromov–Wasserstein objective,
  ``sum (D_a[i,k] - D_b[j,l])^2 T[i,j] T[k,l]``; 0 for isometric vocabularies;
* ``map_correlation`` (higher): Pearson correlation, over pairs of codes ``i < k``, between
  ``D_a[i, k]`` and ``D_b[m(i), m(k)]``, where ``m(i)`` is the code the coupling sends most of
  ``i``'s mass to; 1 when the map is an isometry up to scale.

(For vocabularies of equal size the coupling found was a one-to-one map for real and random
codebooks alike, measured on quick-preset tokenizers, so its sharpness would say nothing.)
"""

from __future__ import annotations

import numpy as np

from noa_platform.alignment.codebooks import Vocabulary
from noa_platform.alignment.result import MethodResult, matched_column_order
from noa_platform.alignment.space import family_weights, weighted_sq_distances

BETTER = {"gw_discrepancy": "lower", "map_correlation": "higher"}


def own_distances(v: Vocabulary) -> np.ndarray:
    """``[n, n]`` distances between ``v``'s prototypes in its own normalized space, mean 1."""
    w = family_weights(v.families)
    d = np.sqrt(weighted_sq_distances(v.normalized, v.normalized, w))
    return normalize_distances(d)


def normalize_distances(d: np.ndarray) -> np.ndarray:
    n = d.shape[0]
    off = d[~np.eye(n, dtype=bool)]
    mean = float(off.mean()) if off.size and float(off.mean()) > 0 else 1.0
    return d / mean


def gromov(da: np.ndarray, db: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Summary scores and coupling ``T [n_a, n_b]`` of two distance matrices."""
    import ot

    p = np.full(da.shape[0], 1.0 / da.shape[0])
    q = np.full(db.shape[0], 1.0 / db.shape[0])
    coupling, log = ot.gromov.gromov_wasserstein(
        da, db, p, q, loss_fun="square_loss", log=True, max_iter=1000
    )
    match = coupling.argmax(1)
    upper = np.triu_indices(da.shape[0], k=1)
    mapped = db[np.ix_(match, match)][upper]
    both = np.stack([da[upper], mapped])
    varies = bool(both.std(axis=1).min() > 0)
    scores = {
        "gw_discrepancy": float(max(log["gw_dist"], 0.0)),
        "map_correlation": float(np.corrcoef(both)[0, 1]) if varies else 0.0,
    }
    return scores, coupling


def align_geometry(a: Vocabulary, b: Vocabulary) -> MethodResult:
    scores, coupling = gromov(own_distances(a), own_distances(b))
    n_a = coupling.shape[0]
    match = coupling.argmax(1)
    pairs = sorted(
        (
            {"a": a.codes[i], "b": b.codes[j], "coupling": float(coupling[i, j] * n_a)}
            for i, j in enumerate(match.tolist())
        ),
        key=lambda p: -p["coupling"],
    )
    # Columns ordered by where each row's mass goes, so a one-to-one map is the diagonal.
    col_order = matched_column_order(match.tolist(), coupling.shape[1])
    return MethodResult(
        method="geometry",
        scores=scores,
        better=dict(BETTER),
        pairs=pairs,
        matrix=coupling[:, col_order] * n_a,
        rows=a.codes,
        cols=tuple(b.codes[j] for j in col_order),
        matrix_label="Gromov–Wasserstein coupling (share of each row's mass)",
        info={"codes_a": a.n_codes, "codes_b": b.n_codes},
    )


def geometry_null_draw(a: Vocabulary, b: Vocabulary, rng: np.random.Generator) -> dict[str, float]:
    """The summary scores of random codebooks of the same sizes."""
    return gromov(own_distances(a.randomized(rng)), own_distances(b.randomized(rng)))[0]
