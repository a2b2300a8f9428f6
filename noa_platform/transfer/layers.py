"""Which of a source MNO's layers a target-shaped copy of its architecture can keep.

The rule (docs/transfer.md): the target model is the source's architecture config built for
the target domain's channel count and θ dimension, freshly initialised. Its state is grouped
by *layer*, the module that directly owns a set of parameters and buffers (``lift``,
``theta_embed.net.0``, ``bottleneck.1.filter``, ...). A layer takes the source's tensors when
every one of its tensors exists in the source under the same name and with the same shape;
otherwise the whole layer keeps its fresh initialisation. With the same config, the only
tensors whose shapes can differ are those sized by the channel count or the θ dimension, so
exactly the layers that depend on them are re-initialised (for the ``u-afno``: ``lift`` and
``head`` when the channels differ, the θ embedding's first linear layer when θ does), and a
layer is re-initialised as a whole so that a weight never meets a bias trained for another
shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerTransfer:
    """What :func:`transfer_layers` did: layer names kept from the source and re-initialised
    ones with the reason (the first tensor whose shape differs or that the source lacks)."""

    kept: tuple[str, ...]
    reinitialised: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {"kept": list(self.kept), "reinitialised": dict(self.reinitialised)}


def _layer(key: str) -> str:
    return key.rpartition(".")[0]


def transfer_layers(source_state: Mapping[str, torch.Tensor], target: nn.Module
                    ) -> LayerTransfer:
    """Copy the source's tensors into ``target`` layer by layer (see the module docstring).

    ``source_state`` is the source architecture's state dict (not the wrapper's: the field
    statistics belong to the target data). ``target`` is modified in place.
    """
    state = target.state_dict()
    layers: dict[str, list[str]] = {}
    for key in state:
        layers.setdefault(_layer(key), []).append(key)
    kept, reinit = [], {}
    new_state = dict(state)
    for layer, keys in layers.items():
        reason = ""
        for key in keys:
            if key not in source_state:
                reason = f"{key} not in the source"
                break
            src, dst = tuple(source_state[key].shape), tuple(state[key].shape)
            if src != dst:
                reason = f"{key} is {list(src)} in the source, {list(dst)} here"
                break
        if reason:
            reinit[layer or "(root)"] = reason
            continue
        kept.append(layer or "(root)")
        for key in keys:
            new_state[key] = source_state[key].detach().clone().to(dtype=state[key].dtype)
    target.load_state_dict(new_state)
    return LayerTransfer(tuple(kept), reinit)
