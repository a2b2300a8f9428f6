"""The self-describing HDF5 layout of a CNO dataset (schema version 1).

Root attributes: ``schema_version``, ``domain``, ``domain_version``, ``platform_version``,
``created`` (ISO 8601), ``config`` (the generation config as JSON), ``channels``, ``grid`` and
``frame_dt`` (JSON), ``fingerprint`` (SHA-256 of θ, seeds, families and trajectories).

Datasets::

    trajectories      float32 [N, T+1, C, H, W]   chunked per sample, gzip + shuffle
    params/unit       float64 [N, P]              attrs: names (θ in the unit cube)
    params/value      float64 [N, P]              attrs: names (physical θ)
    seeds             int64   [N]                 per-sample seeds
    ic_family         str     [N]                 initial-condition family per sample
    completed         bool    [N]                 per-sample completion record
    splits/{train,val,test}  int64 [n_split]      sample indices
    features/<family> float32 [N, D] or [N, T+1, D]  attrs: names, frame_dt
    sample_index      int64   [N]                 shards only: each row's index in the run

A shard (``noa generate --shard k/N``, :mod:`noa_platform.data.shards`) has the same layout
over its own samples, its splits as row numbers, plus the root attribute ``shard``
(``{"k", "of"}`` as JSON) and ``sample_index``; ``config`` is the whole run's.

A file under its final name is always complete: writers build it under a temporary name and
rename it (see :mod:`noa_platform.data.generate`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from noa_platform.data.shards import Shard
from noa_platform.errors import DataError

SCHEMA_VERSION = 1
REQUIRED = ("trajectories", "params/unit", "params/value", "seeds", "ic_family", "completed")
REQUIRED_ATTRS = ("domain_version", "platform_version", "created", "config", "channels",
                  "frame_dt", "fingerprint")
JSON_ATTRS = ("config", "channels")
#: Samples read at once when scanning a file's trajectories for non-finite values.
SCAN_BLOCK = 64


class Fingerprint:
    """SHA-256 over what defines a dataset's content, fed in sample-index order."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, *arrays: np.ndarray) -> None:
        for a in arrays:
            a = np.ascontiguousarray(a)
            self._h.update(str((a.dtype.str, a.shape)).encode())
            self._h.update(a.tobytes())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class DatasetFile:
    """Read access to a dataset file, validated on open.

    Any file that is missing, not HDF5, truncated, or lacks the layout above raises a one-line
    :class:`DataError` naming the file. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            partial = self.path.with_name(self.path.name + ".partial")
            hint = f" (an unfinished generation is in {partial})" if partial.exists() else ""
            raise DataError(f"{self.path}: no such dataset file{hint}")
        if self.path.is_dir():  # h5py's wording for this is a page of HDF5 diagnostics
            raise DataError(f"{self.path}: a folder, not a dataset file")
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(f"{self.path}: not a readable HDF5 file (truncated or foreign): "
                            f"{str(exc).splitlines()[0]}") from None
        try:
            self._validate()
        except DataError:
            self.h5.close()
            raise

    def _validate(self) -> None:
        attrs = self.h5.attrs
        if "schema_version" not in attrs or "domain" not in attrs:
            raise DataError(f"{self.path}: not a noa dataset (no schema_version/domain attribute)")
        raw = attrs["schema_version"]
        raw = raw.item() if isinstance(raw, np.generic) else raw  # shown as 2, not np.int64(2)
        try:
            version = int(raw)
        except (TypeError, ValueError):
            version = None
        if version != SCHEMA_VERSION:
            raise DataError(f"{self.path}: schema version {raw!r} is not supported (this "
                            f"platform reads {SCHEMA_VERSION})")
        # What every reader takes for granted (info, training, merge, registration): checked
        # here so that a file missing one is refused in one line rather than failing later.
        for key in REQUIRED_ATTRS:
            if key not in attrs:
                raise DataError(f"{self.path}: attribute {key!r} is missing")
        for key in JSON_ATTRS:
            try:
                json.loads(attrs[key])
            except (TypeError, ValueError):
                raise DataError(f"{self.path}: attribute {key!r} is not valid JSON") from None
        for key in REQUIRED:
            if key not in self.h5:
                raise DataError(f"{self.path}: dataset {key!r} is missing")
        n = self.h5["trajectories"].shape[0]
        required = REQUIRED[1:] + (("sample_index",) if "shard" in attrs else ())
        for key in required:
            if key not in self.h5:
                raise DataError(f"{self.path}: dataset {key!r} is missing")
            if self.h5[key].shape[0] != n:
                raise DataError(f"{self.path}: {key!r} has {self.h5[key].shape[0]} rows, "
                                f"trajectories has {n}")

    # ------------------------------------------------------------------ metadata

    def __enter__(self) -> DatasetFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.h5.close()

    @property
    def domain(self) -> str:
        return str(self.h5.attrs["domain"])

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.h5.attrs["config"])

    @property
    def fingerprint(self) -> str:
        return str(self.h5.attrs["fingerprint"])

    @property
    def shard(self) -> Shard | None:
        """Which shard of its run this file is, or ``None`` for a whole dataset."""
        if "shard" not in self.h5.attrs:
            return None
        try:
            data = json.loads(self.h5.attrs["shard"])
        except ValueError:
            data = self.h5.attrs["shard"]
        return Shard.from_description(data, str(self.path))

    def sample_index(self) -> np.ndarray:
        """Each row's sample index in the run (``0..N-1`` for a whole dataset)."""
        if "sample_index" in self.h5:
            return self.h5["sample_index"][:]
        return np.arange(len(self), dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.h5["trajectories"].shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(json.loads(self.h5["params/value"].attrs["names"]))

    # ------------------------------------------------------------------ content

    def trajectories(self, index: Any = slice(None)) -> np.ndarray:
        """``[n, T+1, C, H, W]`` float32 for an index, slice or sorted index array."""
        return self.h5["trajectories"][index]

    def check_trainable(self) -> None:
        """Refuse what a model cannot be trained on as it stands: a shard (its splits are its
        own rows; merge the shards first) or a file with samples never written."""
        shard = self.shard
        if shard is not None:
            raise DataError(f"{self.path}: shard {shard} of a run, not a whole dataset; join the "
                            "shards with `noa data merge` first")
        missing = np.flatnonzero(~self.h5["completed"][:])
        if len(missing):
            raise DataError(f"{self.path}: {len(missing)} of {len(self)} samples were never "
                            f"written (first: {int(missing[0])})")

    def check_finite(self) -> None:
        """Refuse a file whose written samples hold NaN or infinite values (trajectories, θ or
        stored features), naming the samples: a model or a tokenizer fitted on them would learn
        nothing useful and fail far from the cause. Reads every written row once, in blocks."""
        completed = self.h5["completed"][:]
        bad = set(np.flatnonzero(~np.isfinite(self.params("value")).all(axis=1) & completed))
        arrays = [self.h5["trajectories"]] + [self.h5[f"features/{f}"]
                                              for f in self.feature_families()]
        for array in arrays:
            for start in range(0, len(self), SCAN_BLOCK):
                block = array[start:start + SCAN_BLOCK]
                finite = np.isfinite(block.reshape(len(block), -1)).all(axis=1)
                bad.update(start + np.flatnonzero(~finite & completed[start:start + SCAN_BLOCK]))
        if bad:
            rows = sorted(int(i) for i in bad)
            index = self.sample_index()  # a shard's rows are named by their index in the run
            shown = ", ".join(str(int(index[i])) for i in rows[:10])
            more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            raise DataError(f"{self.path}: samples {shown}{more} ({len(rows)} of {len(self)}) "
                            "hold NaN or infinite values")

    def params(self, which: str = "value", index: Any = slice(None)) -> np.ndarray:
        return self.h5[f"params/{which}"][index]

    def seeds(self) -> np.ndarray:
        return self.h5["seeds"][:]

    def families(self) -> list[str]:
        return [s.decode() if isinstance(s, bytes) else str(s) for s in self.h5["ic_family"][:]]

    def split(self, name: str) -> np.ndarray:
        key = f"splits/{name}"
        if key not in self.h5:
            raise DataError(f"{self.path}: no split {name!r}")
        return self.h5[key][:]

    def feature_families(self) -> list[str]:
        return sorted(self.h5["features"]) if "features" in self.h5 else []

    def features(self, family: str) -> tuple[np.ndarray, tuple[str, ...]]:
        key = f"features/{family}"
        if key not in self.h5:
            raise DataError(f"{self.path}: no features for family {family!r} "
                            f"(run `noa features {self.path}`)")
        ds = self.h5[key]
        return ds[:], tuple(json.loads(ds.attrs["names"]))

    def feature_version(self, family: str) -> str:
        """The definition version the stored family was computed with ("1" when the file
        predates versions)."""
        return str(self.h5[f"features/{family}"].attrs.get("version", "1"))

    def behaviour(self) -> dict[str, Any]:
        """The uniform / stationary / moving mix of the stored samples (see
        :mod:`noa_platform.data.behaviour`), overall and per categorical value."""
        from noa_platform.data.behaviour import behaviour_mix, classify

        traj = self.h5["trajectories"]
        n, c = traj.shape[0], traj.shape[2]
        # Channel scales from a strided subset of frames keeps this cheap on big files.
        sample = traj[:: max(1, n // 64)]
        scale = np.moveaxis(sample, 2, 0).reshape(c, -1).std(axis=1)
        last_two = np.concatenate([traj[i:i + 256, -2:] for i in range(0, n, 256)])
        params = json.loads(self.h5.attrs.get("parameter_space", "[]"))
        return behaviour_mix(classify(last_two, scale), self.params("value"), params)

    def info(self) -> dict[str, Any]:
        """What ``noa data info`` prints."""
        attrs = self.h5.attrs
        values = self.params("value")
        names = self.param_names
        completed = self.h5["completed"][:]
        shard = self.shard
        where = None
        if shard is not None:
            index = self.sample_index()
            where = {**shard.describe(), "run_samples": int(self.config["n_samples"]),
                     "first": int(index[0]) if len(index) else None,
                     "last": int(index[-1]) if len(index) else None}
        return {
            "file": str(self.path),
            "shard": where,
            "schema_version": int(attrs["schema_version"]),
            "domain": self.domain,
            "domain_version": str(attrs["domain_version"]),
            "platform_version": str(attrs["platform_version"]),
            "created": str(attrs["created"]),
            "fingerprint": self.fingerprint,
            "samples": len(self),
            "completed": int(completed.sum()),
            "complete": bool(completed.all()),
            "trajectories": {"shape": list(self.shape), "dtype": str(self.h5["trajectories"].dtype)},
            "channels": json.loads(attrs["channels"]),
            "frame_dt": float(attrs["frame_dt"]),
            "splits": {s: int(self.h5[f"splits/{s}"].shape[0]) for s in ("train", "val", "test")
                       if f"splits/{s}" in self.h5},
            "parameters": {n: {"min": float(values[:, i].min()), "max": float(values[:, i].max())}
                           for i, n in enumerate(names)},
            "ic_families": {f: self.families().count(f) for f in sorted(set(self.families()))},
            "behaviour": self.behaviour() if completed.all() else None,
            "features": {f: {"shape": list(self.h5[f"features/{f}"].shape)}
                         for f in self.feature_families()},
            "size_bytes": self.path.stat().st_size,
            "config": self.config,
        }


def check_datasets(paths: Any) -> None:
    """Open each dataset file and check its content (:meth:`DatasetFile.check_finite`), so a
    command refuses a bad input before it starts working on the others."""
    for path in paths:
        with DatasetFile(path) as ds:
            ds.check_finite()


def read_only(path: str | os.PathLike) -> bool:
    """Whether ``path`` has no write permission bit: the registry stores its files so, and
    such a file must be read, never modified in place (even by a user, like root, whom the
    permission would not stop)."""
    return not os.stat(path).st_mode & 0o222


def write_dataset(
    path: Path,
    *,
    attrs: Mapping[str, Any],
    param_names: tuple[str, ...],
    unit: np.ndarray,
    values: np.ndarray,
    seeds: np.ndarray,
    families: list[str],
    splits: Mapping[str, np.ndarray],
    batches: Any,
    shape: tuple[int, ...],
    feature_names: Mapping[str, tuple[str, ...]] | None = None,
    feature_versions: Mapping[str, str] | None = None,
    compression_level: int = 4,
    sample_index: np.ndarray | None = None,
) -> str:
    """Write a complete dataset at ``path`` from ``batches`` and return its fingerprint.

    ``batches`` yields ``(indices, trajectories, features)`` with sorted, disjoint indices
    covering ``range(N)``; ``features`` maps family to array (or is empty). The caller chooses
    a temporary ``path`` and renames it once this returns. A shard passes ``sample_index``
    (each row's index in the run) and the ``shard`` attribute.
    """
    n = shape[0]
    fp = Fingerprint()
    fp.update(values, seeds, np.array(families, dtype=object).astype(str))
    with h5py.File(path, "w") as h5:
        for key, value in attrs.items():
            h5.attrs[key] = value
        h5.attrs["schema_version"] = SCHEMA_VERSION
        comp = {"compression": "gzip", "compression_opts": compression_level, "shuffle": True} \
            if compression_level > 0 else {}
        traj = h5.create_dataset("trajectories", shape=shape, dtype="float32",
                                 chunks=(1, *shape[1:]), **comp)
        for which, arr in (("unit", unit), ("value", values)):
            ds = h5.create_dataset(f"params/{which}", data=arr.astype(np.float64))
            ds.attrs["names"] = json.dumps(list(param_names))
        h5.create_dataset("seeds", data=seeds.astype(np.int64))
        if sample_index is not None:
            h5.create_dataset("sample_index", data=np.asarray(sample_index, dtype=np.int64))
        h5.create_dataset("ic_family", data=np.array(families, dtype=object),
                          dtype=h5py.string_dtype())
        for name, idx in splits.items():
            h5.create_dataset(f"splits/{name}", data=np.asarray(idx, dtype=np.int64))
        completed = h5.create_dataset("completed", shape=(n,), dtype=bool, fillvalue=False)
        feats: dict[str, h5py.Dataset] = {}
        for indices, trajectories, features in batches:
            traj[indices] = trajectories
            for row in trajectories:  # per sample, so batch boundaries do not change the hash
                fp.update(row)
            for family, arr in (features or {}).items():
                if family not in feats:
                    feats[family] = h5.create_dataset(
                        f"features/{family}", shape=(n, *arr.shape[1:]), dtype="float32")
                    feats[family].attrs["names"] = json.dumps(list(feature_names[family]))
                    feats[family].attrs["version"] = (feature_versions or {}).get(family, "1")
                    # Features of TEMPORAL and SUMMARY families are per frame: the physical time
                    # between frames travels with them, so domains with different time scales
                    # can be compared.
                    feats[family].attrs["frame_dt"] = float(attrs.get("frame_dt", math.nan))
                feats[family][indices] = arr
            completed[indices] = True
        if not completed[:].all():
            raise DataError(f"{path}: internal error: samples {np.flatnonzero(~completed[:])[:5]} "
                            "were never written")
        digest = fp.hexdigest()
        h5.attrs["fingerprint"] = digest
    return digest
