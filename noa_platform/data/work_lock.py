"""One process at a time in a work folder (``<out>.partial``, ``<file>.features.partial``).

Generation and feature extraction resume from what their work folder holds, so two processes
writing the same output at once would each delete, rewrite or rename the other's files. The
first takes an exclusive ``flock`` on the folder; a second is refused at once, in one line,
rather than failing later on a file the first moved. The lock belongs to the open descriptor,
so a process killed with SIGKILL releases it and the next run resumes. Where ``fcntl`` is
missing (Windows) there is no lock, and one process per output is the user's to keep.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from noa_platform.errors import DataError
from noa_platform.file_lock import file_lock


@contextlib.contextmanager
def sole_writer(folder: Path, doing: str) -> Iterator[None]:
    """Hold ``folder`` (which must exist) exclusively for the block; raise a one-line
    :class:`DataError` when another process holds it (``doing`` says what it does)."""
    held = False
    try:
        with file_lock(folder, exclusive=True, wait=False):
            held = True
            yield
    except BlockingIOError:
        if held:  # raised by the work inside, not by the lock
            raise
        raise DataError(f"{folder}: another process is already {doing}; wait for it to "
                        "finish (the same command then finds the work done)") from None


def empty_folder(folder: Path) -> None:
    """Delete what ``folder`` holds, keeping the folder (and so a lock held on it)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
