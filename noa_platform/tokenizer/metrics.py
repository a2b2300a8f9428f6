"""Quality of a tokenizer on a dataset: reconstruction, code usage, perplexity, entropy.

* Reconstruction error: MSE between decoded and input features, both *normalized* (unit
  variance per column on the training data with the default normalization, so 0.10 means 10 %
  of the variance lost), through the full quantization. Per category; per family and overall
  it is weighted by columns, each column counting once (a temporal column's error is its mean
  over the time profile), so the wide time profile does not outweigh the static columns.
* Utilization of a codebook: the fraction of its codes used at least once on the dataset.
* Perplexity: ``exp(H)`` of the empirical code distribution, the number of equally used codes
  that would give the same entropy; compare with the codebook size.
* Token entropy in bits, per codebook; the mean and sum over codebooks; and the entropy of
  whole token sequences (at most ``log2 N``: how many trajectories the tokens tell apart).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from noa_platform.atomic import atomic_path

if TYPE_CHECKING:
    from noa_platform.tokenizer.vqvae import Tokenizer


def _entropy(counts: torch.Tensor) -> float:
    """Natural-log entropy of a histogram."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def code_usage(
    tokens: torch.Tensor, sizes: Sequence[int], names: Sequence[str]
) -> list[dict[str, Any]]:
    """Per codebook: counts, utilization, perplexity (and its ratio to the size), entropy."""
    out = []
    tokens = tokens.cpu()
    for j, (size, name) in enumerate(zip(sizes, names, strict=True)):
        counts = torch.bincount(tokens[:, j], minlength=size)
        h = _entropy(counts)
        out.append(
            {
                "name": name,
                "size": int(size),
                "used": int((counts > 0).sum()),
                "utilization": float((counts > 0).sum()) / size,
                "perplexity": math.exp(h),
                "perplexity_ratio": math.exp(h) / size,
                "entropy_bits": h / math.log(2),
                "counts": [int(c) for c in counts],
            }
        )
    return out


def sequence_entropy_bits(tokens: torch.Tensor) -> float:
    """Entropy (bits) of the empirical distribution of whole token rows."""
    _, counts = torch.unique(tokens.cpu(), dim=0, return_counts=True)
    return _entropy(counts) / math.log(2)


def reconstruction_errors(
    tokenizer: Tokenizer,
    features: Mapping[str, torch.Tensor],
    names: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Normalized-feature MSE per category, per family and overall (column-weighted), and
    the overall error of each sample (``per_sample``), so that a mean driven by a few
    samples far outside the training range can be told from a general loss."""
    categories = []
    family_sum: dict[str, float] = {}
    family_cols: dict[str, int] = {}
    sample_sum: torch.Tensor | None = None
    for category, (decoded, target) in zip(
        tokenizer.categories, tokenizer.reconstruct(features, names), strict=True
    ):
        sq = (decoded - target) ** 2
        mse = float(sq.mean())
        width = len(category.columns)
        per = sq.reshape(sq.shape[0], -1).mean(dim=1).double() * width
        sample_sum = per if sample_sum is None else sample_sum + per
        categories.append(
            {
                "name": category.name,
                "family": category.family,
                "temporal": category.temporal,
                "columns": list(category.names),
                "mse": mse,
            }
        )
        family_sum[category.family] = family_sum.get(category.family, 0.0) + mse * width
        family_cols[category.family] = family_cols.get(category.family, 0) + width
    families = {f: family_sum[f] / family_cols[f] for f in family_sum}
    overall = sum(family_sum.values()) / sum(family_cols.values())
    assert sample_sum is not None, "a tokenizer has at least one category"
    per_sample = (sample_sum / sum(family_cols.values())).cpu().tolist()
    return {"reconstruction_mse": overall, "family_mse": families, "categories": categories,
            "per_sample": per_sample}


def column_errors(
    tokenizer: Tokenizer,
    features: Mapping[str, torch.Tensor],
    rows: Sequence[int],
    names: Mapping[str, Sequence[str]] | None = None,
    top: int = 5,
) -> list[list[dict[str, Any]]]:
    """For each sample in ``rows``, the ``top`` feature columns with the largest squared
    normalized reconstruction error (a temporal column: the mean over its time profile), with
    the normalized value the tokenizer was given (a temporal column: its largest magnitude).

    The per-sample error of :func:`reconstruction_errors` is the mean of these over all
    columns, so a few columns far outside the training range show up here by name: which
    behaviour the tokenizer could not encode.
    """
    # Only the rows asked for go through the tokenizer (each sample is encoded on its own).
    index = torch.as_tensor(list(rows), dtype=torch.long)
    chosen = {family: x[index.to(x.device)] for family, x in features.items()}
    per_row: list[list[tuple[float, str, float]]] = [[] for _ in rows]
    for category, (decoded, target) in zip(
        tokenizer.categories, tokenizer.reconstruct(chosen, names), strict=True
    ):
        sq = (decoded - target) ** 2
        given = target
        if sq.ndim == 3:                                  # [rows, profile points, columns]
            sq = sq.mean(dim=1)
            given = given.gather(1, given.abs().argmax(dim=1, keepdim=True)).squeeze(1)
        for r in range(len(rows)):
            per_row[r] += [(float(sq[r, j]), name, float(given[r, j]))
                           for j, name in enumerate(category.names)]
    return [[{"column": name, "error": err, "normalized_value": value}
             for err, name, value in sorted(cols, key=lambda c: -c[0])[:top]]
            for cols in per_row]


def report(
    tokenizer: Tokenizer,
    features: Mapping[str, torch.Tensor],
    names: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Everything above for one dataset, as a JSON-able dict."""
    tokens = tokenizer.tokenize(features, names)
    usage = code_usage(tokens, tokenizer.codebook_sizes, tokenizer.codebook_names)
    recon = reconstruction_errors(tokenizer, features, names)
    with torch.no_grad():
        commitment = float(tokenizer.commitment_loss(features, names))
    entropies = [c["entropy_bits"] for c in usage]
    return {
        "n_samples": int(tokens.shape[0]),
        "n_codebooks": len(usage),
        **recon,
        "commitment_loss": commitment,
        "codebooks": usage,
        "min_utilization": min(c["utilization"] for c in usage),
        "mean_utilization": sum(c["utilization"] for c in usage) / len(usage),
        "min_perplexity_ratio": min(c["perplexity_ratio"] for c in usage),
        "token_entropy_bits": sum(entropies) / len(entropies),
        "token_entropy_bits_total": sum(entropies),
        "sequence_entropy_bits": sequence_entropy_bits(tokens),
        "max_sequence_entropy_bits": math.log2(tokens.shape[0]),
    }


def plot_report(rep: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a PNG: code-usage histogram per codebook, then reconstruction MSE per category.

    Drawn on a bare :class:`matplotlib.figure.Figure` (Agg canvas), never through pyplot, so it
    neither needs a display nor changes the backend of a caller that uses pyplot itself.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    codebooks = rep["codebooks"]
    cols = min(6, max(1, len(codebooks)))
    rows = math.ceil(len(codebooks) / cols)
    fig = Figure(figsize=(2.6 * cols, 2.0 * rows + 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [1.4])
    for i, cb in enumerate(codebooks):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.bar(range(cb["size"]), cb["counts"], color="tab:blue", width=0.9)
        ax.set_title(
            f"{cb['name']}\nused {cb['used']}/{cb['size']}, ppl {cb['perplexity']:.1f}", fontsize=8
        )
        ax.tick_params(labelsize=6)
    ax = fig.add_subplot(grid[rows, :])
    cats = rep["categories"]
    ax.bar([c["name"] for c in cats], [c["mse"] for c in cats], color="tab:orange")
    ax.axhline(
        rep["reconstruction_mse"],
        color="black",
        lw=1,
        ls="--",
        label=f"overall {rep['reconstruction_mse']:.3f}",
    )
    ax.set_ylabel("MSE (normalized features)")
    ax.set_title("reconstruction error per category", fontsize=9)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.legend(fontsize=7)
    fig.suptitle(
        f"tokenizer on {rep['n_samples']} samples: min utilization {rep['min_utilization']:.2f}, "
        f"min perplexity/size {rep['min_perplexity_ratio']:.2f}",
        fontsize=10,
    )
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return out
