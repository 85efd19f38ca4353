"""Host delivery (`delivery="host"`): the host's own thread sends, through `host_tick()`.

For hosts that hold the GIL between their calls into Python (Kamailio's app_python3 does,
from one SIP message to the next): no thread of ours would run there. The recorder then
starts no flusher; `flush()`, `close()` and `host_tick()` send on the caller's thread, and
the configuration allows only a numeric address or a Unix socket, so that thread never
waits for a resolver (see `Config`).

The other flushes served on the caller's thread live here too: one that cannot wait (a
signal handler a green hub runs: `serve_unwaited`) and the last one, when no thread can
start (interpreter shutdown: `serve_here`).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Protocol

from .._wire.transport import FAULT_OTHER, looked_up, without_lookups
from .series import OwnedLock

if TYPE_CHECKING:
    from collections.abc import Sized

    from .config import Config
    from .sending import Sender
    from .taking import Take
    from .thread import ThreadDelivery


class Owner(Protocol):
    """What host delivery uses of its recorder: the whole of it."""

    config: Config
    flusher: ThreadDelivery  # its schedule: the flush numbers a caller's send finishes
    take: Take
    sender: Sender
    _lock: OwnedLock
    _pid: int

    @property
    def _switches(self) -> Sized: ...  # configure()s not yet served: a partial send waits for them

    def flush(self, timeout: float | None = ...) -> bool: ...

    def _serve(self) -> bool: ...


_NEVER = float("inf")
_monotonic = time.monotonic
# How long a sending caller waits for another thread's send (a few datagrams) to end.
HOST_LOCK_TIMEOUT = 5.0
# host_tick() without `recorded` reads the clock once per this many calls: a clock read costs
# more than the rest of the hook, which must stay near the cost of a function call.
TICKS_PER_CLOCK_READ = 64


class HostDelivery:
    """The host's own thread sends: `tick()` at the end of its handlers, and the flushes served
    on a caller's thread (host delivery's, a green hub's signal handler's, the last at exit).

    One for the life of its recorder (`sip_statsd.host_tick` is its bound `tick`); a forked
    child keeps it and starts it afresh (`after_fork_child`). It owns the sender lock: whoever
    sends (this, or the flusher thread) holds it, one sender at a time.
    """

    def __init__(self, recorder: Owner) -> None:
        self._recorder = recorder
        self.lock = OwnedLock()  # one caller sends at a time
        self._due = _NEVER  # when tick() sends without being told
        self._ticks = TICKS_PER_CLOCK_READ  # calls left before tick() reads the clock
        self._shared_mode = False

    def after_fork_child(self) -> None:
        """A child's own sender lock (a parent's thread may have held it at the fork) and tick."""
        self.lock = OwnedLock()
        self._due = _NEVER
        self._ticks = TICKS_PER_CLOCK_READ
        self._shared_mode = False

    def set_mode(self, config: Config) -> None:
        """Host delivery ticks; shared or thread delivery do not (hold the schedule's condition)."""
        self._shared_mode = config.delivery == "shared"
        self._due = _monotonic() if config.delivery == "host" else _NEVER

    def make_due(self) -> None:
        """The next tick sends everything, as if flush_interval had passed."""
        self._due = 0.0

    def tick(self, recorded: bool = False, metrics: tuple[str, ...] | None = None) -> None:
        """delivery="host": at the end of a host's handler, send from this thread what is due.

        `recorded=True` (the handler recorded something): send it now, one datagram. With
        `metrics` (a tuple of the metric names the handler recorded to, made once), only
        those families are taken and sent, with their drop counts: a few dozen series read
        instead of every one; the rest goes at the next full flush (`flush()`, `close()`,
        exit, or a tick once flush_interval has passed). Without `recorded`: once
        flush_interval has passed since the last full flush, checked every
        `TICKS_PER_CLOCK_READ` calls (a safety net for recordings nobody flagged);
        otherwise it returns at once, for about the cost of a function call. With thread
        delivery it does nothing: the flusher thread sends.
        """
        if self._shared_mode:
            return  # the host's sender reads every process's counts (flush())
        if not recorded:
            ticks = self._ticks - 1
            self._ticks = ticks
            if ticks > 0:
                return
            self._ticks = TICKS_PER_CLOCK_READ
            if _monotonic() < self._due:
                return
        recorder = self._recorder
        if recorder.flusher.schedule.threadless:
            now = _monotonic()
            if (
                metrics is None
                or not recorded
                or now >= self._due
                or recorder._switches
                or recorder._pid != os.getpid()
            ):
                # A full flush: asked, due, or what a configure() left must go first (to its backend).
                self._due = now + recorder.config.flush_interval
                recorder.flush(0.0)
            elif not self._send_some(metrics):
                self._due = now + recorder.config.flush_interval
                recorder.flush(0.0)  # a name that is not a family here: everything, as before

    def _send_some(self, metrics: tuple[str, ...]) -> bool:
        """Send what the families `metrics` names hold, on this thread; False if one is unknown.

        No flush number, no condition: nobody waits for a partial send. Never waits for our
        flusher (still in its last send after a switch from thread delivery), and a signal
        handler that interrupted a take or a send on this thread: the cells stay for the next tick.
        """
        recorder = self._recorder
        thread = recorder.flusher.schedule.thread
        if thread is not None and thread.is_alive():
            return True
        lock = self.lock
        if not lock.acquire_for_fork(HOST_LOCK_TIMEOUT):
            return True  # this thread is in a send already: the next tick sends this
        try:
            if recorder._lock.held_here():
                return True
            with recorder._lock:
                batch = recorder.take.some(metrics)
            if batch is None:
                return False
            if batch:
                recorder.sender.account(batch)
                recorder.sender.send(batch)
        except Exception as error:  # a bug of ours must not reach the host
            recorder.sender.log_once(("internal", type(error)), "sip-statsd: flush failed: %r", error)
        finally:
            lock.release()
        return True

    def serve_on_caller(self, want: int, timeout: float | None = 0.0) -> bool:
        """delivery="host": one flush on the caller's thread (the backend takes a numeric address).

        After a switch from thread delivery our flusher may still be in its last send (a hung
        resolver, say): waited for at most `timeout` (host_tick() never waits for it), then
        False; it ends after that send, and what it leaves goes with the next call.
        """
        lock = self.lock
        schedule = self._recorder.flusher.schedule
        with schedule.cond:
            if not schedule.cond.wait_for(lambda: schedule.thread is None or not schedule.thread.is_alive(), timeout):
                return False
        if not lock.acquire_for_fork(HOST_LOCK_TIMEOUT):
            return False  # this thread is in a send already (a signal handler interrupted it)
        return self._serve_locked(want)

    def serve_unwaited(self, want: int) -> bool:
        """One flush on this thread, waiting for nothing: False if a send is under way.

        For a flush() that cannot wait: under eventlet or gevent, a signal handler (SIGTERM's)
        run while the process idles runs in the hub, which cannot block on a lock or a
        condition; it sends itself, as a host's thread does, one sender at a time.
        """
        if not self.lock.try_acquire():
            return False
        return self._serve_locked(want)

    def _serve_locked(self, want: int) -> bool:
        """Serve flush `want` here, holding the sender lock (released here)."""
        schedule = self._recorder.flusher.schedule
        try:
            with schedule.cond:
                schedule.begun = max(schedule.begun, want)
            ok = self._recorder._serve()
            schedule.finished(want, ok)
        finally:
            self.lock.release()
        return ok

    def serve_here(self, want: int) -> bool:
        """No thread can start (shutdown: 3.12 refuses threads in atexit): flush on this thread.

        A backend is made here only when sending looks up no name (a Unix socket, an address
        literal, `localhost`) or a name this process (or its parent, before a fork) looked up
        already, at the addresses found then: a hung resolver must not hold the exit. For a
        name never looked up, what is left is counted lost and logged.
        """
        recorder = self._recorder
        schedule = recorder.flusher.schedule
        with schedule.cond:
            schedule.begun = max(schedule.begun, want)
        sender = recorder.sender
        name = sender.active.name_to_resolve()
        if sender.backend is None and (name is None or name.lower() == "localhost" or looked_up(name)):
            with without_lookups():  # a name: the addresses this process (or its parent) found
                sender.make()  # never raises: a failure is counted below as the batch's fault
        sender.retry_at = float("inf")  # no new backend in this flush
        if sender.backend is None:
            sender.make_fault = (FAULT_OTHER, RuntimeError("interpreter shutdown: no backend to send with"))
        ok = recorder._serve()
        sender.retire()
        sender.retry_at = 0.0
        schedule.finished(want, ok)
        return ok
