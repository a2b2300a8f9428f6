"""``flock`` on a file or a folder, for the places where processes must take turns.

The registry holds its ``lock`` file shared during a registration and exclusively during
``gc`` (:mod:`noa_platform.registry.registry`); generation and feature extraction hold their
work folder exclusively, without waiting (:mod:`noa_platform.data.work_lock`). The kernel
drops an ``flock`` when its descriptor closes, which a process killed with SIGKILL does too, so
a dead process never leaves anything locked. Where ``fcntl`` is missing (Windows) there is no
lock at all, and taking turns is the user's to keep.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def file_lock(path: Path, exclusive: bool, wait: bool = True) -> Iterator[None]:
    """Hold ``path`` (a file, created when missing, or an existing folder) locked for the
    block. Without ``wait``, a lock another process holds raises ``BlockingIOError`` at once."""
    path = Path(path)
    flags = os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT
    fd = os.open(path, flags, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                        | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)  # releases the lock, also when the path was removed meanwhile
