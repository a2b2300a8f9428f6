"""What one alignment method returns: summary scores, matched pairs and a matrix to draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def matched_column_order(matched: list[int], n_cols: int) -> list[int]:
    """Heat-map columns: each row's match in row order (first time seen), then the columns
    no row matched, so a one-to-one map lies on the diagonal."""
    order = list(dict.fromkeys(matched))
    seen = set(order)
    return order + [j for j in range(n_cols) if j not in seen]


@dataclass
class MethodResult:
    """One method's outcome.

    ``scores``: summary scores by name; ``better``: ``"lower"`` or ``"higher"`` for each;
    ``null``: per score, the mean, standard deviation and count of the same score over random
    codebooks of the same sizes (:mod:`.null`), filled in by :func:`~.compare.align`;
    ``pairs``: matched pairs (JSON-able dicts, best first); ``matrix`` with ``rows``/``cols``
    labels and ``matrix_label``: what the heat map shows.
    """

    method: str
    scores: dict[str, float]
    better: dict[str, str]
    pairs: list[dict[str, Any]]
    matrix: np.ndarray
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    matrix_label: str
    null: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, max_pairs: int | None = None) -> dict[str, Any]:
        pairs = self.pairs if max_pairs is None else self.pairs[:max_pairs]
        return {
            "scores": {
                name: {"value": value, "better": self.better[name], **self.null.get(name, {})}
                for name, value in self.scores.items()
            },
            "info": self.info,
            "pairs": pairs,
        }
