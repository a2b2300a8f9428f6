"""Resolving ``--source A --target B`` to the artifacts a transfer reads, and registering its
result.

Each domain resolves to its latest registered tokenizer and MNO, the target also to its latest
registered dataset; a missing one is a one-line error that says which and how to make it. The
result is registered as kind ``transfer`` with domain ``"A->B"`` and the artifacts it read as
parents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noa_platform.errors import NoaError

#: Kind names as the registry spells them -> how a message names them.
LABELS = {"tokenizer": "tokenizer", "mno": "MNO", "dataset": "dataset"}

#: Where an MNO's weights may sit inside a registered folder, most preferred first.
CHECKPOINT_NAMES = ("best.pt", "checkpoints/best.pt", "final.pt", "checkpoints/final.pt")


@dataclass(frozen=True)
class Resolved:
    """A registered artifact: its id and the file or folder to read."""

    id: str
    path: Path


def latest(registry: Any, kind: str, domain: str) -> Resolved:
    """The newest ``kind`` registered for ``domain`` (its files checked against their hashes)."""
    entry = registry.latest(kind, domain)
    if entry is None:
        raise NoaError(f"registry {registry.root}: no {LABELS[kind]} registered for domain "
                       f"{domain!r}: run `noa train {domain} --registry {registry.root}`")
    return Resolved(entry.id, registry.path(entry.id))


def tokenizer_folder(found: Resolved) -> Path:
    """The folder holding ``tokenizer.json``: the artifact itself or its ``tokenizer/``."""
    for folder in (found.path, found.path / "tokenizer"):
        if (folder / "tokenizer.json").is_file():
            return folder
    raise NoaError(f"registered tokenizer {found.id} ({found.path}) holds no tokenizer.json")


def checkpoint_file(found: Resolved) -> Path:
    """The MNO checkpoint: the artifact when it is a file, else the first of
    :data:`CHECKPOINT_NAMES` inside it."""
    if found.path.is_file():
        return found.path
    for name in CHECKPOINT_NAMES:
        if (found.path / name).is_file():
            return found.path / name
    raise NoaError(f"registered MNO {found.id} ({found.path}) holds none of "
                   f"{', '.join(CHECKPOINT_NAMES)}")


def dataset_file(found: Resolved) -> Path:
    """The dataset: the artifact when it is a file, else its ``dataset.h5`` (or only ``.h5``)."""
    if found.path.is_file():
        return found.path
    if (found.path / "dataset.h5").is_file():
        return found.path / "dataset.h5"
    files = sorted(found.path.glob("*.h5"))
    if len(files) == 1:
        return files[0]
    raise NoaError(f"registered dataset {found.id} ({found.path}) holds no single .h5 file")


def register_result(registry: Any, source: str, target: str,
                    files: Mapping[str, Path], result: Mapping[str, Any],
                    config: Mapping[str, Any], parents: list[str],
                    dataset_fingerprint: str | None) -> str:
    """Register the transfer's result files; returns the new id."""
    return registry.add("transfer", domain=f"{source}->{target}", source=dict(files),
                        config=dict(config),
                        metrics={"tokenizer": result["tokenizer"], "mno": result["mno"],
                                 "seconds": result["seconds"]},
                        parents=parents, dataset_fingerprint=dataset_fingerprint,
                        name="transfer")
