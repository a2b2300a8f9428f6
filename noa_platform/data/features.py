"""Adding features to a dataset after generation (``noa features FILE``).

Which families: those of a :class:`~noa_platform.features.selection.FeatureSet` (default: the
core's three); a family already stored with the same column names is kept. Idempotent: a file
whose requested feature families are all present is left alone. Resumable: features
are computed batch by batch into ``<file>.features.partial/`` (one atomically written file per
batch); a killed run continues from the batches that exist. The dataset is then rewritten
under a temporary name with the features added and renamed over the original, so the file is
at every moment either the old complete one or the new complete one.
"""

from __future__ import annotations

import glob
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from noa_platform.atomic import (
    atomic_path,
    atomic_savez,
    atomic_write_text,
    remove_stale_temporaries,
)
from noa_platform.data.partial import batch_path, contiguous_batches, done_mask, read_batch
from noa_platform.data.store import DatasetFile, read_only
from noa_platform.data.work_lock import empty_folder, sole_writer
from noa_platform.errors import DataError

if TYPE_CHECKING:
    from noa_platform.features.selection import FeatureSet

BATCH = 32


def add_features(path: str | Path, *, progress: bool = True,
                 log: Callable[[str], None] = print,
                 features: FeatureSet | None = None) -> bool:
    """Compute and store the missing or stale families of ``features`` (default: the core's).

    Returns False if nothing was missing. Only those families are computed and rewritten;
    other stored families are kept.
    """
    if features is None:
        from noa_platform.features.selection import feature_set

        features = feature_set()
    path = Path(path)
    remove_stale_temporaries(path.parent, glob.escape(path.name))  # a killed rewrite's copy
    wanted = features.names
    todo_families = missing_families(path, features)
    with DatasetFile(path) as ds:
        n = len(ds)
        fingerprint = ds.fingerprint
    work = path.with_name(path.name + ".features.partial")
    if not todo_families:
        if work.exists():  # killed after the file was replaced, before the cleanup
            shutil.rmtree(work)
        log(f"{path}: features already present ({', '.join(wanted)})")
        return False
    if read_only(path):
        raise DataError(f"{path}: the file is read-only (a registered dataset is) and lacks "
                        f"features {', '.join(todo_families)}, which are stored in the dataset; "
                        "copy it and add them to the copy")
    features = features.subset(todo_families)
    names = features.names
    stamp = work / "fingerprint"
    # The stamp names the file and the families: a work folder left by another file of the
    # same name, or by a run computing other families, is not resumed.
    identity = json.dumps({"fingerprint": fingerprint, "families": names,
                           "versions": features.versions})
    work.mkdir(exist_ok=True)
    with sole_writer(work, f"adding features to {path}"):
        if not stamp.exists() or stamp.read_text() != identity:
            empty_folder(work)
        atomic_write_text(stamp, identity)
        _compute(path, work, features, n, progress, log)
    log(f"{path}: added features {', '.join(names)}")
    return True


def _compute(path: Path, work: Path, features: FeatureSet, n: int, progress: bool,
             log: Callable[[str], None]) -> None:
    """The batches still missing from ``work``, then the file with them, then no ``work``."""
    names = features.names
    done = done_mask(work, n)
    todo = np.flatnonzero(~done)
    if done.any():
        log(f"resuming features of {path}: {int(done.sum())} of {n} samples already done")
    with DatasetFile(path) as ds, tqdm(total=n, initial=int(done.sum()), unit="sample",
                                       desc="features", disable=not progress) as bar:
        for run in contiguous_batches(todo, BATCH):
            traj = torch.from_numpy(ds.trajectories(slice(run[0], run[-1] + 1)))
            with torch.no_grad():
                feats = features(traj)
            atomic_savez(batch_path(work, run), indices=run,
                         **{f"features.{k}": v.numpy() for k, v in feats.items()})
            bar.update(len(run))

    with atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        _store(tmp, work, names, features.versions, n)
    shutil.rmtree(work)


def missing_families(path: str | Path, features: FeatureSet) -> list[str]:
    """The families of ``features`` that ``path`` lacks or stores stale: other columns, or
    the same columns computed by another definition."""
    wanted, versions = features.names, features.versions
    with DatasetFile(path) as ds:
        stored = ds.feature_families()
        return [f for f in wanted
                if f not in stored or ds.features(f)[1] != wanted[f]
                or ds.feature_version(f) != versions[f]]


def _store(tmp: Path, work: Path, names: dict[str, tuple[str, ...]], versions: dict[str, str],
           n: int) -> None:
    """Write the batch files' families into the HDF5 file ``tmp`` (replacing stale ones)."""
    with h5py.File(tmp, "r+") as h5:
        for family in names:
            key = f"features/{family}"
            if key in h5:
                del h5[key]
        for f in sorted(work.glob("batch-*.npz")):
            z = read_batch(f, ["indices", *(f"features.{family}" for family in names)])
            idx = z["indices"]
            for family in names:
                arr = z[f"features.{family}"]
                key = f"features/{family}"
                if key not in h5:
                    ds_ = h5.create_dataset(key, shape=(n, *arr.shape[1:]), dtype="float32")
                    ds_.attrs["names"] = json.dumps(list(names[family]))
                    ds_.attrs["version"] = versions[family]
                    ds_.attrs["frame_dt"] = float(h5.attrs["frame_dt"])
                h5[key][idx] = arr
