"""Alignment by decoded prototypes: a cost matrix in the shared feature space, a one-to-one
assignment (``scipy.optimize.linear_sum_assignment``) and an entropic optimal-transport
coupling (POT's ``ot.sinkhorn``, stabilized) with uniform marginals: every code counts the
same, whatever its usage, because the vocabulary is compared, not the data it was fitted on.

Summary scores:

* ``assignment_cost`` (lower is better): mean cost of the one-to-one matched pairs, in pooled
  standard deviations squared (:mod:`.space`); 0 when the vocabularies coincide;
* ``sinkhorn_divergence`` (lower): the entropic transport cost between the two vocabularies
  less the mean of each one's transport cost to itself,
  ``OT(A, B) - (OT(A, A) + OT(B, B)) / 2`` with ``OT`` the cost ``<P, C>`` of the entropic
  coupling ``P``; the blur of the regularisation cancels, so it is 0 for the same vocabulary
  (in any order) and positive otherwise;
* ``mutual_nn_rate`` (higher): share of codes (of the smaller vocabulary) whose nearest code
  in the other vocabulary has them as its nearest code.

The entropic regularisation is ``SINKHORN_REG`` times the mean of the A-B cost matrix (the same
value for the three transports), so it means the same for vocabularies of any spread. The
coupling ``P(A, B)`` is reported with the matched pairs (the share of each code's mass it sends
to its assigned partner).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment

from noa_platform.alignment.codebooks import Vocabulary
from noa_platform.alignment.result import MethodResult, matched_column_order
from noa_platform.alignment.space import shared_space, weighted_sq_distances

#: Entropic regularisation relative to the mean cost.
SINKHORN_REG = 0.05

BETTER = {"assignment_cost": "lower", "sinkhorn_divergence": "lower", "mutual_nn_rate": "higher"}


def cost_matrix(a: Vocabulary, b: Vocabulary) -> np.ndarray:
    """``[n_a, n_b]`` weighted squared distances between prototypes in the shared space."""
    return costs(a, b)[0]


def costs(a: Vocabulary, b: Vocabulary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost matrices ``A-B``, ``A-A`` and ``B-B`` in the shared space."""
    xa, xb, w = shared_space(a, b)
    return (weighted_sq_distances(xa, xb, w), weighted_sq_distances(xa, xa, w),
            weighted_sq_distances(xb, xb, w))


def transport(cost: np.ndarray, reg: float) -> np.ndarray:
    """Entropic OT coupling with uniform marginals (rows sum to ``1/n_a``), absolute ``reg``."""
    import ot

    n_a, n_b = cost.shape
    # POT warns when the threshold is not reached; the marginals' actual error is reported
    # with the result instead (``ot_marginal_error``).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sinkhorn did not converge")
        return ot.sinkhorn(
            np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b), cost, reg,
            method="sinkhorn_stabilized", numItermax=5000, stopThr=1e-3 / max(n_a, n_b),
        )


def prototype_scores(
    cost: np.ndarray, cost_aa: np.ndarray, cost_bb: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Summary scores of the three cost matrices, and the assignment/coupling behind them."""
    rows, cols = linear_sum_assignment(cost)
    mean = float(cost.mean())
    reg = SINKHORN_REG * (mean if mean > 0 else 1.0)
    coupling = transport(cost, reg)
    self_a, self_b = transport(cost_aa, reg), transport(cost_bb, reg)
    divergence = (coupling * cost).sum() - ((self_a * cost_aa).sum() + (self_b * cost_bb).sum()) / 2
    nn_ab, nn_ba = cost.argmin(1), cost.argmin(0)
    mutual = nn_ba[nn_ab] == np.arange(cost.shape[0])
    scores = {
        "assignment_cost": float(cost[rows, cols].mean()),
        "sinkhorn_divergence": float(divergence),
        "mutual_nn_rate": float(mutual.sum() / min(cost.shape)),
    }
    return scores, {"rows": rows, "cols": cols, "coupling": coupling, "mutual": mutual}


def align_prototypes(a: Vocabulary, b: Vocabulary) -> MethodResult:
    cost, cost_aa, cost_bb = costs(a, b)
    scores, found = prototype_scores(cost, cost_aa, cost_bb)
    rows, cols, coupling, mutual = found["rows"], found["cols"], found["coupling"], found["mutual"]
    n_a = cost.shape[0]
    nn_ab = cost.argmin(1)
    pairs = sorted(
        (
            {
                "a": a.codes[i],
                "b": b.codes[j],
                "cost": float(cost[i, j]),
                # Share of a's mass the coupling sends to b (1 = all of it).
                "coupling": float(coupling[i, j] * n_a),
                "mutual_nn": bool(mutual[i] and nn_ab[i] == j),
            }
            for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
        ),
        key=lambda p: p["cost"],
    )
    # Columns in assignment order, so matched pairs lie on the diagonal; unmatched ones last.
    order = np.argsort(rows)
    col_order = matched_column_order(cols[order].tolist(), cost.shape[1])
    row_order = matched_column_order(rows[order].tolist(), n_a)
    return MethodResult(
        method="prototypes",
        scores=scores,
        better=dict(BETTER),
        pairs=pairs,
        matrix=cost[np.ix_(row_order, col_order)],
        rows=tuple(a.codes[i] for i in row_order),
        cols=tuple(b.codes[j] for j in col_order),
        matrix_label="cost (pooled std², assignment on the diagonal)",
        info={
            "shared_columns": int(shared_space(a, b)[2].size),
            "codes_a": a.n_codes,
            "codes_b": b.n_codes,
            # Largest deviation of the coupling's marginals from uniform, relative to one
            # code's mass.
            "ot_marginal_error": float(max(
                np.abs(coupling.sum(1) * n_a - 1).max(),
                np.abs(coupling.sum(0) * cost.shape[1] - 1).max(),
            )),
        },
    )


def prototype_null_draw(a: Vocabulary, b: Vocabulary, rng: np.random.Generator) -> dict[str, float]:
    """The summary scores of random codebooks of the same sizes (:meth:`Vocabulary.randomized`)."""
    return prototype_scores(*costs(a.randomized(rng), b.randomized(rng)))[0]
