"""Seeded random fields (noa_platform.numerics.random_fields)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noa_platform.api import Grid
from noa_platform.numerics.random_fields import (
    gaussian_blobs,
    gaussian_random_field,
    multiscale_field,
    random_sinusoids,
)

FIELDS = {
    "grf": lambda n, g, gen, c: gaussian_random_field(n, g, gen, channels=c),
    "grf-rough": lambda n, g, gen, c: gaussian_random_field(n, g, gen, channels=c, slope=1.0,
                                                            length_scale=g.extent[0] / 20),
    "multiscale": lambda n, g, gen, c: multiscale_field(n, g, gen, channels=c),
    "sinusoids": lambda n, g, gen, c: random_sinusoids(n, g, gen, channels=c),
    "blobs": lambda n, g, gen, c: gaussian_blobs(n, g, gen, channels=c),
}

sizes = st.integers(8, 40)
extents = st.floats(0.5, 200.0)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(sorted(FIELDS)), h=sizes, w=sizes, ly=extents, lx=extents,
       seed=st.integers(0, 2**31 - 1), n=st.integers(1, 3), channels=st.integers(1, 3))
def test_fields_are_finite_normalized_and_seeded(kind, h, w, ly, lx, seed, n, channels):
    grid = Grid((h, w), (ly, lx))
    make = FIELDS[kind]
    a = make(n, grid, torch.Generator().manual_seed(seed), channels)
    b = make(n, grid, torch.Generator().manual_seed(seed), channels)
    assert a.shape == (n, channels, h, w) and a.dtype == torch.float64
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    mean = a.mean(dim=(-2, -1))
    std = a.std(dim=(-2, -1), correction=0)
    assert float(mean.abs().max()) < 1e-10
    assert bool(((std - 1).abs() < 1e-10).all())


def test_different_seeds_and_channels_differ():
    grid = Grid((16, 16), (16.0, 16.0))
    for make in FIELDS.values():
        a = make(2, grid, torch.Generator().manual_seed(0), 2)
        b = make(2, grid, torch.Generator().manual_seed(1), 2)
        assert not torch.equal(a, b)
        assert not torch.equal(a[:, 0], a[:, 1]) and not torch.equal(a[0], a[1])


def test_length_scale_controls_smoothness():
    grid = Grid((64, 64), (64.0, 64.0))

    def roughness(ell):
        f = gaussian_random_field(8, grid, torch.Generator().manual_seed(0), length_scale=ell)
        return float((f - f.roll(1, -1)).square().mean())

    assert roughness(16.0) < roughness(4.0) < roughness(1.0)


def test_blobs_are_periodic_bumps():
    grid = Grid((32, 32), (32.0, 32.0))
    f = gaussian_blobs(4, grid, torch.Generator().manual_seed(0), normalize=False)
    assert float(f.min()) >= 0.0 and float(f.max()) > 0.4
    # Wrap-around: the field is continuous across the boundary (no seam).
    seam = (f[..., 0] - f[..., -1]).abs().max()
    inner = (f[..., 1:] - f[..., :-1]).abs().max()
    assert float(seam) <= float(inner) + 1e-12


def test_generator_must_be_cpu_and_arguments_valid():
    grid = Grid((8, 8), (1.0, 1.0))
    with pytest.raises(ValueError):
        gaussian_random_field(1, grid, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gaussian_random_field(1, grid, torch.Generator(), length_scale=-1.0)
    with pytest.raises(ValueError):
        multiscale_field(1, grid, torch.Generator(), length_scales=[1.0], weights=[1.0, 2.0])
