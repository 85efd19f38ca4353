"""The process model: fork hooks, the flush at interpreter exit, and at a multiprocessing child's end.

Imported once with the package (by `_sip.api`), for these registrations.

- Fork: every recorder's flusher is asked to end, then all are waited for, together, at
  most `FORK_JOIN_TIMEOUT` (a flusher stuck in a hung resolver must not hold a fork for
  long; a green thread is not waited for in /proc). No lock is held from the before-fork
  hook to the after-fork ones: a host may fork several times in one bracket with Python
  running in between (Kamailio), so a `configure()`, `flush()` or helper there must find
  every lock free. After the fork the parent starts its flushers again, and the child starts
  its own, with empty counts and new locks. A child forked from C without the hooks (uWSGI's
  default) finds out by its pid at its first flush, close or configure.
- Python 3.12 decides whether to warn ("This process is multi-threaded, use of fork() may
  lead to deadlocks") before the after-fork hooks: it sees no thread of ours. Python 3.13
  counts after them, when the parent's flusher has started again, so it warns at every fork,
  as it does for any library that restarts a thread after a fork (datadogpy's included).
  Starting the flusher later instead (at the next garbage collection) was tried and dropped:
  a program whose allocations balance never collects, so the parent would stop flushing, and
  a collection can run inside `Thread.start()` itself.
- Exit: one budget of `DEFAULT_TIMEOUT` for all recorders, their last flushes asked for at
  once; run once, from `atexit` or from multiprocessing's finalizers (a multiprocessing child
  ends with `os._exit`, past `atexit`, but after those). atexit runs the last registered
  first, and ours is registered at import: so, when no handler was registered after it, ours
  first runs those registered before it (an application's shutdown that still emits), then
  flushes (see `_at_exit`).
- SIGTERM: its default disposition ends the process at once (what was not flushed is lost);
  `flush_on_sigterm()` flushes first and then lets the previous disposition act.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from . import series as _series
from .cpython import exit_handler_count, run_exit_handlers
from .flusher import FORK_JOIN_TIMEOUT, wait_paused
from .recorder import DEFAULT_TIMEOUT, Recorder, _instances

_exit_lock = threading.Lock()
_exited = False


def _recorders() -> list[Recorder]:
    return list(_instances)


def _before_fork() -> None:
    if not _watching and "multiprocessing.util" in sys.modules:  # imported since the library was
        with contextlib.suppress(Exception):
            _watch_multiprocessing()
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


def _after_fork_parent() -> None:
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


_at_exit_ran = False


def _at_exit() -> None:
    """The exit flush, after the atexit handlers registered before ours when that is safe.

    atexit runs the last registered first: handlers registered after ours have run already.
    Those registered before ours run after it, so ours runs them first (`run_exit_handlers`),
    then flushes; CPython 3.11-3.13 clear every entry at the end of that inner run, so the
    outer loop finds nothing left. But the inner run calls every entry, the later ones too:
    it is done only when no handler was registered after ours, which would run twice (the
    count of registrations tells: it never goes down). Otherwise what handlers registered
    before the library was imported emit is lost (the README says: import it first).
    `logging.shutdown` (registered when logging was imported, before ours) is kept out of
    that run and called after the flush: what the last flush logs reaches open handlers.
    """
    global _at_exit_ran
    if _at_exit_ran:
        return
    _at_exit_ran = True
    nothing_after_ours = exit_handler_count() == _REGISTERED_BEFORE_OURS + 1
    atexit.unregister(_at_exit)
    if not nothing_after_ours:
        close_all()  # logging.shutdown, registered before ours, runs after this
        return
    atexit.unregister(logging.shutdown)
    with contextlib.suppress(Exception):
        run_exit_handlers()
    close_all()
    logging.shutdown()


_REGISTERED_BEFORE_OURS = 0


def register_exit_flush() -> None:
    """Register the exit flush: called last at `import sip_statsd`, once the modules it imports
    (logging, multiprocessing, the clients' certifi, weakref.finalize) have registered theirs."""
    global _REGISTERED_BEFORE_OURS
    atexit.unregister(_at_exit)
    _REGISTERED_BEFORE_OURS = exit_handler_count()
    atexit.register(_at_exit)


def flush_on_sigterm(timeout: float = 2.0) -> None:
    """On SIGTERM, flush every recorder (at most `timeout` s), then do what SIGTERM did before.

    One line, in the main thread, after any SIGTERM handler of your own:
    `sip_statsd.flush_on_sigterm()`. The previous disposition then acts: the default ends
    the process by the signal (its exit status says SIGTERM), a Python handler is called,
    an ignored signal stays ignored (and keeps flushing). As PID 1 (a container's first
    process), where the kernel gives SIGTERM no default action, the default becomes
    `sys.exit(143)` (atexit handlers and `finally` blocks run).
    """
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        deadline = time.monotonic() + timeout
        for recorder in _recorders():
            with contextlib.suppress(Exception):
                recorder.flush(max(0.0, deadline - time.monotonic()))
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            if os.getpid() == 1:
                # A PID namespace's init (a container's first process) has no default action:
                # the kernel drops the signal. End as a shell reports a death by it (143).
                sys.exit(128 + signum)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _watch_multiprocessing() -> None:
    """Flush at the end of a multiprocessing child: it exits with os._exit, past atexit.

    multiprocessing runs its finalizers (`util.Finalize`, with an exit priority) before
    that `os._exit`, but clears them when a child starts: so one is registered now and
    again in every child, from `util.register_after_fork`. In the main process they run
    from atexit, before the handlers an application registered earlier: there the exit
    flush is `_at_exit`'s, which runs those first.
    """
    global _watching
    _watching = True
    import multiprocessing
    from multiprocessing import util

    def close_in_child() -> None:
        if multiprocessing.parent_process() is not None:
            close_all()

    def register(_: object = None) -> None:
        global _exited
        _exited = False  # a child closes its own recorders at its own end
        util.Finalize(None, close_in_child, exitpriority=100)

    register()
    util.register_after_fork(_watch_multiprocessing, register)


# multiprocessing costs ~9 ms to import: watched now if the program has it, else at the first
# fork after it has (a multiprocessing "fork" child is made after `util` is imported).
_watching = False
if "multiprocessing.util" in sys.modules:
    _watch_multiprocessing()
