"""An exponential moving average of the operator's weights (``training.ema_decay``).

Validation, ``best.pt`` and everything downstream (the report, the registry) use the average;
the optimizer keeps training the raw weights, so the training trajectory is the one without
it. Early updates are averaged faster, at ``min(decay, (1 + n) / (10 + n))`` after ``n``
updates, so that the average is not dominated by the initial weights in short runs (the
warm-up of TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``). Buffers (the
normalization statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The averaged copy of ``model`` (``self.model``), updated after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)

    def rate(self) -> float:
        """The decay applied at the current update."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - self.rate()
        for avg, p in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(p.detach(), weight)
        for avg, b in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(b)
