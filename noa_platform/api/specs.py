"""What the non-domain hooks hand out: architectures, feature families, tokenizers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the contract module stays importable without loading torch
    import torch


@dataclass(frozen=True)
class ArchitectureSpec:
    """A learned-operator architecture: ``factory(**config) -> nn.Module``.

    The module maps ``(u [B, C, H, W], theta_unit [B, P])`` to the next frame ``[B, C, H, W]``.
    Constructor keywords: ``channels``, ``n_params``, ``resolution`` plus the architecture's own.
    """

    name: str
    factory: Callable[..., torch.nn.Module]
    description: str = ""


@dataclass(frozen=True)
class FeatureExtractorSpec:
    """A feature family: ``extract(traj [B, T+1, C, H, W]) -> [B, D]`` (or ``[B, T+1, D]``).

    ``names`` labels the ``D`` columns; ``temporal`` says the output keeps the time axis.
    ``version`` names the definition: change it whenever the values change under the same
    names, so that datasets holding the old values recompute them (``noa features``) instead
    of feeding a tokenizer stale columns.
    """

    family: str
    extract: Callable[[torch.Tensor], torch.Tensor]
    names: tuple[str, ...]
    temporal: bool = False
    description: str = ""
    version: str = "1"


@dataclass(frozen=True)
class TokenizerSpec:
    """A tokenizer family: ``factory(**config)`` builds an untrained tokenizer."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
