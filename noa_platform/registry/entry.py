"""What one registry row is: :class:`RegistryEntry`, the artifact kinds and their id prefixes."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

#: The kinds of artifact the registry holds, in the order a training run produces them.
KINDS = ("dataset", "tokenizer", "mno", "evaluation", "alignment", "transfer")

#: Each id starts with its kind's prefix, so ``noa registry list`` reads without a KIND column
#: and an id pasted on its own says what it is.
PREFIXES = {"dataset": "ds", "tokenizer": "tok", "mno": "mno", "evaluation": "eval",
            "alignment": "align", "transfer": "xfer"}

ID_HEX = 10  # 40 bits: a collision needs about a million artifacts of one kind


def artifact_id(kind: str, domain: str, digest: str, hex_chars: int = ID_HEX) -> str:
    """The id of an artifact: stable (the same content of the same kind and domain gets the
    same id in every registry) and short; a longer one is used only on a collision."""
    key = hashlib.sha256(f"{kind}\0{domain}\0{digest}".encode()).hexdigest()
    return f"{PREFIXES[kind]}-{key[:hex_chars]}"


def jsonable(value: Any, where: str) -> Any:
    """``value`` with NumPy scalars as Python numbers, paths as strings, tuples as lists and
    non-finite floats as ``None`` (JSON has no NaN), so config and metrics survive a round
    trip through the index unchanged; anything else that JSON cannot hold is a ``TypeError``
    naming ``where``."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    item = getattr(value, "item", None)  # NumPy and torch scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable(item(), where)
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored as JSON")


@dataclass(frozen=True)
class RegistryEntry:
    """One registered artifact, as the index holds it.

    ``digest`` is the sha256 of the artifact's manifest (its name, whether it is a folder, and
    every file's relative name, sha256 and size), so two artifacts with the same digest hold
    the same bytes under the same names. ``files`` is that manifest: relative name ->
    ``{"sha256", "size"}``; ``name`` the file or folder name :meth:`Registry.path` gives back.
    """

    id: str
    kind: str
    domain: str
    created: str
    config: dict
    metrics: dict
    parents: tuple[str, ...]
    dataset_fingerprint: str | None
    versions: dict
    digest: str
    name: str = ""
    is_dir: bool = False
    files: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes of the artifact's files."""
        return sum(f["size"] for f in self.files.values())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["parents"] = list(self.parents)
        out["size"] = self.size
        return out
