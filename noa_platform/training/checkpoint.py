"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is a ``torch.save`` of plain containers, numbers, strings and tensors only, read
back with ``torch.load(weights_only=True)``, which refuses anything else. It holds what exact
resumption needs (PyTorch Lightning's list, adapted): model, optimizer, scheduler, projector,
optimizer step, epoch and position in that epoch's data order, RNG state, early-stopping and
non-finite counters, the run config and the fingerprints of the dataset and tokenizer it was
trained with.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from noa_platform.atomic import atomic_path
from noa_platform.errors import NoaError

FORMAT = "noa-mno-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (:mod:`noa_platform.atomic`)."""
    path = Path(path)
    # Through a Python file, so that a failed write (no space, permission) is the OSError
    # naming the file rather than torch's RuntimeError from its own C++ writer.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, fh)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; one-line errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise NoaError(f"{path}: no such checkpoint")
    try:
        # torch warns on pickles it did not write (a foreign or crafted file); the refusal
        # below is the one line the user gets.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (truncated zip, pickle refused, ...)
        raise NoaError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise NoaError(f"{path}: not a noa MNO checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise NoaError(f"{path}: checkpoint format {state.get('format_version')} is not "
                       f"supported (expected {FORMAT_VERSION})")
    return state
