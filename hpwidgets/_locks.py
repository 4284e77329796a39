"""Waiting on a Condition where a Ctrl-C may land: the main thread of a foreground run.

``Condition.wait`` releases its lock, waits, then takes the lock back in a ``finally``. A Ctrl-C
handled just after the release, before that ``try`` begins, skips the ``finally``: the caller's
``with lock`` then releases a lock it no longer holds, and the user gets ``RuntimeError`` instead
of the ``KeyboardInterrupt`` (and the run ends as "error"). These take the lock back first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait(cond: threading.Condition, timeout: float | None) -> bool:
    """``cond.wait(timeout)``, holding the lock again however it ends."""
    try:
        return cond.wait(timeout)
    except BaseException:
        if not cond._is_owned():  # type: ignore[attr-defined]  # CPython's own check, as wait() uses
            cond.acquire()
        raise


def wait_for(cond: threading.Condition, predicate: Callable[[], bool], timeout: float | None) -> bool:
    """``cond.wait_for``, each wait through ``wait``: the predicate's last value."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not (result := predicate()):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        wait(cond, left)
    return result
