"""Category discovery and normalization of the tokenizer."""

from __future__ import annotations

import numpy as np
import torch

from noa_platform.tokenizer.categories import correlation_distance, discover_categories
from noa_platform.tokenizer.normalization import Normalizer


def planted(sizes, n=300, noise=0.2, seed=0, singletons=0):
    """Columns in groups driven by one factor each (random signs and scales), shuffled.

    Returns ``(x [n, D], groups)`` with ``groups`` the planted column sets.
    """
    rng = np.random.default_rng(seed)
    cols, owner = [], []
    for g, size in enumerate(sizes):
        factor = rng.normal(size=n)
        for _ in range(size):
            scale = rng.uniform(0.5, 3) * rng.choice([-1, 1])
            cols.append(scale * (factor + noise * rng.normal(size=n)) + rng.normal())
            owner.append(g)
    for s in range(singletons):
        cols.append(rng.normal(size=n))
        owner.append(len(sizes) + s)
    perm = rng.permutation(len(cols))
    x = np.stack(cols, axis=1)[:, perm]
    owner = np.asarray(owner)[perm]
    groups = [set(np.flatnonzero(owner == g).tolist()) for g in range(len(sizes) + singletons)]
    return x, groups


def test_discovery_recovers_planted_groups():
    x, groups = planted([5, 7, 6])
    found, record = discover_categories(x, min_size=2, max_categories=6)
    assert sorted(map(frozenset, found), key=min) == sorted(map(frozenset, groups), key=min)
    assert record["k"] == 3
    # Deterministic, and ordered by first column.
    assert discover_categories(x, min_size=2, max_categories=6)[0] == found
    assert [g[0] for g in found] == sorted(g[0] for g in found)


def test_minimum_category_size_is_honoured():
    # Two lone independent columns would be categories of their own without the minimum.
    x, groups = planted([5, 6], singletons=2, seed=1)
    found, _ = discover_categories(x, min_size=3, max_categories=6)
    assert min(len(g) for g in found) >= 3
    assert sorted(c for g in found for c in g) == list(range(x.shape[1]))
    # The planted groups are still never split.
    for planted_group in groups[:2]:
        assert any(planted_group <= set(g) for g in found)


def test_small_or_constant_families_are_one_category():
    x, _ = planted([3])
    assert discover_categories(x, min_size=2, max_categories=4)[0] == [[0, 1, 2]]
    x = np.ones((50, 4))
    assert np.all(np.isfinite(correlation_distance(x)))
    found, _ = discover_categories(x, min_size=1, max_categories=4)
    assert sorted(c for g in found for c in g) == [0, 1, 2, 3]


def test_normalization_standardizes_and_survives_constant_columns():
    g = torch.Generator().manual_seed(0)
    static = torch.cat([5 + 2 * torch.randn(100, 3, generator=g), torch.full((100, 1), 7.0)], 1)
    temporal = torch.randn(100, 9, 2, generator=g) * torch.tensor([1.0, 10.0]) + 3
    for method in ("standard", "robust"):
        norm = Normalizer.fit({"s": static, "t": temporal}, method)
        s = norm.apply("s", static)
        assert torch.isfinite(s).all()
        assert s[:, 3].abs().max() == 0  # the constant column maps to 0
        assert s[:, :3].std(0).sub(1).abs().max() < 0.3
        t = norm.apply("t", temporal)  # per column over (N, T+1)
        assert t.reshape(-1, 2).std(0).sub(1).abs().max() < 0.3
        torch.testing.assert_close(norm.invert("s", s), static)
        # A column constant in training that varies later is measured on its magnitude.
        shifted = static.clone()
        shifted[:, 3] += 1.0
        assert norm.apply("s", shifted)[:, 3].abs().max() < 1.0
        again = Normalizer.from_json(norm.to_json())
        torch.testing.assert_close(again.apply("t", temporal), t)
