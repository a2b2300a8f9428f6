"""Per-column standardization of feature families, with statistics saved with the tokenizer.

Static families ``[N, D]`` are standardized per column over the N trajectories; temporal
families ``[N, T+1, D]`` per column over all trajectories and frames together, so one frame's
value is comparable with any other frame's (the time profile stays in the normalized data).

Two estimators (``TokenizerConfig.normalization``):

* ``standard`` (default): mean and standard deviation. The normalized training data then has
  unit variance per column, so a reconstruction MSE reads as the fraction of variance left
  unexplained -- the tokenizer's goal ``MSE <= 0.10`` means "90 % of the variance kept".
* ``robust``: median and IQR / 1.349 (the IQR of a unit normal), for heavy-tailed columns whose
  outliers would otherwise set the scale of everything else.

Columns with (nearly) no spread in the training data would divide by ~0. Their scale is set to
``max(1, |center|)`` instead: the training data maps to 0, and data that does vary later (an
MNO rollout) is measured relative to the column's magnitude instead of exploding. Other columns
get a floor of ``1e-2 * max(1, |center|)``: the core's columns are O(1) by construction
(log-amplitudes, energy fractions, correlations), and a column that barely varies in the data
(the top-band energy fraction of well-resolved fields, ~1e-5 ± 1e-6) would otherwise turn a
change of 1e-3 into a thousand standard deviations and dominate every reconstruction error
(measured on the quick reaction-diffusion preset: 1e-6 made MNO rollouts 37x the truth's
reconstruction error, almost all of it in such columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

#: Relative spread below which a column counts as constant.
CONSTANT_TOLERANCE = 1e-7
#: Relative floor of every scale (see the module docstring).
SCALE_FLOOR = 1e-2
#: IQR of the standard normal distribution; IQR / this estimates a standard deviation.
IQR_TO_STD = 1.3489795


@dataclass
class FamilyStats:
    """Center and scale of one family's columns, ``[D]`` each (float32 values)."""

    center: np.ndarray
    scale: np.ndarray
    constant: np.ndarray  # bool [D]: no spread in the training data

    def to_json(self) -> dict[str, Any]:
        return {
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
            "constant": [bool(v) for v in self.constant],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FamilyStats:
        return cls(
            center=np.asarray(data["center"], dtype=np.float32),
            scale=np.asarray(data["scale"], dtype=np.float32),
            constant=np.asarray(data["constant"], dtype=bool),
        )


@dataclass
class Normalizer:
    """Normalization statistics of every family; ``apply`` / ``invert`` are differentiable."""

    method: str
    stats: dict[str, FamilyStats]
    _cache: dict[tuple[str, str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def fit(cls, features: Mapping[str, torch.Tensor], method: str = "standard") -> Normalizer:
        """Statistics from training features (static ``[N, D]`` or temporal ``[N, T+1, D]``)."""
        if method not in ("standard", "robust"):
            raise ValueError(f"normalization must be 'standard' or 'robust', got {method!r}")
        stats = {}
        for family, x in features.items():
            # float64 so that the statistics of large N do not depend on summation order.
            cols = x.detach().to("cpu", torch.float64).reshape(-1, x.shape[-1]).numpy()
            if method == "standard":
                center = cols.mean(axis=0)
                spread = cols.std(axis=0)
            else:
                q25, center, q75 = np.percentile(cols, [25, 50, 75], axis=0)
                spread = (q75 - q25) / IQR_TO_STD
                # A column whose middle half is one value (spikes) still has a std to use.
                spread = np.where(spread > 0, spread, cols.std(axis=0))
            magnitude = np.maximum(1.0, np.abs(center))
            constant = spread <= CONSTANT_TOLERANCE * magnitude
            scale = np.where(constant, magnitude, np.maximum(spread, SCALE_FLOOR * magnitude))
            stats[family] = FamilyStats(
                center=center.astype(np.float32), scale=scale.astype(np.float32), constant=constant
            )
        return cls(method=method, stats=stats)

    def _tensors(self, family: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (family, str(like.device), like.dtype)
        if key not in self._cache:
            s = self.stats[family]
            self._cache[key] = (
                torch.as_tensor(s.center, dtype=like.dtype, device=like.device),
                torch.as_tensor(s.scale, dtype=like.dtype, device=like.device),
            )
        return self._cache[key]

    def apply(self, family: str, x: torch.Tensor) -> torch.Tensor:
        """Raw ``[..., D]`` to normalized ``[..., D]``."""
        center, scale = self._tensors(family, x)
        return (x - center) / scale

    def invert(self, family: str, x: torch.Tensor) -> torch.Tensor:
        """Normalized ``[..., D]`` back to raw ``[..., D]``."""
        center, scale = self._tensors(family, x)
        return x * scale + center

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "families": {f: s.to_json() for f, s in self.stats.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Normalizer:
        return cls(
            method=data["method"],
            stats={f: FamilyStats.from_json(s) for f, s in data["families"].items()},
        )
