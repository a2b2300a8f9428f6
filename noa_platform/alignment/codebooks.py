"""A tokenizer's vocabulary as points: every code of the chosen codebooks, decoded to features.

What "decoding a code" means for the residual VQ-VAE (:mod:`noa_platform.tokenizer.vqvae`):
a trajectory's tokens are one code per codebook, codebook ``(c, r)`` being residual level ``r``
of category ``c``; the category's quantized latent is the *sum* of its levels' code vectors,
and its decoder maps that latent to the category's columns. One code alone is therefore not a
latent. Its **prototype** is the feature vector the tokenizer decodes when that code is chosen
and every other choice is at its reference:

* the other levels of the same category contribute their usage-weighted mean code vector
  (for the first level this is the centre of the category's latent cloud; a deeper level's
  codes are small corrections around it, so its prototypes lie around the reference);
* the other categories are decoded from their own reference latent (the sum of their levels'
  mean code vectors), so their columns hold the tokenizer's "typical trajectory".

A prototype is a full feature vector over every column of every family the tokenizer reads,
in raw feature units (the normalizer inverted). Temporal families are decoded to their time
profile ``[temporal_points, D]`` and count as ``temporal_points x D`` columns named
``family:column@t`` with ``t`` the profile's normalized time.

Usage weights come from the EMA codebooks' ``usage`` buffer (the share of training samples
each code took); FSQ grids have no usage and are weighted uniformly.

A :class:`Vocabulary` also keeps how to decode *other* code vectors the same way, which is
what the null of random codebooks (:meth:`Vocabulary.randomized`) needs: each selected
codebook's vectors redrawn from a Gaussian with the codebook's own mean and covariance, then
decoded exactly as a tokenizer holding those codebooks would decode them (its references
computed from the random vectors, with the real codes' usage weights).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from noa_platform.errors import NoaError

#: Separates a codebook's name from a code's index in a code's label: ``summary.c0.r0:3``.
CODE_SEPARATOR = ":"


@dataclass(frozen=True)
class Vocabulary:
    """The selected codebooks of one tokenizer, each code decoded to a feature vector.

    ``prototypes [n_codes, n_columns]`` in raw feature units and ``normalized`` (the same in
    the tokenizer's own normalized units); ``codes`` labels each row ``codebook:index`` and
    ``codebook_of`` gives its codebook's position in ``codebooks``; ``center``/``scale`` are the
    tokenizer's normalization statistics per column (raw = normalized * scale + center).
    """

    label: str
    codebooks: tuple[str, ...]
    sizes: tuple[int, ...]
    codes: tuple[str, ...]
    codebook_of: np.ndarray
    columns: tuple[str, ...]
    families: tuple[str, ...]  # the family of each column
    prototypes: np.ndarray
    normalized: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    vectors: tuple[np.ndarray, ...] = field(repr=False)  # code vectors of each codebook
    decode: Callable[[Sequence[np.ndarray]], np.ndarray] = field(repr=False, compare=False)

    @property
    def n_codes(self) -> int:
        return len(self.codes)

    def with_vectors(self, vectors: Sequence[np.ndarray]) -> Vocabulary:
        """The same codebooks with other code vectors (same shapes), decoded the same way."""
        normalized = self.decode(vectors)
        return Vocabulary(
            label=self.label, codebooks=self.codebooks, sizes=self.sizes, codes=self.codes,
            codebook_of=self.codebook_of, columns=self.columns, families=self.families,
            prototypes=normalized * self.scale + self.center, normalized=normalized,
            center=self.center, scale=self.scale, vectors=tuple(vectors), decode=self.decode,
        )

    def randomized(self, rng: np.random.Generator) -> Vocabulary:
        """Random codebooks of the same sizes: each codebook's vectors drawn from a Gaussian
        with that codebook's mean and (sample) covariance, decoded like the real ones."""
        drawn = []
        for vecs in self.vectors:
            k = vecs.shape[0]
            mean = vecs.mean(axis=0)
            # w ~ N(0, I / (k - 1)) makes mean + w @ (vecs - mean) a Gaussian whose covariance
            # is exactly the codebook's sample covariance (of rank at most k - 1).
            w = rng.standard_normal((k, k)) / np.sqrt(max(k - 1, 1))
            drawn.append(mean + w @ (vecs - mean))
        return self.with_vectors(drawn)


def parse_levels(text: str) -> tuple[int, ...] | None:
    """``"0"``, ``"0,1"`` -> levels; ``"all"`` -> ``None`` (every level)."""
    if text.strip().lower() == "all":
        return None
    try:
        levels = tuple(sorted({int(p) for p in text.split(",") if p.strip()}))
    except ValueError:
        raise NoaError(f"--levels: expected comma-separated integers or 'all', got {text!r}")
    if not levels or min(levels) < 0:
        raise NoaError(f"--levels: expected levels >= 0, got {text!r}")
    return levels


def vocabulary(tokenizer, *, levels: Sequence[int] | None = (0,), label: str = "") -> Vocabulary:
    """The codes of ``tokenizer``'s codebooks at residual ``levels`` (``None``: all), decoded.

    ``tokenizer`` is a fitted :class:`~noa_platform.tokenizer.vqvae.Tokenizer`.
    """
    import torch

    from noa_platform.tokenizer.vqvae import Tokenizer

    if not isinstance(tokenizer, Tokenizer):
        raise NoaError(
            f"alignment reads vqvae tokenizers; {label or 'this tokenizer'} is a "
            f"{type(tokenizer).__name__}"
        )
    depth = tokenizer.config.residual_levels
    wanted = tuple(range(depth)) if levels is None else tuple(levels)
    if any(r >= depth for r in wanted):
        raise NoaError(
            f"--levels: {label or 'the tokenizer'} has residual levels 0..{depth - 1}, "
            f"asked for {list(wanted)}"
        )
    columns, families, center, scale = _columns(tokenizer)

    with torch.no_grad():
        vectors, weights = [], []  # per category, per level
        for codec in tokenizer.codecs:
            cat_vectors, cat_weights = [], []
            for level in codec.quantizer.levels:
                vecs = level.lookup(torch.arange(level.size, device=tokenizer.device))
                usage = getattr(level, "usage", None)
                w = (np.ones(level.size) if usage is None
                     else usage.detach().double().cpu().numpy())
                w = w / w.sum() if w.sum() > 0 else np.full(level.size, 1.0 / level.size)
                cat_vectors.append(vecs.detach().double().cpu().numpy())
                cat_weights.append(w)
            vectors.append(cat_vectors)
            weights.append(cat_weights)

    selected = [(c, r) for c in range(len(tokenizer.codecs)) for r in range(depth) if r in wanted]
    names = tokenizer.codebook_names

    def decode(code_vectors: Sequence[np.ndarray]) -> np.ndarray:
        # The references follow the codebooks given: random codebooks (the null) get the
        # references a tokenizer with those codebooks would have.
        current = [list(v) for v in vectors]
        for (c, r), vecs in zip(selected, code_vectors, strict=True):
            current[c][r] = vecs
        means = [[w @ v for w, v in zip(ws, vs, strict=True)]
                 for ws, vs in zip(weights, current, strict=True)]
        reference = [np.sum(m, axis=0) for m in means]  # each category's reference latent
        rows = []
        for (c, r), vecs in zip(selected, code_vectors, strict=True):
            k = vecs.shape[0]
            latents = [np.repeat(ref[None], k, axis=0) for ref in reference]
            latents[c] = vecs + (reference[c] - means[c][r])
            rows.append(_decode_latents(tokenizer, latents))
        return np.concatenate(rows, axis=0)

    chosen = tuple(vectors[c][r] for c, r in selected)
    normalized = decode(chosen)
    codebooks = tuple(names[c * depth + r] for c, r in selected)
    sizes = tuple(v.shape[0] for v in chosen)
    return Vocabulary(
        label=label,
        codebooks=codebooks,
        sizes=sizes,
        codes=tuple(f"{cb}{CODE_SEPARATOR}{k}" for cb, n in zip(codebooks, sizes) for k in range(n)),
        codebook_of=np.repeat(np.arange(len(sizes)), sizes),
        columns=columns,
        families=families,
        prototypes=normalized * scale + center,
        normalized=normalized,
        center=center,
        scale=scale,
        vectors=chosen,
        decode=decode,
    )


def _columns(tokenizer) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray, np.ndarray]:
    """Column keys, their families and the normalizer's center/scale per column."""
    points = tokenizer.config.temporal_points
    times = np.linspace(0.0, 1.0, points) if points > 1 else np.zeros(1)
    columns, families, center, scale = [], [], [], []
    for family, names in tokenizer.names.items():
        stats = tokenizer.normalizer.stats[family]
        if tokenizer.temporal[family]:
            for t in times:
                columns += [f"{family}:{n}@{t:.4f}" for n in names]
                families += [family] * len(names)
                center.append(stats.center)
                scale.append(stats.scale)
        else:
            columns += [f"{family}:{n}" for n in names]
            families += [family] * len(names)
            center.append(stats.center)
            scale.append(stats.scale)
    return (tuple(columns), tuple(families), np.concatenate(center).astype(np.float64),
            np.concatenate(scale).astype(np.float64))


def _decode_latents(tokenizer, latents: Sequence[np.ndarray]) -> np.ndarray:
    """Per-category latents -> ``[N, n_columns]`` normalized features, in :func:`_columns` order."""
    import torch

    with torch.no_grad():
        out = tokenizer.decode_latents(
            [torch.as_tensor(z, dtype=torch.float32, device=tokenizer.device) for z in latents]
        )
    parts = [out[f].reshape(out[f].shape[0], -1).double().cpu().numpy() for f in tokenizer.names]
    return np.concatenate(parts, axis=1)
