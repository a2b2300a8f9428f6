"""Where ``noa align`` finds its two tokenizers and the trajectories co-occurrence reads.

A side of an alignment is given as a domain (its newest registered tokenizer), a registry id
(or unique prefix) of a tokenizer, or a folder holding a saved tokenizer (``tokenizer.json``).
Co-occurrence reads the datasets given with ``--dataset``; without them, the datasets the two
tokenizers were fitted on: their registered parent datasets, or for a tokenizer folder the
``dataset.h5`` of the run folder around it (``noa train``'s layout), when there is one.

The data an alignment depended on (:func:`data_fingerprints`) is the datasets the two
tokenizers were fitted on, since every method reads the tokenizers, plus those co-occurrence
read; the registry row carries them as one fingerprint (:func:`combined_fingerprint`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from noa_platform.alignment.compare import FeatureSource
from noa_platform.errors import NoaError

#: The optional extra that holds the alignment's libraries, and the modules it provides.
EXTRA = "align"
EXTRA_MODULES = {"ot": "pot", "sklearn": "scikit-learn"}


def require_extra() -> None:
    """One line naming the extra to install when POT or scikit-learn is missing."""
    missing = [pkg for mod, pkg in EXTRA_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise NoaError(
            f"noa align needs {' and '.join(missing)}: pip install 'noa-platform[{EXTRA}]'"
        )


@dataclass
class Side:
    """One tokenizer to align: its label, folder, registry entry (if any) and datasets, and the
    dataset fingerprint its registry row carries (if any)."""

    label: str
    directory: Path
    domain: str | None = None
    registry_id: str | None = None
    datasets: list[tuple[str, Path, str | None]] = field(default_factory=list)  # name, path, id
    dataset_fingerprint: str | None = None


def resolve(spec: str, registry_dir: Path | None) -> Side:
    """A domain, a tokenizer id, or a tokenizer folder -> :class:`Side`."""
    folder = Path(spec)
    if (folder / "tokenizer.json").is_file():
        run_dataset = folder.parent / "dataset.h5"
        datasets = [(str(run_dataset), run_dataset, None)] if run_dataset.is_file() else []
        return Side(label=folder.parent.name or folder.name, directory=folder,
                    datasets=datasets)
    from noa_platform.registry import open_registry

    with open_registry(registry_dir, create=False) as reg:
        entry = reg.latest("tokenizer", spec)
        if entry is None:
            try:
                entry = reg.get(spec)
            except NoaError:
                domains = sorted({e.domain for e in reg.list(kind="tokenizer")})
                raise NoaError(
                    f"{spec!r} is neither a domain with a registered tokenizer, a tokenizer id "
                    f"nor a tokenizer folder (registry {reg.root}; domains with tokenizers: "
                    f"{', '.join(domains) or 'none'})"
                ) from None
        if entry.kind != "tokenizer":
            raise NoaError(f"{spec!r} is a registered {entry.kind} ({entry.id}), not a tokenizer")
        datasets = []
        for pid in entry.parents:
            parent = reg.get(pid)
            if parent.kind == "dataset":
                datasets.append((f"{parent.domain} dataset {parent.id}", reg.path(parent.id),
                                 parent.id))
        return Side(label=f"{entry.domain} ({entry.id})", directory=reg.path(entry.id),
                    domain=entry.domain, registry_id=entry.id, datasets=datasets,
                    dataset_fingerprint=entry.dataset_fingerprint)


def data_fingerprints(sides: Sequence[Side], read: Iterable[Path] = ()) -> list[str]:
    """The fingerprints of the data an alignment depended on, sorted, each once: the datasets
    the tokenizers of ``sides`` were fitted on (for a side without one, the fingerprint its
    registry row carries, if any), whatever the method, and the dataset files co-occurrence
    ``read``."""
    from noa_platform.data.store import DatasetFile

    found = {s.dataset_fingerprint for s in sides if not s.datasets and s.dataset_fingerprint}
    for path in [*(path for s in sides for _, path, _ in s.datasets), *read]:
        with DatasetFile(path) as ds:
            found.add(ds.fingerprint)
    return sorted(found)


def combined_fingerprint(fingerprints: Sequence[str]) -> str | None:
    """One dataset fingerprint for fingerprints of several datasets: a single one is itself
    (the row then carries its dataset's fingerprint, like a tokenizer's), several give the
    sha256 of the sorted fingerprints joined by newlines, none gives None."""
    unique = sorted(set(fingerprints))
    if len(unique) <= 1:
        return unique[0] if unique else None
    return hashlib.sha256("\n".join(unique).encode()).hexdigest()


def feature_sources(paths: Sequence[tuple[str, Path]]) -> list[FeatureSource]:
    """Every stored feature family of each dataset file (all samples)."""
    from noa_platform.data.store import DatasetFile

    sources, seen = [], set()
    for name, path in paths:
        with DatasetFile(path) as ds:
            if ds.fingerprint in seen:
                continue
            seen.add(ds.fingerprint)
            feats, names = {}, {}
            for family in ds.feature_families():
                feats[family], names[family] = ds.features(family)
        sources.append(FeatureSource(name, feats, names))
    return sources
