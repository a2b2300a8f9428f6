"""Alignment by co-occurrence: both tokenizers read the same trajectories' features, and each
pair of codebooks (one of each) is compared through the contingency table of their tokens.

Scores per codebook pair: normalized mutual information and adjusted mutual information
(scikit-learn's ``normalized_mutual_info_score`` and ``adjusted_mutual_info_score``, arithmetic
normalisation). Summary scores:

* ``nmi``, ``ami`` (higher is better): for every codebook, the best score it reaches with any
  codebook of the other tokenizer, averaged over both tokenizers' codebooks; 1 when each
  codebook has a counterpart that partitions the trajectories the same way (AMI is 0 at
  chance by construction, NMI is not: it grows with the codebook sizes and falls with the
  number of trajectories, which is why every score is shown beside its null);
* ``mutual_nn_rate`` (higher): in each codebook's best-matching pair, the share of its used
  codes whose most frequent partner code has them as its most frequent partner, averaged
  over both tokenizers' codebooks.

The null of random codebooks of the same sizes (and usage) is the same tokens with the second
tokenizer's rows shuffled across trajectories: each of its codebooks still splits the data
into groups of the same sizes, at random.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from noa_platform.alignment.codebooks import CODE_SEPARATOR
from noa_platform.alignment.result import MethodResult, matched_column_order

BETTER = {"nmi": "higher", "ami": "higher", "mutual_nn_rate": "higher"}


def pair_scores(ta: np.ndarray, tb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nmi, ami)``, each ``[n_codebooks_a, n_codebooks_b]``, of token arrays ``[N, *]``."""
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    nmi = np.zeros((ta.shape[1], tb.shape[1]))
    ami = np.zeros_like(nmi)
    for i in range(ta.shape[1]):
        for j in range(tb.shape[1]):
            nmi[i, j] = normalized_mutual_info_score(ta[:, i], tb[:, j])
            ami[i, j] = adjusted_mutual_info_score(ta[:, i], tb[:, j])
    return nmi, ami


def mutual_partners(x: np.ndarray, y: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Mutual most-frequent partners between the codes of two token columns.

    Returns ``(code_x, code_y, count, jaccard)`` for every used code of ``x`` whose most
    frequent partner in ``y`` has it as its own most frequent partner.
    """
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(x, y)
    ux, uy = np.unique(x), np.unique(y)
    best_y, best_x = table.argmax(1), table.argmax(0)
    out = []
    for i, j in enumerate(best_y.tolist()):
        if best_x[j] == i:
            n = int(table[i, j])
            out.append((int(ux[i]), int(uy[j]), n, n / float(table[i].sum() + table[:, j].sum() - n)))
    return out


def cooccurrence_scores(
    ta: np.ndarray, tb: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    nmi, ami = pair_scores(ta, tb)
    best_b, best_a = nmi.argmax(1), nmi.argmax(0)
    rates = [
        len(mutual_partners(ta[:, i], tb[:, j])) / len(np.unique(ta[:, i]))
        for i, j in enumerate(best_b.tolist())
    ] + [
        len(mutual_partners(tb[:, j], ta[:, i])) / len(np.unique(tb[:, j]))
        for j, i in enumerate(best_a.tolist())
    ]
    scores = {
        "nmi": float((nmi.max(1).mean() + nmi.max(0).mean()) / 2),
        "ami": float((ami.max(1).mean() + ami.max(0).mean()) / 2),
        "mutual_nn_rate": float(np.mean(rates)),
    }
    return scores, {"nmi": nmi, "ami": ami, "best_b": best_b}


def align_cooccurrence(
    ta: np.ndarray, tb: np.ndarray, codebooks_a: Sequence[str], codebooks_b: Sequence[str],
    *, sources: Sequence[str] = (),
) -> MethodResult:
    """Tokens ``ta [N, len(codebooks_a)]`` and ``tb [N, len(codebooks_b)]`` of the same ``N``
    trajectories; ``sources`` names where the trajectories came from (for the record)."""
    scores, found = cooccurrence_scores(ta, tb)
    nmi, ami, best_b = found["nmi"], found["ami"], found["best_b"]
    pairs = []
    for i, j in enumerate(best_b.tolist()):
        for x, y, count, jaccard in mutual_partners(ta[:, i], tb[:, j]):
            pairs.append({
                "a": f"{codebooks_a[i]}{CODE_SEPARATOR}{x}",
                "b": f"{codebooks_b[j]}{CODE_SEPARATOR}{y}",
                "count": count,
                "jaccard": jaccard,
                "codebook_nmi": float(nmi[i, j]),
                "codebook_ami": float(ami[i, j]),
            })
    pairs.sort(key=lambda p: (-p["jaccard"], -p["count"]))
    col_order = matched_column_order(best_b.tolist(), nmi.shape[1])
    return MethodResult(
        method="cooccurrence",
        scores=scores,
        better=dict(BETTER),
        pairs=pairs,
        matrix=nmi[:, col_order],
        rows=tuple(codebooks_a),
        cols=tuple(codebooks_b[j] for j in col_order),
        matrix_label="normalized mutual information of codebook pairs",
        info={
            "trajectories": int(ta.shape[0]),
            "sources": list(sources),
            "codebook_pairs": [
                {"a": codebooks_a[i], "b": codebooks_b[j], "nmi": float(nmi[i, j]),
                 "ami": float(ami[i, j])}
                for i, j in enumerate(best_b.tolist())
            ],
        },
    )


def cooccurrence_null_draw(
    ta: np.ndarray, tb: np.ndarray, rng: np.random.Generator
) -> dict[str, float]:
    """The summary scores with ``tb``'s rows shuffled (random codebooks, same sizes and usage)."""
    return cooccurrence_scores(ta, tb[rng.permutation(tb.shape[0])])[0]
