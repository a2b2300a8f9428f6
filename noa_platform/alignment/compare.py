"""Aligning two fitted tokenizers with one or more methods, each score beside its null."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from noa_platform.alignment.codebooks import vocabulary
from noa_platform.alignment.null import DEFAULT_DRAWS, null_distribution
from noa_platform.alignment.result import MethodResult
from noa_platform.errors import NoaError

METHODS = ("prototypes", "geometry", "cooccurrence")


@dataclass
class Alignment:
    """Two tokenizers' alignment: one :class:`MethodResult` per method run."""

    a: str
    b: str
    levels: tuple[int, ...] | None
    n_null: int
    seed: int
    results: dict[str, MethodResult] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``method -> score -> {value, better, null_mean, null_std, null_n}``."""
        return {m: r.to_json()["scores"] for m, r in self.results.items()}

    def to_json(self, *, max_pairs: int | None = None) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "levels": "all" if self.levels is None else list(self.levels),
            "null_draws": self.n_null,
            "seed": self.seed,
            "methods": {m: r.to_json(max_pairs=max_pairs) for m, r in self.results.items()},
        }


@dataclass
class FeatureSource:
    """Trajectory features both tokenizers read for co-occurrence: ``family -> [N, ...]``."""

    name: str
    features: Mapping[str, Any]
    names: Mapping[str, Sequence[str]]


def align(
    tok_a,
    tok_b,
    *,
    methods: Sequence[str] = METHODS,
    levels: Sequence[int] | None = (0,),
    sources: Sequence[FeatureSource] = (),
    n_null: int = DEFAULT_DRAWS,
    seed: int = 0,
    labels: tuple[str, str] = ("A", "B"),
) -> Alignment:
    """Run ``methods`` on two fitted tokenizers, over the codebooks of residual ``levels``.

    Co-occurrence needs ``sources``: features of trajectories both tokenizers can read.
    """
    from noa_platform.alignment.cooccurrence import align_cooccurrence, cooccurrence_null_draw
    from noa_platform.alignment.geometry import align_geometry, geometry_null_draw
    from noa_platform.alignment.prototypes import align_prototypes, prototype_null_draw

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise NoaError(f"--method: unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    out = Alignment(a=labels[0], b=labels[1], levels=None if levels is None else tuple(levels),
                    n_null=n_null, seed=seed)
    if "prototypes" in methods or "geometry" in methods:
        va = vocabulary(tok_a, levels=levels, label=labels[0])
        vb = vocabulary(tok_b, levels=levels, label=labels[1])
    if "prototypes" in methods:
        result = align_prototypes(va, vb)
        result.null = null_distribution(lambda rng: prototype_null_draw(va, vb, rng), n_null, seed)
        out.results["prototypes"] = result
    if "geometry" in methods:
        result = align_geometry(va, vb)
        result.null = null_distribution(lambda rng: geometry_null_draw(va, vb, rng), n_null, seed)
        out.results["geometry"] = result
    if "cooccurrence" in methods:
        if not sources:
            raise NoaError(
                "co-occurrence needs trajectories both tokenizers read: register a dataset for "
                f"{labels[0]} or {labels[1]}, or give --dataset"
            )
        ta, tb, names_a, names_b, owner = _tokens(tok_a, tok_b, sources, levels, labels)
        result = align_cooccurrence(ta, tb, names_a, names_b, sources=[s.name for s in sources])
        result.null = null_distribution(lambda rng: cooccurrence_null_draw(ta, tb, rng), n_null,
                                        seed)
        if len(sources) > 1:
            # Pooled over sources, part of the agreement is both tokenizers telling the
            # sources apart (two domains' trajectories); each source alone shows the rest.
            result.info["per_source"] = {
                s.name: _source_scores(ta[owner == i], tb[owner == i], n_null, seed)
                for i, s in enumerate(sources)
            }
        out.results["cooccurrence"] = result
    return out


def _tokens(tok_a, tok_b, sources: Sequence[FeatureSource], levels, labels):
    """Both tokenizers' tokens of every source's trajectories, on the selected codebooks."""
    import torch

    parts_a, parts_b = [], []
    for source in sources:
        for tok, label, parts in ((tok_a, labels[0], parts_a), (tok_b, labels[1], parts_b)):
            missing = [f for f in tok.names if f not in source.features]
            if missing:
                raise NoaError(f"{source.name}: no feature family {missing[0]!r}, which "
                               f"{label}'s tokenizer reads")
            feats = {f: torch.as_tensor(np.asarray(source.features[f]), dtype=torch.float32)
                     for f in tok.names}
            names = {f: tuple(source.names[f]) for f in tok.names}
            parts.append(tok.tokenize(feats, names).cpu().numpy())
    ta, tb = np.concatenate(parts_a), np.concatenate(parts_b)
    owner = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts_a)])
    keep_a = _level_columns(tok_a, levels)
    keep_b = _level_columns(tok_b, levels)
    return (ta[:, keep_a], tb[:, keep_b], [tok_a.codebook_names[i] for i in keep_a],
            [tok_b.codebook_names[i] for i in keep_b], owner)


def _source_scores(ta, tb, n_null: int, seed: int) -> dict[str, dict[str, float]]:
    """Co-occurrence summary scores of one source's trajectories, each beside its null."""
    from noa_platform.alignment.cooccurrence import (
        BETTER,
        cooccurrence_null_draw,
        cooccurrence_scores,
    )

    scores = cooccurrence_scores(ta, tb)[0]
    null = null_distribution(lambda rng: cooccurrence_null_draw(ta, tb, rng), n_null, seed)
    return {name: {"value": v, "better": BETTER[name], **null[name]}
            for name, v in scores.items()}


def _level_columns(tok, levels) -> list[int]:
    depth = tok.config.residual_levels
    if levels is not None and any(r >= depth for r in levels):
        raise NoaError(f"--levels: a tokenizer has residual levels 0..{depth - 1}, asked for "
                       f"{list(levels)}")
    return [i for i in range(tok.n_codebooks) if levels is None or i % depth in levels]
