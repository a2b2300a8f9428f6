"""The lock that keeps :meth:`Registry.gc` from deleting objects a registration is about to
commit.

A registration copies its objects before it takes the index's write lock (copying a large
dataset inside it would stall every other writer), so for a while its objects are referenced
by no row. It holds ``registry/lock`` shared for that whole time; ``gc`` takes it exclusively,
so it waits for registrations in progress and they wait for it. ``flock`` locks are dropped
by the kernel when their process dies, SIGKILL included, so a killed process never leaves the
registry locked. Where ``fcntl`` is missing (Windows) there is no lock: run ``gc`` only when
nothing else uses the registry.
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
def file_lock(path: Path, exclusive: bool) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
