"""The process model: fork hooks, the flush at interpreter exit, and at a multiprocessing child's end.

Imported once with the package (by `_api`), for these registrations.

- Fork: every recorder's flusher is asked to end, then all are waited for, together, at
  most `FORK_JOIN_TIMEOUT` (a flusher stuck in a hung resolver must not hold a fork for
  long); the locks an emitter or the flusher may hold are taken, so that a child never
  inherits one held. After the fork the parent starts its flushers again, and the child
  starts its own, with empty counts.
- Python 3.13 counts the process's threads *after* the after-fork hooks, so a flusher
  started again there makes every fork warn ("This process is multi-threaded"). From 3.13
  on, the parent's flushers start again at the next garbage collection (a `gc.callbacks`
  entry, which any running program reaches within a few hundred allocations), or at the
  next `flush()`, `close()` or `configure()`, whichever comes first. Counting is not
  delayed, only the periodic send. With `gc.disable()`, only those calls (and the exit) send.
- Exit: one budget of `DEFAULT_TIMEOUT` for all recorders, their last flushes asked for at
  once; run once, from `atexit` or from multiprocessing's finalizers (a multiprocessing child
  ends with `os._exit`, past `atexit`, but after those).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
import time
from typing import Any

from ._flusher import FORK_JOIN_TIMEOUT, wait_paused
from ._recorder import DEFAULT_TIMEOUT, Recorder, _instances
from ._series import _FOLD_LOCK

_DEFER_RESTART = sys.version_info >= (3, 13)
_pending: list[Recorder] = []  # parents' recorders to start again at the next collection
_exit_lock = threading.Lock()
_exited = False


def _recorders() -> list[Recorder]:
    return list(_instances)


def _before_fork() -> None:
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
        recorder._before_fork()
    _FOLD_LOCK.acquire()


def _after_fork_parent() -> None:
    _FOLD_LOCK.release()
    for recorder in _recorders():
        with contextlib.suppress(Exception):
            recorder._after_fork_parent(start=not _DEFER_RESTART)
            if _DEFER_RESTART:
                _pending.append(recorder)
    if _DEFER_RESTART and _restart_pending not in gc.callbacks:
        gc.callbacks.append(_restart_pending)


def _after_fork_child() -> None:
    _FOLD_LOCK.release()
    _pending.clear()
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_restart_pending)
    for recorder in _recorders():
        with contextlib.suppress(Exception):
            recorder._after_fork_child()


def _restart_pending(phase: str, info: dict[str, Any]) -> None:
    """gc callback (3.13+): start the flushers that a fork stopped, once the fork is over."""
    del phase, info
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_restart_pending)
    while _pending:
        recorder = _pending.pop()
        with contextlib.suppress(Exception):
            recorder._schedule.resume(recorder)


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
