"""Operating-system errors said in one line: what was being done, on which path, and why.

A full disk, a read-only mount, a folder without write permission or a missing folder are the
user's environment, not a bug, so they reach the user as ``error: <what> <path>: <reason>``
(:class:`FileError`, a :class:`~noa_platform.errors.NoaError`) instead of a traceback.

Two pieces do it. :func:`doing` wraps a command's long work and says *what* it was doing
(``with doing("writing dataset", out): ...``); the ``noa`` group turns any OS error that still
gets through into the same form with :func:`error_line`, so a write nobody wrapped is still one
line naming its path.

The libraries underneath word their failures differently: Python's ``OSError`` carries
``filename`` and ``strerror``; h5py raises ``OSError`` subclasses whose only text is HDF5's
(``Unable to synchronously create file (unable to open file: name = '/x.h5', errno = 13,
error message = 'Permission denied', ...)``), from which the path and reason are read back;
SQLite's ``OperationalError`` names neither path nor errno (``attempt to write a readonly
database``), so the path comes from :func:`doing`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from noa_platform.errors import NoaError

__all__ = ["FileError", "doing", "error_line", "is_file_error", "named_path"]

# HDF5's wording: "name = '/x.h5'" (opening) or "filename = '/x.h5'" (writing), and
# "error message = 'No space left on device'".
_HDF5_NAME = re.compile(r"\b(?:file)?name = '([^']*)'")
_HDF5_REASON = re.compile(r"error message = '([^']*)'")
# What HDF5 says before the parenthesis, kept when it gives no errno text ("Unable to
# synchronously open file (file signature not found)" → "file signature not found").
_HDF5_DETAIL = re.compile(r"\(([^()]*)\)\s*$")


class FileError(NoaError):
    """An operating-system error on a file or folder (permission, missing folder, read-only
    file system, no space), said as what was being done, the path and the reason."""


def is_file_error(exc: BaseException) -> bool:
    """``exc`` is an OS-level failure of a file operation (an ``OSError``, h5py's included, or
    SQLite's ``OperationalError``), not a bug in the platform."""
    if isinstance(exc, OSError):
        return True
    # By name, so that the CLI does not import sqlite3 for commands that never touch it.
    return type(exc).__module__ == "sqlite3" and type(exc).__name__ == "OperationalError"


def _reason_and_path(exc: BaseException) -> tuple[str, str | None, str | None]:
    """(reason, path the error names, second path) of an OS-level error."""
    text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).strip()
    reason = _HDF5_REASON.search(text)
    name = _HDF5_NAME.search(text)
    if reason is None and isinstance(exc, OSError):
        detail = _HDF5_DETAIL.search(text)
        if exc.errno is None and detail is not None and "=" not in detail.group(1):
            text = detail.group(1)
    first = second = None
    if isinstance(exc, OSError):
        first = os.fspath(exc.filename) if exc.filename is not None else None
        second = os.fspath(exc.filename2) if exc.filename2 is not None else None
    if first is None and name is not None:
        first = name.group(1)
    return (reason.group(1) if reason else text or type(exc).__name__), first, second


def named_path(exc: BaseException) -> str | None:
    """The path an OS-level error names, if any (h5py's only in its text)."""
    return _reason_and_path(exc)[1]


def error_line(exc: BaseException, what: str | None = None,
               path: str | os.PathLike[str] | None = None) -> str:
    """``<what> <path>: [<the path the error names>: ]<reason>`` for an OS-level error.

    The error's own path is added when it is not ``path`` itself, so that a failure on a
    temporary or input file (``out.h5.partial``, a config) still says which one.
    """
    reason, named, second = _reason_and_path(exc)
    head = " ".join(str(p) for p in (what, path) if p is not None)
    parts = [head] if head else []
    if named is not None and (path is None or Path(named) != Path(path)):
        parts.append(named if second is None else f"{named} -> {second}")
    parts.append(reason)
    return ": ".join(parts)


@contextlib.contextmanager
def doing(what: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn an OS-level error raised inside into a :class:`FileError` saying
    ``<what> <path>: ...``; errors that are not about files pass through unchanged.

    The innermost ``doing`` names the error; outer ones let the :class:`FileError` through.
    """
    try:
        yield
    except NoaError:
        raise
    except Exception as exc:
        if not is_file_error(exc):
            raise
        raise FileError(error_line(exc, what, path)) from exc
