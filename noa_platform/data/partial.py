"""Work folders of resumable jobs: batch files that exist whole or not at all.

A job that produces per-sample results (generation, feature extraction) writes each finished
batch as ``batch-<first>-<last>.npz`` with :func:`noa_platform.atomic.atomic_savez`. Whatever moment
the process dies at, the folder holds only complete batch files, and the indices they cover
are exactly the work that need not be redone.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np


def batch_path(work: Path, indices: np.ndarray) -> Path:
    """The file of a batch of contiguous indices."""
    return work / f"batch-{indices[0]:08d}-{indices[-1]:08d}.npz"


def done_mask(work: Path, n: int) -> np.ndarray:
    """``[n]`` bool: which samples have a finished batch file in ``work``."""
    done = np.zeros(n, dtype=bool)
    for f in work.glob("batch-*.npz"):
        first, last = (int(x) for x in f.stem.split("-")[1:3])
        done[first:last + 1] = True
    return done


def read_batch(f: Path, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a batch file (``keys``: those, else all), read without unpickling; a
    damaged or crafted file is a one-line :class:`~noa_platform.errors.DataError` saying to
    start the job's work over."""
    from noa_platform.errors import DataError

    try:
        with np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in (z.files if keys is None else keys)}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{f}: a damaged batch file ({reason}); delete {f.parent} and "
                        "rerun") from None


def contiguous_batches(todo: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split sorted indices into batches of at most ``batch_size`` contiguous indices."""
    out = []
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        out.extend(np.split(chunk, np.flatnonzero(np.diff(chunk) != 1) + 1))
    return [b for b in out if len(b)]
