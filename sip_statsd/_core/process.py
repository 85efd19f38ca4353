"""The process model: fork hooks, the flush at interpreter exit, and at a multiprocessing child's end.

Imported once with the package (by `_sip.api`), for these registrations.

- Fork: every recorder's flusher is asked to end, then all are waited for, together, at
  most `FORK_JOIN_TIMEOUT` (a flusher stuck in a hung resolver must not hold a fork for
  long); the locks an emitter or a `configure()` may hold are taken, so that a child never
  inherits one held (with a deadline: a fork from a signal handler may interrupt the thread
  that holds one). After the fork the parent starts its flushers again, and the child starts
  its own, with empty counts and new locks.
- Python 3.12 decides whether to warn ("This process is multi-threaded, use of fork() may
  lead to deadlocks") before the after-fork hooks: it sees no thread of ours. Python 3.13
  counts after them, when the parent's flusher has started again, so it warns at every fork,
  as it does for any library that restarts a thread after a fork (datadogpy's included).
  Starting the flusher later instead (at the next garbage collection) was tried and dropped:
  a program whose allocations balance never collects, so the parent would stop flushing, and
  a collection can run inside `Thread.start()` itself.
- Exit: one budget of `DEFAULT_TIMEOUT` for all recorders, their last flushes asked for at
  once; run once, from `atexit` or from multiprocessing's finalizers (a multiprocessing child
  ends with `os._exit`, past `atexit`, but after those).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time

from . import series as _series
from .flusher import FORK_JOIN_TIMEOUT, wait_paused
from .recorder import DEFAULT_TIMEOUT, Recorder, _instances

_exit_lock = threading.Lock()
_exited = False
_fold_held = False  # across a fork


def _recorders() -> list[Recorder]:
    return list(_instances)


def _before_fork() -> None:
    global _fold_held
    recorders = _recorders()
    threads = []
    for recorder in recorders:
        with contextlib.suppress(Exception):  # a fork hook must never fail the fork
            threads.append(recorder._pause_for_fork())
    deadline = time.monotonic() + FORK_JOIN_TIMEOUT
    for thread in threads:
        if thread is not None:
            with contextlib.suppress(Exception):
                wait_paused(thread, deadline)
    for recorder in recorders:
        with contextlib.suppress(Exception):
            recorder._before_fork(deadline)
    # With a deadline: a fork from a signal handler may interrupt a fold on this very thread.
    _fold_held = _series._FOLD_LOCK.acquire_for_fork(deadline - time.monotonic())


def _after_fork_parent() -> None:
    if _fold_held:
        _series._FOLD_LOCK.release()
    for recorder in _recorders():
        with contextlib.suppress(Exception):
            recorder._after_fork_parent()


def _after_fork_child() -> None:
    _series._FOLD_LOCK = _series.OwnedLock()  # whatever held the parent's does not exist here
    for recorder in _recorders():
        with contextlib.suppress(Exception):
            recorder._after_fork_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)


def close_all(timeout: float = DEFAULT_TIMEOUT) -> None:
    """Close every recorder within one `timeout`, once per process (exit, or a multiprocessing child's end)."""
    global _exited
    with _exit_lock:
        if _exited:
            return
        _exited = True
    deadline = time.monotonic() + timeout
    asked = [(recorder, recorder._ask_close()) for recorder in _recorders()]
    for recorder, ask in asked:
        if ask is not None:
            with contextlib.suppress(Exception):
                recorder._wait_closed(ask, deadline)


atexit.register(close_all)


def _watch_multiprocessing() -> None:
    """Flush at the end of a multiprocessing child: it exits with os._exit, past atexit.

    multiprocessing runs its finalizers (`util.Finalize`, with an exit priority) before
    that `os._exit`, but clears them when a child starts: so one is registered now and
    again in every child, from `util.register_after_fork`.
    """
    from multiprocessing import util

    def register(_: object = None) -> None:
        global _exited
        _exited = False  # a child closes its own recorders at its own end
        util.Finalize(None, close_all, exitpriority=100)

    register()
    util.register_after_fork(_watch_multiprocessing, register)


_watch_multiprocessing()
