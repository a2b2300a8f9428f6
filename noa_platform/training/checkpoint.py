"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is a ``torch.save`` of plain containers, numbers, strings and tensors only, read
back with ``torch.load(weights_only=True)``, which refuses anything else. It holds what exact
resumption needs (PyTorch Lightning's list, adapted): model, optimizer, scheduler, projector,
optimizer step, epoch and position in that epoch's data order, RNG state, early-stopping and
non-finite counters, the run config and the fingerprints of the dataset and tokenizer it was
trained with.

Retention: a run folder keeps ``best.pt``, ``last.pt``, ``final.pt`` and the newest
``training.keep_checkpoints`` epoch checkpoints ``epoch-NNNN.pt``; :func:`prune_checkpoints`
deletes the older ones (oldest first, so a kill midway leaves the newest) and the temporaries
of saves that a kill interrupted.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from noa_platform.atomic import atomic_path, remove_stale_temporaries
from noa_platform.config import run_difference
from noa_platform.errors import NoaError

FORMAT = "noa-mno-checkpoint"
FORMAT_VERSION = 1

_EPOCH_FILE = re.compile(r"epoch-(\d+)\.pt")


def epoch_checkpoint_name(epoch: int) -> str:
    """The file name of the checkpoint taken at the end of ``epoch`` (counted from 1)."""
    return f"epoch-{epoch:04d}.pt"


def prune_checkpoints(folder: str | os.PathLike, keep: int) -> list[Path]:
    """Keep the newest ``keep`` epoch checkpoints of ``folder``; returns what was deleted.

    Each deletion is atomic, so a process killed here leaves a folder that still resumes (from
    ``last.pt``, which is never deleted) and is pruned by the next call. Temporaries left by
    killed saves (``*.pt.tmp-PID``) go too.
    """
    folder = Path(folder)
    epochs = sorted((int(m.group(1)), p) for p in folder.glob("epoch-*.pt")
                    if (m := _EPOCH_FILE.fullmatch(p.name)))
    removed = []
    for _, path in epochs[:max(0, len(epochs) - keep)]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed + remove_stale_temporaries(folder, "*.pt")


def resume_mismatch(config_then: Any, config_now: Any, fingerprint_then: str,
                    fingerprint_now: str | None) -> str | None:
    """Why a checkpoint of run config ``config_then`` (JSON) trained on the dataset
    ``fingerprint_then`` cannot be resumed by this run, for a message; None when it can
    (``fingerprint_now`` None: the dataset is not known yet)."""
    diff = run_difference(config_then, config_now, labels=("in the checkpoint", "now"))
    if diff:
        return f"the checkpoint was trained with another config ({diff})"
    if fingerprint_now and fingerprint_then != fingerprint_now:
        return (f"the checkpoint was trained on another dataset (fingerprint "
                f"{fingerprint_then[:12]}, this one is {fingerprint_now[:12]})")
    return None


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
        if "Weights only load failed" in str(exc):
            why = ("it holds Python objects that only running code could rebuild; refused, "
                   "nothing in it was run")
        else:  # text, a truncated zip, another format: torch's errors say little more
            why = f"not a PyTorch file, or a truncated one; {type(exc).__name__}"
        raise NoaError(f"{path}: not a readable checkpoint ({why})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise NoaError(f"{path}: not a noa MNO checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise NoaError(f"{path}: checkpoint format {state.get('format_version')} is not "
                       f"supported (expected {FORMAT_VERSION})")
    return state
