"""Adding features to a dataset after generation (``noa features FILE``).

Idempotent: a file whose feature families are all present is left alone. Resumable: features
are computed batch by batch into ``<file>.features.partial/`` (one atomically written file per
batch); a killed run continues from the batches that exist. The dataset is then rewritten
under a temporary name with the features added and renamed over the original, so the file is
at every moment either the old complete one or the new complete one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from noa_platform.data.generate import default_feature_fn
from noa_platform.data.partial import atomic_savez, batch_path, contiguous_batches, done_mask
from noa_platform.data.store import DatasetFile

BATCH = 32


def add_features(path: str | os.PathLike, *, progress: bool = True,
                 log: Callable[[str], None] = print) -> bool:
    """Compute and store the core feature families; returns False if nothing was missing."""
    path = Path(path)
    feature_fn, names = default_feature_fn()
    with DatasetFile(path) as ds:
        missing = [f for f in names if f not in ds.feature_families()]
        stale = [f for f in names if f in ds.feature_families()
                 and ds.features(f)[1] != names[f]]
        n = len(ds)
        fingerprint = ds.fingerprint
    if not missing and not stale:
        log(f"{path}: features already present ({', '.join(names)})")
        return False
    work = path.with_name(path.name + ".features.partial")
    stamp = work / "fingerprint"
    if work.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(work)  # left over from another file of the same name
    work.mkdir(exist_ok=True)
    stamp.write_text(fingerprint)
    done = done_mask(work, n)
    todo = np.flatnonzero(~done)
    if done.any():
        log(f"resuming features of {path}: {int(done.sum())} of {n} samples already done")
    with DatasetFile(path) as ds, tqdm(total=n, initial=int(done.sum()), unit="sample",
                                       desc="features", disable=not progress) as bar:
        for run in contiguous_batches(todo, BATCH):
            traj = torch.from_numpy(ds.trajectories(slice(run[0], run[-1] + 1)))
            with torch.no_grad():
                feats = feature_fn(traj)
            atomic_savez(batch_path(work, run), indices=run,
                         **{f"features.{k}": v.numpy() for k, v in feats.items()})
            bar.update(len(run))

    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    shutil.copyfile(path, tmp)
    with h5py.File(tmp, "r+") as h5:
        for family in names:
            key = f"features/{family}"
            if key in h5:
                del h5[key]
        for f in sorted(work.glob("batch-*.npz")):
            with np.load(f) as z:
                idx = z["indices"]
                for family in names:
                    arr = z[f"features.{family}"]
                    key = f"features/{family}"
                    if key not in h5:
                        ds_ = h5.create_dataset(key, shape=(n, *arr.shape[1:]), dtype="float32")
                        ds_.attrs["names"] = json.dumps(list(names[family]))
                    h5[key][idx] = arr
    os.replace(tmp, path)
    shutil.rmtree(work)
    log(f"{path}: added features {', '.join(names)}")
    return True
