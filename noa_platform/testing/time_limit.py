"""A wall-clock limit on one check, so a solver that hangs fails its check instead of the kit.

A thread cannot be stopped from outside, and running each check in a child process would
need the domain to be picklable (an in-process test domain is not) and would pay a torch
import per check. So the limit is ``SIGALRM``: an interval timer on the main thread raises
:class:`CheckTimedOut` in whatever Python code is running when it expires. Limits of this
choice, by design: it needs POSIX and the main thread (elsewhere the check runs unlimited),
and a solver stuck inside one long C call (a single huge FFT) is interrupted when that call
returns, not before.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Limits longer than this (and infinity) mean no limit: the interval timer overflows
#: near 1e9 s, and a day is already no limit for one check.
UNLIMITED_ABOVE = 86_400.0

#: How the reason of a check that ran past its limit begins.
TIMED_OUT = "timed out after"


class CheckTimedOut(BaseException):
    """A check ran past its limit. A ``BaseException``, like ``KeyboardInterrupt``, so a
    solver's ``except Exception`` cannot swallow it and keep hanging."""


def can_limit() -> bool:
    """Whether :func:`time_limit` can interrupt code here (POSIX, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CheckTimedOut` in the body after ``seconds`` (``None``, more than
    :data:`UNLIMITED_ABOVE`, or where :func:`can_limit` is false: no limit). An outer timer
    already set is restored after."""
    if seconds is None or not seconds <= UNLIMITED_ABOVE or not can_limit():
        yield
        return

    def expire(signum, frame):
        raise CheckTimedOut(f"{TIMED_OUT} {seconds:g}s")

    start = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if outer_left > 0:  # someone else's alarm: give it what remains (at least a tick)
            left = outer_left - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
