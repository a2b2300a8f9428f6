"""Whether MNO rollouts read like CNO rollouts: in tokens, and in the tokenizer's latent space.

These define the values behind the ``token_agreement_*`` and ``latent_cosine``
criteria of :mod:`noa_platform.evaluation.verdicts`, so that the numbers the trainer reports
and the thresholds they are judged by mean the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def token_agreement(tokens_mno: Tensor, tokens_cno: Tensor,
                    names: Sequence[str] | None = None) -> dict[str, object]:
    """Fraction of tokens that are equal for MNO and CNO rollouts of the same (u0, θ).

    ``tokens_*: [N, K]`` integer indices, one per codebook, row n of both from the same
    (u0, θ). Returns ``{"per_codebook": {name: fraction}, "mean": fraction of all N·K tokens,
    "all_codebooks": fraction of rows equal in every codebook}``; the report's per-codebook
    picture. Names default to ``codebook0 .. codebook{K-1}``; the judged numbers come from
    :func:`token_agreement_groups`.
    """
    if tokens_mno.shape != tokens_cno.shape or tokens_mno.ndim != 2:
        raise ValueError(
            "tokens must both be [N, K], "
            f"got {tuple(tokens_mno.shape)} and {tuple(tokens_cno.shape)}"
        )
    n, k = tokens_mno.shape
    if names is None:
        names = [f"codebook{j}" for j in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} codebook names for {k} codebooks")
    if n == 0:
        raise ValueError("token agreement needs at least one trajectory")
    equal = tokens_mno.cpu() == tokens_cno.cpu()
    per_codebook = equal.double().mean(dim=0)
    return {
        "per_codebook": {name: float(v) for name, v in zip(names, per_codebook)},
        "mean": float(equal.double().mean()),
        "all_codebooks": float(equal.all(dim=1).double().mean()),
    }


def is_dynamic(codebook: str) -> bool:
    """Whether a codebook's token can depend on the dynamics: every family but ``initial``
    (which reads u0 only, so any forecast from the same u0 agrees on it by construction)."""
    return not codebook.startswith("initial.")


def is_coarse(codebook: str) -> bool:
    """The first residual level of a category (``*.r0``): the coarse token, which noise in the
    features should not flip; finer levels quantize residuals and flip on small changes."""
    return codebook.endswith(".r0")


def token_agreement_groups(tokens_a: Tensor, tokens_b: Tensor,
                           names: Sequence[str]) -> dict[str, float]:
    """Token agreement over codebook groups: ``dynamic`` (all levels of the codebooks that
    depend on the dynamics), ``dynamic_coarse`` (their level 0) and ``initial`` (the u0-only
    codebooks, reported apart). A group with no codebook is nan."""
    groups = {
        "dynamic": [is_dynamic(n) for n in names],
        "dynamic_coarse": [is_dynamic(n) and is_coarse(n) for n in names],
        "initial": [not is_dynamic(n) for n in names],
    }
    equal = (tokens_a.cpu() == tokens_b.cpu()).double()
    out = {}
    for group, mask in groups.items():
        cols = torch.tensor(mask, dtype=torch.bool)
        out[group] = float(equal[:, cols].mean()) if bool(cols.any()) else math.nan
    return out


def latent_cosine(latent_mno: Tensor, latent_cno: Tensor) -> float:
    """Mean cosine similarity between paired latents ``[..., D]`` (e.g. ``[N, T, D]``).

    1 means the MNO's projected latents point where the CNO's do. A pair of zero vectors
    counts as 1 (both say nothing, alike) and a zero vector against a non-zero one as 0.
    """
    if latent_mno.shape != latent_cno.shape:
        raise ValueError(
            f"latents differ in shape: {tuple(latent_mno.shape)} vs {tuple(latent_cno.shape)}"
        )
    a = latent_mno.to(torch.float64).reshape(-1, latent_mno.shape[-1])
    b = latent_cno.to(torch.float64).reshape(-1, latent_cno.shape[-1])
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = (a * b).sum(dim=1) / (na * nb)
    both_zero = ((na == 0) & (nb == 0)).to(cos.dtype)
    cos = torch.where((na == 0) | (nb == 0), both_zero, cos)
    return float(cos.clamp(-1.0, 1.0).mean())
