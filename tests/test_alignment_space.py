"""The shared feature space of two vocabularies: intersection of named columns, pooled
standardization (checked against the variance of an actual equal mixture of samples), family
weights, and the null's random codebooks (their covariance checked by sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from noa_platform.alignment.codebooks import Vocabulary
from noa_platform.alignment.space import family_weights, shared_space, weighted_sq_distances
from noa_platform.errors import NoaError


def vocab(columns, families, center, scale, prototypes, label="v"):
    prototypes = np.asarray(prototypes, dtype=float)
    center, scale = np.asarray(center, dtype=float), np.asarray(scale, dtype=float)
    vectors = (np.eye(len(prototypes)),)
    return Vocabulary(
        label=label, codebooks=("c.r0",), sizes=(len(prototypes),),
        codes=tuple(f"c.r0:{k}" for k in range(len(prototypes))),
        codebook_of=np.zeros(len(prototypes), dtype=int), columns=tuple(columns),
        families=tuple(families), prototypes=prototypes,
        normalized=(prototypes - center) / scale, center=center, scale=scale, vectors=vectors,
        decode=lambda vs: np.asarray(vs[0]) @ ((prototypes - center) / scale),
    )


def test_shared_columns_are_the_intersection_in_the_first_order():
    a = vocab(["s:x", "s:y", "t:z@0.0000"], ["s", "s", "t"], [0, 0, 0], [1, 1, 1],
              [[1, 2, 3]])
    b = vocab(["t:z@0.0000", "s:x", "p:w"], ["t", "s", "p"], [0, 0, 0], [1, 1, 1],
              [[30, 10, 99]])
    xa, xb, w = shared_space(a, b)
    np.testing.assert_allclose(xa, [[1, 3]])  # columns s:x, t:z (s:y and p:w not shared)
    np.testing.assert_allclose(xb, [[10, 30]])
    np.testing.assert_allclose(w, [0.5, 0.5])
    c = vocab(["q:only"], ["q"], [0], [1], [[1]])
    with pytest.raises(NoaError, match="no feature column is shared"):
        shared_space(a, c)


def test_pooled_standardization_is_the_equal_mixture_of_the_two_training_sets():
    rng = np.random.default_rng(0)
    ma, sa, mb, sb = 2.0, 0.5, -1.0, 3.0
    # The two training sets themselves, equally many samples; their union's mean and std.
    pooled = np.concatenate([rng.normal(ma, sa, 400_000), rng.normal(mb, sb, 400_000)])
    point = 1.7
    a = vocab(["s:x"], ["s"], [ma], [sa], [[point]])
    b = vocab(["s:x"], ["s"], [mb], [sb], [[point]])
    xa, xb, _ = shared_space(a, b)
    expected = (point - pooled.mean()) / pooled.std()
    assert xa[0, 0] == pytest.approx(expected, rel=5e-3)
    assert xb[0, 0] == pytest.approx(xa[0, 0])
    # Aligned with itself, a tokenizer's space is its own standardization.
    xs, _, _ = shared_space(a, a)
    assert xs[0, 0] == pytest.approx((point - ma) / sa)


def test_every_family_weighs_the_same():
    fams = ["a"] * 3 + ["b"] * 1 + ["c"] * 6
    w = family_weights(fams)
    for f in "abc":
        assert w[np.array(fams) == f].sum() == pytest.approx(1 / 3)
    x, y = np.array([[1.0, 0, 0]]), np.array([[0.0, 2, 0]])
    assert weighted_sq_distances(x, y, np.array([0.5, 0.25, 0.25]))[0, 0] == pytest.approx(
        0.5 * 1 + 0.25 * 4)


def test_random_codebooks_have_the_codebook_mean_and_covariance():
    """:meth:`Vocabulary.randomized` draws each code from a Gaussian with the codebook's
    sample mean and covariance: checked over many draws."""
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(6, 3)) @ np.diag([1.0, 0.3, 2.0]) + [1.0, -2.0, 0.5]
    drawn = []
    base = vocab(["s:x"], ["s"], [0], [1], np.zeros((6, 1)))
    base = Vocabulary(**{**base.__dict__, "vectors": (codes,),
                         "decode": lambda vs: np.zeros((len(vs[0]), 1))})
    for _ in range(4000):
        drawn.append(base.randomized(rng).vectors[0])
    flat = np.concatenate(drawn)
    np.testing.assert_allclose(flat.mean(0), codes.mean(0), atol=0.05)
    np.testing.assert_allclose(np.cov(flat.T), np.cov(codes.T), atol=0.08)
