"""The losses the MNO trainer composes: ``L = Σ weight · loss(window)``.

Each loss is an object with a ``name``, a ``weight`` and ``__call__(window) -> scalar``; the
trainer builds the list from the config (:func:`losses_from_config`) and sums them, so a new
term is a new class here, not an edit of the training loop (the shape of neuraloperator's
trainer, which takes its losses as arguments).

Every alignment term is zero on the CNO truth: it compares the MNO window with the CNO window
*over the same frames*, through the frozen tokenizer. Earlier versions compared the features
of a 4- or 8-frame prefix with codes fitted on 32-frame trajectories, which the truth itself
did not reach (2.59 for the CNO at 4 frames), so its decrease said nothing about alignment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

FeatureFn = Callable[[Tensor], Mapping[str, Tensor]]


@dataclass
class Window:
    """One training window: MNO and CNO frames at the same times, frame 0 the window's input.

    ``pred`` and ``true`` are ``[B, W+1, C, H, W]`` (``pred[:, 0]`` is the state the rollout
    started from: the CNO frame, or the model's own state after pushforward, plus any input
    noise); ``latents`` maps a window step to the operator's bottleneck at that step and
    ``std`` is the per-channel field std ``[1, C, 1, 1]``.
    """

    pred: Tensor
    true: Tensor
    std: Tensor
    latents: dict[int, Tensor]


class TrajectoryLoss:
    """``L_traj``: mean squared error of the window's MNO frames, per-channel normalized.

    ``per_sample = s > 0`` divides each sample's and channel's squared error by that sample's
    own spatial variance over the window's true frames, floored at ``s`` times the channel's
    dataset variance: samples whose patterns are faint (Gray–Scott late in its horizon, a
    tenth of the FitzHugh–Nagumo spread) then count as much as bright ones, as in a
    per-sample VRMSE; the floor keeps uniform samples from dividing by ~0.
    """

    name = "traj"

    def __init__(self, weight: float = 1.0, per_sample: float = 0.0):
        self.weight, self.per_sample = weight, per_sample

    def __call__(self, w: Window) -> Tensor:
        err = ((w.pred[:, 1:] - w.true[:, 1:]) / w.std.unsqueeze(1)) ** 2
        if not self.per_sample:
            return torch.mean(err)
        true = w.true[:, 1:] / w.std.unsqueeze(1)              # [B, W, C, H, W'] in stds
        spread = true.var(dim=(-2, -1)).mean(dim=1)            # [B, C]
        scale = spread.clamp_min(self.per_sample)[:, None, :, None, None]
        return torch.mean(err / scale)


class LatentDistanceLoss:
    """``L_commit``: squared distance between the tokenizer's (pre-quantization) latents of the
    MNO window's features and of the CNO window's features, per latent dimension.

    Zero exactly when the MNO reproduces the CNO frames; its gradient pulls the rollout towards
    states the tokenizer reads as the truth's behaviour.
    """

    name = "commit"

    def __init__(self, tokenizer: Any, feature_fn: FeatureFn, weight: float):
        self.tokenizer, self.feature_fn, self.weight = tokenizer, feature_fn, weight

    def __call__(self, w: Window) -> Tensor:
        with torch.no_grad():
            goal = self.tokenizer.latent_vector(self.feature_fn(w.true), check=False)
        z = self.tokenizer.latent_vector(self.feature_fn(w.pred), check=False)
        return torch.mean((z - goal) ** 2)


class ProjectedLatentLoss:
    """``L_latent``: the operator's bottleneck, projected (``projector``) and averaged over the
    sampled window steps, against the tokenizer latent of the CNO window's features.

    Its floor is what the projector reaches from the bottleneck of the operator fed the CNO
    frames themselves; the report gives that value beside the rollout's.
    """

    name = "latent"

    def __init__(self, tokenizer: Any, feature_fn: FeatureFn, projector: nn.Module,
                 weight: float):
        self.tokenizer, self.feature_fn = tokenizer, feature_fn
        self.projector, self.weight = projector, weight

    def __call__(self, w: Window) -> Tensor:
        with torch.no_grad():
            goal = self.tokenizer.latent_vector(self.feature_fn(w.true), check=False)
        projected = torch.stack([self.projector(z) for z in w.latents.values()]).mean(dim=0)
        return torch.mean((projected - goal) ** 2)


def total(losses: list[Any], window: Window) -> tuple[Tensor, dict[str, float]]:
    """``Σ weight · loss(window)`` and each term's value (unweighted) for the log."""
    parts, out = {}, None
    for loss in losses:
        value = loss(window)
        parts[loss.name] = float(value.detach())
        out = loss.weight * value if out is None else out + loss.weight * value
    assert out is not None, "no loss configured"
    return out, parts
