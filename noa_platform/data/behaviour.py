"""What the stored trajectories do by their last frame: decay to uniform, settle, or move.

A dataset in which most samples decay to a uniform state teaches a learned operator little
(REVIEW: 68–92 % of the first Gray–Scott samples did), so ``noa data info`` reports the mix,
per value of every categorical parameter. The classes, from the last two frames ``u_{T-1}``,
``u_T`` of each sample:

* **uniform** — every channel's spatial standard deviation at ``T`` is at most
  :data:`UNIFORM_RTOL` times that channel's standard deviation over the whole dataset (so the
  rule does not depend on the units of a field);
* **stationary** — not uniform, and the last frame changed by at most :data:`STATIONARY_RTOL`
  of its own spatial variation (``‖u_T − u_{T−1}‖ ≤ rtol·‖u_T − mean(u_T)‖``);
* **moving** — everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

UNIFORM_RTOL = 1e-3
STATIONARY_RTOL = 1e-3
CLASSES = ("uniform", "stationary", "moving")


def classify(last_two: np.ndarray, channel_scale: np.ndarray) -> np.ndarray:
    """Class index (into :data:`CLASSES`) per sample of ``last_two`` ``[N, 2, C, *space]``.

    ``channel_scale`` ``[C]`` is each channel's standard deviation over the dataset.
    """
    x = np.asarray(last_two, dtype=np.float64)
    if x.ndim < 4 or x.shape[1] != 2:
        raise ValueError(f"need the last two frames [N, 2, C, *space], got {x.shape}")
    prev, last = x[:, 0], x[:, 1]
    flat = last.reshape(*last.shape[:2], -1)
    std = flat.std(axis=-1)  # [N, C]
    scale = np.where(np.asarray(channel_scale) > 0, channel_scale, 1.0)
    uniform = np.all(std <= UNIFORM_RTOL * scale, axis=1)
    change = np.sqrt(((last - prev) ** 2).reshape(len(x), -1).sum(axis=1))
    spread = np.sqrt(((flat - flat.mean(axis=-1, keepdims=True)) ** 2).reshape(len(x), -1)
                     .sum(axis=1))
    stationary = ~uniform & (change <= STATIONARY_RTOL * spread)
    return np.where(uniform, 0, np.where(stationary, 1, 2))


def behaviour_mix(classes: np.ndarray, values: np.ndarray,
                  parameters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Fractions of each class overall and per value of every categorical parameter.

    ``parameters`` is the dataset's stored parameter description (``ParameterSpace.describe``).
    """
    def fractions(mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        out: dict[str, Any] = {"samples": n}
        for i, name in enumerate(CLASSES):
            out[name] = float((classes[mask] == i).mean()) if n else 0.0
        return out

    mix: dict[str, Any] = {"all": fractions(np.ones(len(classes), dtype=bool))}
    for j, p in enumerate(parameters):
        if p.get("kind") != "categorical":
            continue
        mix[p["name"]] = {choice: fractions(values[:, j] == k)
                          for k, choice in enumerate(p["choices"])}
    return mix
