"""Vocabulary alignment: permuted (and latent-rotated) copies are recovered exactly, a tokenizer
aligned with itself scores perfectly, and unrelated random codebooks score at chance, judged
against null distributions computed here with the test's own draws."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment, quadratic_assignment
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

pytest.importorskip("ot")
pytest.importorskip("sklearn")

from noa_platform.alignment.codebooks import CODE_SEPARATOR, vocabulary
from noa_platform.alignment.compare import FeatureSource, align
from noa_platform.alignment.cooccurrence import cooccurrence_scores
from noa_platform.alignment.geometry import gromov, normalize_distances
from noa_platform.alignment.space import family_weights
from noa_platform.tokenizer import TokenizerConfig, fit_tokenizer

#: A small tokenizer: 128 samples // 16 per code = 8 codes per codebook.
SMALL = dict(steps=150, hidden=32, latent_dim=4, batch_size=64, max_categories=2,
             residual_levels=2)


def synthetic(n: int, seed: int):
    """Features shaped like the extractors' (static ``initial``/``summary``, ``temporal``
    ``[n, 6, 3]``) from four behaviour clusters in a 2-factor space."""
    fixed = torch.Generator().manual_seed(99)
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(4, 2, generator=fixed) * 2 - 1
    h = centres[torch.randint(4, (n,), generator=g)] + 0.2 * torch.randn(n, 2, generator=g)
    w_i, w_s = torch.randn(2, 6, generator=fixed), torch.randn(2, 5, generator=fixed)
    initial = h @ w_i + 0.05 * torch.randn(n, 6, generator=g)
    summary = torch.tanh(h @ w_s) + 0.05 * torch.randn(n, 5, generator=g)
    t = torch.linspace(0, 1, 6)[None, :, None]
    temporal = torch.exp(-(1.5 + h[:, :1, None]) * t) * torch.arange(1, 4.0)
    feats = {"initial": initial, "summary": summary, "temporal": temporal}
    names = {f: tuple(f"{f}_{i}" for i in range(x.shape[-1])) for f, x in feats.items()}
    return feats, names


@pytest.fixture(scope="module")
def data():
    return synthetic(128, seed=0)


@pytest.fixture(scope="module")
def tok(data):
    feats, names = data
    return fit_tokenizer(feats, names, TokenizerConfig(**SMALL), seed=0, progress=False).eval()


def permuted_rotated_copy(tok, seed: int, rotate: bool = True):
    """A copy whose codes are permuted in every codebook and whose latent space is rotated.

    New code ``i`` of a codebook is old code ``perm[i]``; each category's latent is rotated by
    a random orthogonal ``R``: encoder output ``R z``, code vectors ``R e``, decoder input
    ``R^T``. Distances in the latent space are unchanged, so the copy tokenizes every
    trajectory like the original up to the permutation and decodes every code identically.
    Returns the copy and, per codebook name, ``where[k]`` = the copy's index of old code ``k``.
    """
    rng = np.random.default_rng(seed)
    new = copy.deepcopy(tok)
    where = {}
    names = iter(new.codebook_names)
    with torch.no_grad():
        for codec in new.codecs:
            d = codec.quantizer.levels[0].dim
            r = torch.as_tensor(ortho_group.rvs(d, random_state=rng) if rotate else np.eye(d),
                                dtype=torch.float32)
            temporal = codec.category.temporal
            last = (codec.encoder.head if temporal else codec.encoder)[-1]
            last.weight.copy_(r @ last.weight)
            last.bias.copy_(r @ last.bias)
            first = (codec.decoder.net if temporal else codec.decoder)[0]
            first.weight.copy_(first.weight @ r.T)
            for level in codec.quantizer.levels:
                perm = torch.as_tensor(rng.permutation(level.size))
                level.codebook.copy_((level.codebook @ r.T)[perm])
                level.embed_sum.copy_((level.embed_sum @ r.T)[perm])
                level.usage.copy_(level.usage[perm])
                where[next(names)] = torch.argsort(perm).numpy()
    return new, where


def expected_partner(code: str, where) -> str:
    book, k = code.split(CODE_SEPARATOR)
    return f"{book}{CODE_SEPARATOR}{where[book][int(k)]}"


def test_vocabulary_decodes_each_code_with_the_rest_at_reference(tok):
    voc = vocabulary(tok, levels=None)
    assert voc.codebooks == tuple(tok.codebook_names)
    assert voc.n_codes == sum(tok.codebook_sizes)
    # Independently: code k of the first codebook (level 0 of category 0), level 1 at its
    # usage-weighted mean, every other category at the sum of its levels' weighted means.
    with torch.no_grad():
        refs = []
        for codec in tok.codecs:
            means = [(lv.usage[:, None] * lv.codebook).sum(0) / lv.usage.sum()
                     for lv in codec.quantizer.levels]
            refs.append(means)
        k = 3
        latents = [sum(m)[None] for m in refs]
        latents[0] = (tok.codecs[0].quantizer.levels[0].codebook[k] + refs[0][1])[None]
        out = tok.decode_latents(latents)
        raw = {f: tok.denormalize(f, x) for f, x in out.items()}
    flat = torch.cat([raw[f].reshape(1, -1) for f in tok.names], 1).double().numpy()[0]
    np.testing.assert_allclose(voc.prototypes[k], flat, rtol=1e-5, atol=1e-5)
    # Temporal columns are the profile's points, named by family, column and time.
    assert "temporal:temporal_0@0.0000" in voc.columns
    assert len(voc.columns) == 6 + 5 + tok.config.temporal_points * 3


def test_permuted_rotated_copy_is_recovered_exactly_by_every_method(tok, data):
    feats, names = data
    twin, where = permuted_rotated_copy(tok, seed=1)
    # The copy really is the same tokenizer with renamed codes.
    tokens, twin_tokens = tok.tokenize(feats).numpy(), twin.tokenize(feats).numpy()
    for j, book in enumerate(tok.codebook_names):
        np.testing.assert_array_equal(twin_tokens[:, j], where[book][tokens[:, j]])
    result = align(tok, twin, levels=None, sources=[FeatureSource("synthetic", feats, names)],
                   n_null=3)
    proto = result.results["prototypes"]
    assert len(proto.pairs) == vocabulary(tok, levels=None).n_codes
    assert all(p["b"] == expected_partner(p["a"], where) for p in proto.pairs)
    assert proto.scores["assignment_cost"] < 1e-9
    assert proto.scores["mutual_nn_rate"] == 1.0
    assert abs(proto.scores["sinkhorn_divergence"]) < 1e-9
    geo = result.results["geometry"]
    assert all(p["b"] == expected_partner(p["a"], where) for p in geo.pairs)
    assert geo.scores["gw_discrepancy"] < 1e-9
    co = result.results["cooccurrence"]
    used = sum(len(np.unique(tokens[:, j])) for j in range(tokens.shape[1]))
    assert len(co.pairs) == used
    assert all(p["b"] == expected_partner(p["a"], where) for p in co.pairs)
    assert co.scores == pytest.approx({"nmi": 1.0, "ami": 1.0, "mutual_nn_rate": 1.0})


def test_aligned_with_itself_scores_perfectly(tok, data):
    feats, names = data
    result = align(tok, tok, sources=[FeatureSource("synthetic", feats, names)], n_null=3)
    scores = {m: r.scores for m, r in result.results.items()}
    assert scores["prototypes"]["assignment_cost"] == 0.0
    assert scores["prototypes"]["mutual_nn_rate"] == 1.0
    assert scores["prototypes"]["sinkhorn_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert scores["geometry"]["gw_discrepancy"] == pytest.approx(0.0, abs=1e-12)
    assert scores["geometry"]["map_correlation"] == pytest.approx(1.0)
    assert scores["cooccurrence"] == pytest.approx({"nmi": 1.0, "ami": 1.0, "mutual_nn_rate": 1.0})
    # Perfect is far outside the null of random codebooks.
    for name, better in result.results["prototypes"].better.items():
        null = result.results["prototypes"].null[name]
        sign = 1 if better == "higher" else -1
        assert sign * (scores["prototypes"][name] - null["null_mean"]) > 0, name


def test_geometry_recovers_a_permutation_under_a_rotation_of_the_feature_space(tok):
    """Prototype matching needs shared columns; Gromov–Wasserstein does not: the same points,
    permuted and rotated in the (weighted) feature space, are matched exactly."""
    voc = vocabulary(tok, levels=None)
    points = voc.normalized * np.sqrt(family_weights(voc.families))
    rng = np.random.default_rng(5)
    perm = rng.permutation(len(points))
    rotated = points[perm] @ ortho_group.rvs(points.shape[1], random_state=rng)
    d_a = normalize_distances(cdist(points, points))
    d_b = normalize_distances(cdist(rotated, rotated))
    scores, coupling = gromov(d_a, d_b)
    # Row i of the original is row argsort(perm)[i] of the rotated copy.
    np.testing.assert_array_equal(coupling.argmax(1), np.argsort(perm))
    assert scores["gw_discrepancy"] < 1e-9 and scores["map_correlation"] == pytest.approx(1.0)


def random_codebooks(tok, rng):
    """A copy of ``tok`` whose first-level code vectors are independent Gaussian draws with
    each codebook's mean and covariance (``numpy``'s multivariate normal, not the library's
    own draw)."""
    new = copy.deepcopy(tok)
    with torch.no_grad():
        for codec in new.codecs:
            level = codec.quantizer.levels[0]
            vecs = level.codebook.double().numpy()
            drawn = rng.multivariate_normal(vecs.mean(0), np.cov(vecs.T), size=len(vecs))
            level.codebook.copy_(torch.as_tensor(drawn, dtype=torch.float32))
    return new


def first_principles_scores(va, vb) -> dict[tuple[str, str], float]:
    """The prototype and geometry summary scores of two vocabularies of copies of one
    tokenizer, from their definitions (docs/alignment.md), with none of the library's scorers.

    Both copies share the normalizer, so the pooled space is the tokenizer's own normalized
    space; each family weighs the same. The Sinkhorn divergence is taken at its limit of no
    regularisation: exact optimal transport (POT's ``ot.emd2``), whose transport of a
    vocabulary to itself costs 0. Geometry matches codes by a permutation, found by scipy's
    quadratic-assignment solver (FAQ), which maximizes ``sum D_a[i,k] D_b[s(i),s(k)]`` and so
    minimizes the Gromov-Wasserstein objective over one-to-one couplings.
    """
    import ot

    assert va.columns == vb.columns and va.families == vb.families
    assert np.array_equal(va.center, vb.center) and np.array_equal(va.scale, vb.scale)
    count = Counter(va.families)
    root_w = np.sqrt([1.0 / (len(count) * count[f]) for f in va.families])
    xa, xb = va.normalized * root_w, vb.normalized * root_w
    cost = cdist(xa, xb, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    n_a, n_b = cost.shape
    nearest_b, nearest_a = cost.argmin(1), cost.argmin(0)

    def own(x):
        d = cdist(x, x)
        return d / d[~np.eye(len(d), dtype=bool)].mean()

    da, db = own(xa), own(xb)
    s = quadratic_assignment(da, db, method="faq", options={"maximize": True}).col_ind
    mapped = db[np.ix_(s, s)]
    upper = np.triu_indices(len(da), k=1)
    return {
        ("prototypes", "assignment_cost"): cost[rows, cols].mean(),
        ("prototypes", "sinkhorn_divergence"): ot.emd2(np.full(n_a, 1 / n_a),
                                                       np.full(n_b, 1 / n_b), cost),
        ("prototypes", "mutual_nn_rate"): np.mean(nearest_a[nearest_b] == np.arange(n_a)),
        ("geometry", "gw_discrepancy"): np.mean((da - mapped) ** 2),
        ("geometry", "map_correlation"): np.corrcoef(da[upper], mapped[upper])[0, 1],
    }


def test_unrelated_random_codebooks_score_at_chance(tok):
    """Two tokenizers with independent random codebooks score within 4 standard deviations of
    the null this test computes from 20 further independent pairs; the library's own null for
    the real codebooks (20 of its random draws) has the same mean within one such deviation.

    Independent anchor: the chance level of each score computed with the scorers written
    here (:func:`first_principles_scores`) over the same 20 pairs; the library's null mean
    agrees with it within 4 standard errors of the difference of the two means."""
    from noa_platform.alignment.geometry import own_distances
    from noa_platform.alignment.prototypes import costs, prototype_scores

    rng = np.random.default_rng(11)
    test_null, anchor = {}, {}
    for _ in range(20):
        va, vb = (vocabulary(random_codebooks(tok, rng)) for _ in range(2))
        scores = {("prototypes", k): v for k, v in prototype_scores(*costs(va, vb))[0].items()}
        scores |= {("geometry", k): v
                   for k, v in gromov(own_distances(va), own_distances(vb))[0].items()}
        for key, value in scores.items():
            test_null.setdefault(key, []).append(value)
        for key, value in first_principles_scores(va, vb).items():
            anchor.setdefault(key, []).append(value)
    assert set(anchor) == set(test_null)
    methods = ("prototypes", "geometry")
    unrelated = align(random_codebooks(tok, rng), random_codebooks(tok, rng), methods=methods,
                      n_null=2)
    library_null = align(tok, tok, methods=methods, n_null=20, seed=3)
    for (m, name), values in test_null.items():
        mean, std = np.mean(values), np.std(values, ddof=1)
        assert abs(unrelated.results[m].scores[name] - mean) <= 4 * std + 1e-12, (m, name)
        null = library_null.results[m].null[name]
        assert abs(null["null_mean"] - mean) <= std + 1e-12, (m, name)
        chance = anchor[(m, name)]
        standard_error = np.sqrt(np.var(chance, ddof=1) / len(chance)
                                 + null["null_std"] ** 2 / null["null_n"])
        assert abs(null["null_mean"] - np.mean(chance)) <= 4 * standard_error, (m, name)


def test_unrelated_tokens_cooccur_at_chance():
    """Independent uniform tokens: NMI, AMI and the mutual-partner rate lie within 4 standard
    deviations of a null of 25 further independent draws, and so does the mean of the
    library's shuffle null."""
    rng = np.random.default_rng(2)

    def draw():
        return rng.integers(0, 8, (300, 2)), rng.integers(0, 6, (300, 3))

    values = [cooccurrence_scores(*draw())[0] for _ in range(25)]
    ta, tb = draw()
    result = align_tokens(ta, tb)
    for name in ("nmi", "ami", "mutual_nn_rate"):
        column = [v[name] for v in values]
        mean, std = np.mean(column), np.std(column, ddof=1)
        assert abs(result.scores[name] - mean) <= 4 * std, name
        assert abs(result.null[name]["null_mean"] - mean) <= std, name
    # A pair's AMI is 0 at chance (the summary, each codebook's best pair, is above it).
    from noa_platform.alignment.cooccurrence import pair_scores

    ami = np.concatenate([pair_scores(*draw())[1].ravel() for _ in range(10)])
    assert abs(ami.mean()) <= 4 * ami.std(ddof=1) / np.sqrt(ami.size)


def align_tokens(ta, tb):
    from noa_platform.alignment.cooccurrence import align_cooccurrence, cooccurrence_null_draw
    from noa_platform.alignment.null import null_distribution

    result = align_cooccurrence(ta, tb, [f"a{i}" for i in range(ta.shape[1])],
                                [f"b{j}" for j in range(tb.shape[1])])
    result.null = null_distribution(lambda g: cooccurrence_null_draw(ta, tb, g), 25, seed=0)
    return result


def test_levels_default_to_the_first_and_bad_levels_are_one_line_errors(tok):
    from noa_platform.alignment.codebooks import parse_levels
    from noa_platform.errors import NoaError

    voc = vocabulary(tok)
    assert all(book.endswith(".r0") for book in voc.codebooks)
    assert parse_levels("all") is None and parse_levels("1,0") == (0, 1)
    with pytest.raises(NoaError, match="residual levels 0..1"):
        vocabulary(tok, levels=(2,))
    with pytest.raises(NoaError, match="--levels"):
        parse_levels("first")


def test_cooccurrence_is_also_scored_within_each_source(tok, data):
    """Pooled over two sources, part of the agreement can be telling the sources apart; each
    source's own scores are reported too, equal to the scores of its trajectories alone."""
    feats, names = data
    halves = [FeatureSource(f"half{i}", {f: x[i * 64:(i + 1) * 64] for f, x in feats.items()},
                            names) for i in range(2)]
    twin, _ = permuted_rotated_copy(tok, seed=4, rotate=False)
    result = align(tok, twin, methods=("cooccurrence",), sources=halves, n_null=3)
    per_source = result.results["cooccurrence"].info["per_source"]
    assert list(per_source) == ["half0", "half1"]
    ta, tb = tok.tokenize(feats).numpy()[:, ::2], twin.tokenize(feats).numpy()[:, ::2]
    for i, scores in enumerate(per_source.values()):
        expected = cooccurrence_scores(ta[i * 64:(i + 1) * 64], tb[i * 64:(i + 1) * 64])[0]
        assert {k: s["value"] for k, s in scores.items()} == pytest.approx(expected)
        assert all(s["null_n"] == 3 for s in scores.values())


def test_fsq_tokenizers_align_with_uniform_code_weights(data):
    """FSQ grids have no usage record: their codes count uniformly, and a tokenizer aligned
    with itself still scores perfectly."""
    feats, names = data
    fsq = fit_tokenizer(feats, names, TokenizerConfig(**{**SMALL, "steps": 40, "quantizer": "fsq"}),
                        seed=0, progress=False)
    result = align(fsq, fsq, sources=[FeatureSource("synthetic", feats, names)], n_null=2)
    assert result.results["prototypes"].scores["assignment_cost"] == 0.0
    assert result.results["geometry"].scores["gw_discrepancy"] == pytest.approx(0.0, abs=1e-12)
    assert result.results["cooccurrence"].scores["ami"] == pytest.approx(1.0)
