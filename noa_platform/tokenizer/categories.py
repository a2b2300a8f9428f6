"""Discovery of feature categories: groups of columns that vary together.

Each static family (``initial``, ``summary``, any extra ``[N, D]`` family) is clustered on its
own, never jointly with another family: a token then always speaks about one family ("how the
initial condition looked" vs "what the rollout did"), which keeps tokens interpretable and lets
the MNO's rollouts (which change the summary, never the initial condition) move only the
summary tokens. A temporal family ``[N, T+1, D]`` is one category of its own, encoded over time.

Within a family, columns are clustered by average-linkage hierarchical clustering of the
distance ``1 - |corr|`` (a column and its negation carry the same information). The number of
categories ``k`` is the one in ``2..max_categories`` with the best silhouette on that distance,
after clusters smaller than ``min_size`` are merged into their nearest cluster (smallest average
distance). A family with fewer than ``2 * min_size`` columns is one category. Everything is
deterministic: ties go to the smaller ``k``, categories are ordered by their first column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


@dataclass(frozen=True)
class Category:
    """A group of columns of one family that the tokenizer encodes and quantizes together.

    ``columns`` are indices into the family's columns (ascending); for a temporal family they
    are all its columns. ``name`` (``"summary.c0"``) prefixes the names of its codebooks.
    """

    family: str
    index: int
    columns: tuple[int, ...]
    names: tuple[str, ...]
    temporal: bool = False

    @property
    def name(self) -> str:
        return f"{self.family}.c{self.index}"

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "index": self.index,
            "columns": list(self.columns),
            "names": list(self.names),
            "temporal": self.temporal,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Category:
        return cls(
            family=data["family"],
            index=int(data["index"]),
            columns=tuple(int(c) for c in data["columns"]),
            names=tuple(data["names"]),
            temporal=bool(data["temporal"]),
        )


def correlation_distance(x: np.ndarray) -> np.ndarray:
    """``[N, D]`` samples to the ``[D, D]`` distance ``1 - |corr|``.

    A constant column has no defined correlation; it is treated as uncorrelated with everything
    (distance 1) so it lands wherever the minimum size pushes it.
    """
    x = np.asarray(x, dtype=np.float64)
    centered = x - x.mean(axis=0)
    norm = np.sqrt((centered**2).sum(axis=0))
    safe = np.where(norm > 0, norm, 1.0)
    corr = (centered.T @ centered) / np.outer(safe, safe)
    corr[norm == 0, :] = 0.0
    corr[:, norm == 0] = 0.0
    dist = 1.0 - np.abs(np.clip(corr, -1.0, 1.0))
    np.fill_diagonal(dist, 0.0)
    return (dist + dist.T) / 2


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``labels`` on a precomputed distance (singletons score 0)."""
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return -1.0
    scores = np.zeros(len(labels))
    for i in range(len(labels)):
        own = labels == labels[i]
        if own.sum() == 1:
            continue
        a = dist[i, own].sum() / (own.sum() - 1)
        b = min(dist[i, labels == c].mean() for c in clusters if c != labels[i])
        scores[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(scores.mean())


def merge_small(dist: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    """Merge clusters below ``min_size`` into their nearest cluster, smallest first.

    Returns labels renumbered ``0..k-1`` in order of each cluster's first column.
    """
    labels = labels.copy()
    while True:
        clusters, sizes = np.unique(labels, return_counts=True)
        if len(clusters) < 2 or sizes.min() >= min_size:
            break
        small = clusters[np.argmin(sizes)]  # argmin: the first of equal sizes, deterministic
        members = labels == small
        others = [c for c in clusters if c != small]
        nearest = min(others, key=lambda c: dist[np.ix_(members, labels == c)].mean())
        labels[members] = nearest
    order = {c: i for i, c in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[c] for c in labels.tolist()])


def discover_categories(
    x: np.ndarray, *, min_size: int = 2, max_categories: int = 4
) -> tuple[list[list[int]], dict[str, Any]]:
    """Group the columns of ``x [N, D]`` into categories of correlated columns.

    Returns the categories (lists of column indices, ordered by first column) and a record of
    the choice (silhouette per candidate ``k``) for the tokenizer's saved description.
    """
    n_cols = x.shape[1]
    k_max = min(max_categories, n_cols // max(min_size, 1))
    if n_cols < 2 or k_max < 2:
        return [list(range(n_cols))], {"k": 1, "silhouette": {}}
    dist = correlation_distance(x)
    tree = linkage(squareform(dist, checks=False), method="average")
    scores: dict[int, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, k_max + 1):
        labels = merge_small(dist, fcluster(tree, t=k, criterion="maxclust") - 1, min_size)
        score = silhouette(dist, labels)
        scores[int(labels.max()) + 1] = max(score, scores.get(int(labels.max()) + 1, -1.0))
        if best is None or score > best[0] + 1e-12:
            best = (score, labels)
    assert best is not None
    labels = best[1]
    groups = [np.flatnonzero(labels == c).tolist() for c in range(int(labels.max()) + 1)]
    return groups, {"k": len(groups), "silhouette": {str(k): s for k, s in scores.items()}}
