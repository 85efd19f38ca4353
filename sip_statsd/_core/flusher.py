"""The flusher thread's schedule: one condition for the life of a recorder.

Why a separate object: the thread holds this and only a weak reference to its recorder,
so an instance nobody references is collected and its thread ends. Every waiter waits
on the same condition for "a flush that began after I asked" (`asked`, `begun`, `done`
only grow), so neither `close()` nor `configure()` can leave a waiter on a condition
that nobody will notify.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Protocol

from .cpython import held_by_this_thread
from .series import OwnedLock

# How long a fork waits for a flusher that is in the middle of a send (a hung resolver,
# say) before it goes on without it.
FORK_JOIN_TIMEOUT = 2.0
# How often an idle flusher looks whether the thread it serves has ended (a child forked
# from a worker thread has no interpreter shutdown to end it: the flusher must not keep it alive).
MAIN_THREAD_CHECK = 0.5
GREEN_SETTLE = 0.01


class Flushing(Protocol):
    def _prepare(self) -> None: ...

    def _serve(self) -> bool: ...

    def _retire(self) -> None: ...

    def _sender_lock(self) -> OwnedLock: ...


class Schedule:
    """When the flusher flushes, and who waits for it. Everything here is under `cond`."""

    def __init__(self, interval: float) -> None:
        self.cond = threading.Condition()
        self.interval = interval
        self.periodic = True  # False after close(): serve what is asked, then end
        self.asked = 0  # the flush number someone waits for
        self.begun = 0
        self.done = 0
        self.failed: set[int] = set()  # flushes that lost values for a fault of ours (the latest few)
        self.paused = False  # a fork is under way: no thread may start
        self.gone = False  # the recorder was collected
        self.threadless = False  # delivery="host": the caller's thread sends, no thread starts
        self.refused = False  # the last start() could not start a thread (interpreter shutdown)
        # Nothing used yet (the process-wide recorder after `import sip_statsd`): no thread
        # starts by itself, not even after a fork, until something asks (start()).
        self.dormant = False
        self.thread: threading.Thread | None = None
        self._due = time.monotonic() + interval

    # --- asked from any thread, under cond --------------------------------------------

    def ask(self) -> int:
        """Ask for a flush that begins after now; return its number (hold `cond`)."""
        want = self.begun + 1
        self.asked = max(self.asked, want)
        self.cond.notify_all()
        return want

    def start(self, owner: Flushing) -> bool:
        """Start the thread if none runs and none may be paused (hold `cond`).

        False when no thread runs and none can start: at interpreter shutdown, or with
        delivery="host" (then the caller serves).
        """
        if self.threadless:
            return False
        self.dormant = False
        if self.paused or self.gone or (self.thread is not None and self.thread.is_alive()):
            return True
        # What the thread's first socket would import (getaddrinfo encodes a host with the idna
        # codec), imported here: a child forked from C while our thread held an import lock
        # would wait for it for ever. Once per process, ~1.5 ms.
        import encodings.idna  # noqa: F401

        thread = threading.Thread(target=_main, args=(weakref.ref(owner), self), name="sip-statsd-flusher", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            self.thread = None
            self.refused = True
            return False
        self.thread = thread
        self.refused = False
        return True

    def rouse(self, owner: Flushing) -> None:
        """Start the thread of a dormant schedule (the first use)."""
        if self.dormant:
            with self.cond:
                if self.dormant:
                    self.start(owner)

    def wait(self, want: int, timeout: float | None) -> bool:
        """Wait (holding `cond`) until flush `want` is done: False if `timeout` passed first or it failed."""
        return self.cond.wait_for(lambda: self.done >= want, timeout) and want not in self.failed

    def on_flusher(self) -> bool:
        return threading.current_thread() is self.thread

    # --- the thread ---------------------------------------------------------------------

    def _next(self) -> int | None:
        """The flush to do next, or None to end the thread (hold `cond`)."""
        while True:
            if self.gone or self.paused or self.threadless:
                return None
            now = time.monotonic()
            if self.asked > self.begun or (self.periodic and now >= self._due):
                self._due = now + self.interval
                self.begun += 1
                return self.begun
            if not self.periodic:
                return None
            self.cond.wait(min(self._due - now, MAIN_THREAD_CHECK))
            if not _process_kept_alive():
                # No thread but ours keeps the process alive (a child forked from a worker
                # thread that returned: no interpreter shutdown will end us): one last flush,
                # then end, so that this thread never keeps the process alive.
                self.periodic = False
                self.asked = max(self.asked, self.begun + 1)

    def finished(self, ticket: int, ok: bool = True) -> None:
        with self.cond:
            self.done = ticket
            if not ok:
                self.failed.add(ticket)
                if len(self.failed) > 64:
                    self.failed.discard(min(self.failed))
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self._due = time.monotonic()  # a new interval takes effect at once
            self.cond.notify_all()

    def _dead(self) -> None:
        with self.cond:
            self.gone = True
            self.cond.notify_all()

    def wait_ended(self, deadline: float | None) -> bool:
        """Wait until the thread has ended, or periodic flushing was asked for again (hold `cond`)."""
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.cond.wait_for(lambda: self.thread is None or self.periodic, remaining)

    # --- fork -----------------------------------------------------------------------------

    def pause(self) -> threading.Thread | None:
        """Ask the thread to end before a fork; return it, to wait for with `wait_paused`.

        None when there is nothing to wait for, or nothing that could be: a fork from a
        signal handler that interrupted this thread while it held `cond` (starting the
        flusher, say), since the flusher cannot end without taking `cond` itself.
        """
        holding = held_by_this_thread(self.cond)
        with self.cond:
            self.paused = True
            self.cond.notify_all()
            thread = self.thread
        return None if holding or thread is threading.current_thread() else thread

    def resume(self, owner: Flushing) -> None:
        """After a fork: threads may start again; start ours."""
        with self.cond:
            self.paused = False
            if not self.dormant and (self.periodic or self.asked > self.begun):
                self.start(owner)


def _main(ref: weakref.ref[Flushing], schedule: Schedule) -> None:
    owner = ref()
    if owner is not None:
        owner._prepare()  # make the backend now: the first real traffic does not pay for it
    del owner
    retired = False
    while True:
        with schedule.cond:
            ticket = schedule._next()
            # Host delivery: the caller sends from now on, with the backend as it is.
            if ticket is None and (retired or schedule.paused or schedule.gone or schedule.threadless):
                if schedule.thread is threading.current_thread():
                    schedule.thread = None
                    schedule.cond.notify_all()  # close() waits for this
                return
        owner = ref()
        if owner is None:
            if ticket is not None:
                schedule.finished(ticket)
            return
        if ticket is None:  # closed and nothing asked: let the backend go, then look again
            owner._retire()
            retired = True
            del owner
            continue
        retired = False
        ok = False
        try:
            # One sender at a time: after a switch to delivery="host" the host's thread
            # sends while this one may still be in its last send (same backend, same socket).
            with owner._sender_lock():
                ok = owner._serve()
        finally:
            del owner  # hold no strong reference while waiting
            schedule.finished(ticket, ok)


def _process_kept_alive() -> bool:
    """True while the main thread or another non-daemon thread runs.

    A server whose main thread returned while its worker threads serve (Python waits for
    them at exit) must go on delivering: the main thread alone does not say the process ends.
    """
    if threading.main_thread().is_alive():
        return True
    me = threading.current_thread()
    return any(not t.daemon and t is not me and t.is_alive() for t in threading.enumerate())


def watch(owner: object, schedule: Schedule) -> None:
    """End `schedule`'s thread when `owner` is collected."""
    finalizer = weakref.finalize(owner, schedule._dead)
    finalizer.atexit = False


def wait_paused(thread: threading.Thread, deadline: float) -> None:
    """Wait, until `deadline`, for `thread` to end and the OS to let it go.

    join() returns a moment before the OS thread has left /proc/self/task, and Python 3.12+
    counts the process's OS threads at fork() to decide whether to warn.
    """
    thread.join(max(0.0, deadline - time.monotonic()))
    native = thread.native_id
    # A green thread (gevent, eventlet) has the native id of the OS thread that runs it, ours:
    # that one never leaves /proc, and there is no other to wait for.
    if native == threading.get_native_id():
        # A green thread: nothing to wait for in /proc. Its hub is given one short turn of
        # its loop (gevent delivers its resolver pool's results there); a child forked
        # before that turn has a hub that never runs the child's own flusher.
        time.sleep(GREEN_SETTLE)
        return
    if native is None or thread.is_alive():
        return
    path = f"/proc/self/task/{native}"
    delay = 0.0001
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(delay)  # the kernel gives no event for a task leaving /proc: poll, briefly
        delay = min(delay * 2, 0.005)
