"""Joining the shards of a run into the file an unsharded run writes (``noa data merge``).

Before anything is written every shard is checked: it is a shard (not a whole dataset, not a
foreign file), of the same run as the first one (domain, versions, generation config, number
of shards), holds exactly the samples its ``k/N`` names and the seeds the run's seed gives
them, and together the shards hold every sample once. Each refusal is one line naming the file
and the sample.

The merged file is written by the same :func:`~noa_platform.data.store.write_dataset` as an
unsharded run, from the same θ, seeds, families and trajectories in the same order, so its
``fingerprint`` is the unsharded run's: caches keyed on it (tokenizer, checkpoints) carry
over. Feature families stored identically in every shard are joined; others are left out
(``noa features`` on the merged file computes them).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noa_platform.atomic import atomic_path
from noa_platform.config import first_difference
from noa_platform.data.sampling import sample_seeds
from noa_platform.data.shards import Shard
from noa_platform.data.store import DatasetFile, write_dataset
from noa_platform.errors import DataError

# Rows read from a shard at a time while writing: bounds memory on large shards.
ROWS_PER_READ = 64
# Root attributes that describe one file rather than the run.
_OWN_ATTRS = ("shard", "fingerprint", "schema_version", "created")


@dataclass
class _ShardInfo:
    path: Path
    shard: Shard
    identity: dict[str, Any]
    index: np.ndarray
    features: dict[str, tuple[tuple[str, ...], str]]


def _read(path: Path) -> _ShardInfo:
    with DatasetFile(path) as ds:
        shard = ds.shard
        if shard is None:
            raise DataError(f"{path}: not a shard but a whole dataset; `noa data merge` joins "
                            "files written by `noa generate --shard k/N`")
        attrs = ds.h5.attrs
        completed = ds.h5["completed"][:]
        if not completed.all():
            raise DataError(f"{path}: row {int(np.flatnonzero(~completed)[0])} was never "
                            "written (an incomplete file)")
        identity = {"domain": ds.domain, "domain_version": str(attrs["domain_version"]),
                    "platform_version": str(attrs["platform_version"]),
                    "config": ds.config, "shards": shard.of}
        index = ds.sample_index()
        expected = shard.indices(int(ds.config["n_samples"]), int(ds.config["batch_size"]))
        if not np.array_equal(index, expected):
            raise DataError(f"{path}: holds samples {_span(index)}, but shard {shard} of its run "
                            f"is samples {_span(expected)}")
        seeds = ds.seeds()
        run_seeds = sample_seeds(int(ds.config["seed"]), int(ds.config["n_samples"]))[index]
        wrong = np.flatnonzero(seeds != run_seeds)
        if len(wrong):
            raise DataError(f"{path}: sample {int(index[wrong[0]])} has seed {seeds[wrong[0]]}, "
                            f"not the {run_seeds[wrong[0]]} that dataset seed "
                            f"{ds.config['seed']} gives it (the file was altered)")
        features = {f: (ds.features(f)[1], ds.feature_version(f)) for f in ds.feature_families()}
    return _ShardInfo(path, shard, identity, index, features)


def _span(index: np.ndarray) -> str:
    return f"{index[0]}..{index[-1]}" if len(index) else "none"


def _check_coverage(infos: list[_ShardInfo], n: int, out: Path) -> None:
    owner = np.full(n, -1)
    for j, info in enumerate(infos):
        clash = info.index[owner[info.index] >= 0]
        if len(clash):
            i = int(clash[0])
            other = infos[owner[i]]
            raise DataError(f"{info.path}: sample {i} is also in {other.path} (shard "
                            f"{info.shard} given twice)")
        owner[info.index] = j
    missing = np.flatnonzero(owner < 0)
    if len(missing):
        i = int(missing[0])
        cfg = infos[0].identity["config"]
        of = infos[0].shard.of
        absent = next(s for s in (Shard(k, of) for k in range(1, of + 1))
                      if i in s.indices(n, cfg["batch_size"]))
        raise DataError(f"{out}: sample {i} is in none of the shards given; shard {absent} "
                        f"(samples {_span(absent.indices(n, cfg['batch_size']))}) is missing")


def _common_features(infos: list[_ShardInfo], log: Callable[[str], None]
                     ) -> dict[str, tuple[tuple[str, ...], str]]:
    first = infos[0].features
    kept = {}
    for family in sorted(set().union(*(i.features for i in infos))):
        odd = next((i for i in infos if i.features.get(family) != first.get(family)), None)
        if odd is None:
            kept[family] = first[family]
            continue
        has = infos[0] if family in first else odd
        lacks = odd if family in first else infos[0]
        how = ("lacks it" if family not in lacks.features
               else "stores it with other columns or version")
        log(f"features {family!r} left out: {has.path} has it, {lacks.path} {how}; "
            "`noa features` on the merged file computes them")
    return kept


def merge_shards(paths: Sequence[str | Path], out: str | Path, *,
                 log: Callable[[str], None] = print) -> Path:
    """Join the shards ``paths`` (any order) into the dataset ``out``; returns its path."""
    out = Path(out)
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no shards given to merge")
    seen: dict[Path, Path] = {}
    for p in paths:
        if p.resolve() in seen:
            raise DataError(f"{p}: given twice (also as {seen[p.resolve()]})")
        seen[p.resolve()] = p
    if out.exists():
        raise DataError(f"{out} exists; choose another --out or delete it")
    if out.resolve() in seen:
        raise DataError(f"{out}: --out is one of the shards")

    infos = [_read(p) for p in paths]
    ref = infos[0]
    for info in infos[1:]:
        diff = first_difference(ref.identity, info.identity,
                                labels=(f"in {ref.path}", f"in {info.path}"))
        if diff:
            raise DataError(f"{info.path}: a shard of another run than {ref.path} ({diff})")
    n = int(ref.identity["config"]["n_samples"])
    _check_coverage(infos, n, out)
    infos.sort(key=lambda i: i.shard.k)
    features = _common_features(infos, log)

    columns: dict[str, list[Any]] = {"unit": [], "value": [], "seeds": [], "families": []}
    splits: dict[str, list[np.ndarray]] = {}
    for info in infos:
        with DatasetFile(info.path) as ds:
            columns["unit"].append(ds.params("unit"))
            columns["value"].append(ds.params("value"))
            columns["seeds"].append(ds.seeds())
            columns["families"].extend(ds.families())
            for name in ds.h5["splits"]:
                splits.setdefault(name, []).append(info.index[ds.split(name)])
            attrs = {k: v for k, v in ds.h5.attrs.items() if k not in _OWN_ATTRS}
            names, shape = ds.param_names, ds.shape
    attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")

    with atomic_path(out) as tmp:
        write_dataset(
            tmp,
            attrs=attrs,
            param_names=names,
            unit=np.concatenate(columns["unit"]),
            values=np.concatenate(columns["value"]),
            seeds=np.concatenate(columns["seeds"]),
            families=columns["families"],
            splits={k: np.concatenate(v) for k, v in splits.items()},
            batches=_rows(infos, features),
            shape=(n, *shape[1:]),
            feature_names={f: names_ for f, (names_, _) in features.items()},
            feature_versions={f: version for f, (_, version) in features.items()},
            compression_level=int(ref.identity["config"]["compression_level"]),
        )
    log(f"{out}: {len(infos)} shards joined, {n} samples")
    return out


def _rows(infos: list[_ShardInfo], features: dict[str, Any]
          ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    """Every shard's samples in index order, a few rows at a time, with their features."""
    for info in infos:
        with DatasetFile(info.path) as ds:
            for start in range(0, len(info.index), ROWS_PER_READ):
                rows = slice(start, start + ROWS_PER_READ)
                yield (info.index[rows], ds.trajectories(rows),
                       {f: ds.h5[f"features/{f}"][rows] for f in features})

