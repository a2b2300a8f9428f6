"""Quantizers of the tokenizer: EMA codebooks (k-means init, dead-code restart), FSQ, residual."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noa_platform.tokenizer.config import TokenizerConfig, effective_codebook_size, fsq_levels_for
from noa_platform.tokenizer.quantizers import (
    FSQ,
    EMAVectorQuantizer,
    ResidualQuantizer,
    kmeans,
)


def clustered(n_clusters: int, per_cluster: int, dim: int = 4, spread: float = 0.05, seed: int = 0):
    """Points around well-separated random centres, in random order."""
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(n_clusters, dim, generator=g)
    labels = torch.arange(n_clusters).repeat_interleave(per_cluster)
    points = centres[labels] + spread * torch.randn(len(labels), dim, generator=g)
    perm = torch.randperm(len(labels), generator=g)
    return points[perm], labels[perm]


def usage(vq: EMAVectorQuantizer, z: torch.Tensor) -> tuple[float, float]:
    """(utilization, perplexity) of ``vq`` over ``z``."""
    counts = torch.bincount(vq.quantize(z)[1], minlength=vq.size).double()
    p = counts[counts > 0] / counts.sum()
    return float((counts > 0).float().mean()), math.exp(float(-(p * p.log()).sum()))


def run_ema(vq: EMAVectorQuantizer, z: torch.Tensor, steps: int, batch: int, restart: bool, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        zb = z[torch.randint(len(z), (batch,), generator=g)]
        vq.ema_update(zb, vq.quantize(zb)[1])
        if restart:
            vq.restart_dead(zb)


def test_collapsed_codebook_recovers_with_dead_code_restart():
    z, _ = clustered(n_clusters=12, per_cluster=40)
    vq = EMAVectorQuantizer(4, 8, decay=0.9, dead_threshold=0.1, seed=0)
    vq.kmeans_init(z)
    # Collapse every code onto code 0, the failure the research code's codebooks showed.
    with torch.no_grad():
        vq.codebook.copy_(vq.codebook[0].expand_as(vq.codebook))
        vq.embed_sum.copy_(vq.codebook * vq.usage[:, None])
    assert usage(vq, z)[0] == pytest.approx(1 / 8)

    run_ema(vq, z, steps=150, batch=128, restart=True)
    utilization, perplexity = usage(vq, z)
    assert utilization >= 0.9
    assert perplexity >= 8 / 2


def test_ema_vq_on_separated_clusters_uses_its_codes():
    z, _ = clustered(n_clusters=16, per_cluster=32, seed=3)
    vq = EMAVectorQuantizer(4, 16, seed=0)
    # No explicit init: the first update initialises by k-means on its batch.
    run_ema(vq, z, steps=100, batch=256, restart=True)
    assert bool(vq.initialized)
    utilization, perplexity = usage(vq, z)
    assert utilization >= 0.9
    assert perplexity >= 16 / 2
    # The codes sit on the cluster centres: the quantization error is the cluster spread.
    q, _ = vq.quantize(z)
    assert float(((q - z) ** 2).sum(1).mean()) < 0.05


def test_kmeans_is_seeded_and_finds_the_clusters():
    z, labels = clustered(n_clusters=6, per_cluster=30)
    c1, n1 = kmeans(z, 6, iters=10, generator=torch.Generator().manual_seed(5))
    c2, n2 = kmeans(z, 6, iters=10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(c1, c2) and torch.equal(n1, n2)
    assert sorted(n1.tolist()) == [30] * 6
    # More centroids than distinct points: no failure, every centroid on data.
    c3, _ = kmeans(z[:3], 5, iters=3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(c3).all()


def test_fsq_round_trip_and_codebook_size():
    fsq = FSQ(dim=6, levels=[8, 5, 5, 3])
    assert fsq.size == 8 * 5 * 5 * 3
    every = torch.arange(fsq.size)
    codes = fsq.index_to_codes(every)
    assert codes.abs().max() <= 1.0
    assert torch.equal(fsq.codes_to_index(codes), every)
    # Large inputs saturate to the grid's extremes; every index stays in range.
    z = 50 * torch.randn(2000, 6, generator=torch.Generator().manual_seed(0))
    q, index = fsq.quantize(z)
    assert index.min() >= 0 and index.max() < fsq.size
    torch.testing.assert_close(fsq.lookup(index), q)
    # Each dimension takes exactly ``level`` distinct values over a wide input range.
    levels_seen = [len(torch.unique(fsq.codes(z)[:, i])) for i in range(4)]
    assert levels_seen == [8, 5, 5, 3]


def test_fsq_gradient_passes_straight_through():
    fsq = FSQ(dim=4, levels=[5, 5])
    z = torch.randn(32, 4, requires_grad=True)
    q, _ = fsq.quantize(z)
    q.pow(2).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert fsq.project_in.weight.grad.abs().sum() > 0


def test_residual_ema_is_straight_through_and_cuts_error():
    z, _ = clustered(n_clusters=40, per_cluster=10, spread=0.5, seed=2)
    rq = ResidualQuantizer([EMAVectorQuantizer(4, 8, seed=i) for i in range(3)])
    residual = z
    for level in rq.levels:
        level.kmeans_init(residual)
        residual = residual - level.quantize(residual)[0]
    zg = z.clone().requires_grad_(True)
    out = rq(zg)
    assert out.indices.shape == (len(z), 3) and out.indices.dtype == torch.long
    out.quantized.sum().backward()
    torch.testing.assert_close(zg.grad, torch.ones_like(z))  # identity: straight-through
    torch.testing.assert_close(rq.lookup(out.indices), out.quantized.detach())
    # Each level removes part of what the previous ones left.
    errors, partial = [], torch.zeros_like(z)
    for r, level in enumerate(rq.levels):
        partial = partial + level.lookup(out.indices[:, r])
        errors.append(float(((z - partial) ** 2).mean()))
    assert errors[0] > errors[1] > errors[2]


def test_codebook_sizing_follows_the_data():
    cfg = TokenizerConfig()
    assert effective_codebook_size(256, cfg) == 16
    assert effective_codebook_size(204, cfg) == 12
    assert effective_codebook_size(4096, cfg) == 64
    assert effective_codebook_size(10, cfg) == 4
    assert effective_codebook_size(3, cfg) == 3
    assert effective_codebook_size(256, TokenizerConfig(samples_per_code=8, codebook_size=16)) == 16


@pytest.mark.parametrize("size,levels", [(8, [8]), (12, [4, 3]), (16, [4, 4]), (64, [4, 4, 4])])
def test_fsq_levels_for(size, levels):
    assert fsq_levels_for(size) == levels


@given(st.lists(st.integers(min_value=2, max_value=9), min_size=1, max_size=4))
@settings(max_examples=30, deadline=None)
def test_fsq_index_is_a_bijection_for_any_levels(levels):
    fsq = FSQ(dim=3, levels=levels)
    every = torch.arange(fsq.size)
    codes = fsq.index_to_codes(every)
    assert codes.min() >= -1 and codes.max() <= 1
    assert torch.equal(fsq.codes_to_index(codes), every)
    assert len(torch.unique(codes, dim=0)) == fsq.size
