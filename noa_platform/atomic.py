"""Atomic file writes: every file the platform writes is either the old one or the new one.

A file is written under a temporary name in the same folder (``<name>.tmp-<pid>``), flushed to
disk, then renamed over the final name with :func:`os.replace`, which is atomic on POSIX and
Windows when both names are on one file system. A process killed at any moment therefore leaves
the final name untouched or complete, never half-written, and at worst a stray ``*.tmp-<pid>``
file that the next successful write of the same name does not depend on.

Use :func:`atomic_path` for libraries that write to a path themselves (``torch.save``,
safetensors, h5py, matplotlib); the other helpers cover text, JSON, bytes and ``np.savez``.
The temporary name never matches the final name's glob patterns (``batch-*.npz``), so readers
that list a folder never see work in progress.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noa_platform.file_errors import named_path

__all__ = [
    "atomic_path",
    "atomic_savez",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "remove_stale_temporaries",
]


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is synced and renamed to ``path``.

    The parent folder is created. If the body raises, the temporary file is removed and
    ``path`` is left as it was::

        with atomic_path(out) as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        # Created here, by Python, before any library writes it: a folder that cannot take the
        # file (permission, read-only, full) is then the same OSError naming it, whichever
        # library (h5py, torch, matplotlib) was going to write, not that library's wording.
        open(tmp, "wb").close()
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            _name_the_final_path(exc, tmp, path)
        raise
    _fsync_dir(path.parent)


def _name_the_final_path(exc: OSError, tmp: Path, path: Path) -> None:
    """Make an error on the temporary file name the file being written.

    The user asked for ``path``; ``path.tmp-<pid>`` is gone once this returns. A write that
    fails midway (``ENOSPC``) names no file at all, and the file being written is the likely
    one; an error naming another file (an input being read) is left as it is.
    """
    named = named_path(exc)
    if named is None or Path(named) == tmp:
        exc.filename = os.fspath(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any, **dumps: Any) -> Path:
    """Write ``json.dumps(data, **dumps)`` plus a newline to ``path`` atomically.

    ``indent`` defaults to 2, so every JSON file the platform writes reads the same way.
    """
    dumps.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(data, **dumps) + "\n")


def atomic_savez(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """``np.savez(path, **arrays)`` atomically (uncompressed; NumPy imported on first use)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike[str], *names: str) -> list[Path]:
    """Delete the temporaries (``NAME.tmp-PID``) in ``folder`` of files matching the glob
    patterns ``names`` (``"*.pt"``, or one file name through :func:`glob.escape`) whose
    process is gone; returns what was deleted.

    A process killed while writing leaves its temporary behind; a job that is resumed calls
    this before writing again, so that repeated kills do not pile up partial copies (a
    dataset's can be large). The patterns name what the job writes, so that a file of the
    user's that merely looks like a temporary is not touched. A temporary whose process still
    runs on this machine is kept: it is another writer's work in progress.
    """
    folder = Path(folder)
    removed = []
    for name in names:
        for tmp in folder.glob(f"{name}.tmp-*"):
            pid = tmp.name.rsplit(".tmp-", 1)[1]
            if pid.isdigit() and not _running(int(pid)) and tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else (or cannot be asked: keep it)
        return True
    return True
