"""Tokenizer transfer: the source's tokenizer reading the target's CNO features, against the
target's own tokenizer on the same features.

Which columns can be read (docs/transfer.md): a tokenizer reads the feature families and
columns it was fitted on, by name. The source's tokenizer can read the target's data when the
target stores every family it reads, with every column it reads (extra target columns are
ignored, columns are taken by name in the tokenizer's order) and, where the tokenizer's
provenance records them, the same feature-definition versions. Otherwise it cannot be read,
and the result says which family or column is missing instead of substituting anything. The
core's families pool every statistic over channels, so their columns are the same for every
domain; only plugin-defined families can differ.

Reconstruction is compared in units both tokenizers share: each tokenizer's own error
(the core's ``reconstruction_mse``) is measured on features normalized by *its* training data,
so the source's number on target data would be in the source's units. Here both decodings are
mapped back to raw features and each column's squared error is divided by that column's
variance over the target split (temporal columns: over samples and the time profile), then
averaged over the columns both tokenizers read, each column once: 0 is perfect, 1 is as bad as
predicting the column's mean. Columns constant over the split (standard deviation at most
:data:`CONSTANT_STD`) have no scale and are left out (counted in ``constant_columns``). A few
columns far outside what a tokenizer has seen can dominate the mean, so the median over
columns is reported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noa_platform.data.store import DatasetFile

#: A column whose standard deviation over the split is at or below this counts as constant.
#: Feature values are of order 0.01-100 by design (log-amplitudes, fractions, wavenumbers in
#: cycles per domain), so 1e-6 is rounding noise: a wave's conserved mean drifts by ~1e-9.
CONSTANT_STD = 1e-6


def readable_columns(tokenizer: Any, dataset: DatasetFile,
                     provenance: Mapping[str, Any] | None = None) -> str:
    """``""`` when ``tokenizer`` can read ``dataset``'s stored features, else why not."""
    stored = set(dataset.feature_families())
    versions = (provenance or {}).get("feature_versions", {})
    for family, cols in tokenizer.names.items():
        if family not in stored:
            return f"the target dataset stores no feature family {family!r}"
        _, have = dataset.features(family)
        missing = [c for c in cols if c not in set(have)]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            return (f"the target's feature family {family!r} lacks column(s) {shown}{more} "
                    "that the tokenizer reads")
        if family in versions and versions[family] != dataset.feature_version(family):
            return (f"feature family {family!r} has definition version "
                    f"{dataset.feature_version(family)!r} in the target dataset, the tokenizer "
                    f"was fitted on version {versions[family]!r}")
    return ""


def split_features(tokenizer: Any, dataset: DatasetFile, split: str
                   ) -> dict[str, torch.Tensor]:
    """The columns ``tokenizer`` reads, by name and in its order, of one split's samples."""
    idx = dataset.split(split)
    out = {}
    for family, cols in tokenizer.names.items():
        arr, have = dataset.features(family)
        where = {c: i for i, c in enumerate(have)}
        out[family] = torch.from_numpy(np.ascontiguousarray(
            arr[idx][..., [where[c] for c in cols]], dtype=np.float32))
    return out


def column_errors(tokenizer: Any, features: Mapping[str, torch.Tensor]
                  ) -> dict[str, tuple[float, float]]:
    """``"family/column" -> (mean squared error, variance)`` of the decoded raw features
    through the full quantization; temporal columns over their time profile."""
    from noa_platform.tokenizer.networks import resample_time

    decoded = tokenizer.decode(tokenizer.tokenize(features, tokenizer.names), normalized=False)
    out = {}
    for family, cols in tokenizer.names.items():
        x = features[family].to(torch.float64)
        if tokenizer.temporal[family]:
            x = resample_time(x, decoded[family].shape[1])
        d = decoded[family].to(torch.float64).cpu()
        reduce = tuple(range(x.ndim - 1))
        mse = ((d - x) ** 2).mean(dim=reduce)
        var = x.var(dim=reduce, unbiased=False)
        for j, col in enumerate(cols):
            out[f"{family}/{col}"] = (float(mse[j]), float(var[j]))
    return out


def _usage(tokenizer: Any, features: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    from noa_platform.tokenizer.metrics import code_usage, report, sequence_entropy_bits

    tokens = tokenizer.tokenize(features, tokenizer.names)
    usage = code_usage(tokens, tokenizer.codebook_sizes, tokenizer.codebook_names)
    own = report(tokenizer, features, tokenizer.names)
    return {
        "n_codebooks": len(usage),
        "codebook_sizes": [c["size"] for c in usage],
        "min_utilization": min(c["utilization"] for c in usage),
        "mean_utilization": float(np.mean([c["utilization"] for c in usage])),
        "mean_perplexity_ratio": float(np.mean([c["perplexity_ratio"] for c in usage])),
        "sequence_entropy_bits": sequence_entropy_bits(tokens),
        "reconstruction_mse_own_units": own["reconstruction_mse"],
    }


def shared_error(errors: Mapping[str, tuple[float, float]], columns: Sequence[str]
                 ) -> tuple[float, float, int]:
    """Mean and median of ``mse / variance`` over ``columns`` (constant ones skipped) and how
    many were skipped."""
    ratios, constant = [], 0
    for col in columns:
        mse, var = errors[col]
        if var <= CONSTANT_STD**2:
            constant += 1
            continue
        ratios.append(mse / var)
    if not ratios:
        return float("nan"), float("nan"), constant
    return float(np.mean(ratios)), float(np.median(ratios)), constant


def load_provenance(tokenizer_dir: Path) -> dict[str, Any] | None:
    path = Path(tokenizer_dir) / "provenance.json"
    return json.loads(path.read_text()) if path.is_file() else None


def tokenizer_transfer(source: Any, target: Any, dataset: DatasetFile, *, split: str = "test",
                       source_provenance: Mapping[str, Any] | None = None,
                       target_provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Both tokenizers on ``dataset``'s ``split``; see the module docstring for the numbers."""
    result: dict[str, Any] = {"split": split, "n_samples": len(dataset.split(split))}
    why_target = readable_columns(target, dataset, target_provenance)
    if why_target:  # the target's own tokenizer should always read its own data
        return {**result, "readable": False, "reason": f"target tokenizer: {why_target}"}
    why = readable_columns(source, dataset, source_provenance)
    if why:
        return {**result, "readable": False, "reason": f"source tokenizer: {why}"}
    feats = {"source": split_features(source, dataset, split),
             "target": split_features(target, dataset, split)}
    errors = {"source": column_errors(source, feats["source"]),
              "target": column_errors(target, feats["target"])}
    shared = [c for c in errors["source"] if c in errors["target"]]
    if not shared:
        return {**result, "readable": False,
                "reason": "the two tokenizers read no feature column in common"}
    for who, tok in (("source", source), ("target", target)):
        mean, median, constant = shared_error(errors[who], shared)
        result[who] = {"reconstruction_mse": mean, "reconstruction_median": median,
                       **_usage(tok, feats[who])}
    result.update({
        "readable": True, "reason": "", "shared_columns": len(shared),
        "constant_columns": constant,
        "reconstruction_ratio": result["source"]["reconstruction_mse"]
        / result["target"]["reconstruction_mse"],
        "reconstruction_median_ratio": result["source"]["reconstruction_median"]
        / result["target"]["reconstruction_median"],
    })
    return result
