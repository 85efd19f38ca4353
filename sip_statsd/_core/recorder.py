"""The recorder: owns the families and the configuration, and composes the parts that flush them.

It holds a `Take` (reads the cells), a `Sender` (backend, faults, stats) and three deliveries
(who sends when: `ThreadDelivery`, `HostDelivery`, `SharedDelivery`), each an object with
its own module and fork story; here is what ties them: `configure()`'s switches, `flush()`,
`close()` and one flush (`_serve`). Emitters only touch their series' cells (see
`CounterSeries`). Everything that may be slow (making a backend, DNS, sends) happens on
whoever sends, the flusher thread by default; `flush()`, `close()`, `stats()` and
`configure()` on another thread ask it and wait with a deadline (see `flusher.Schedule`).
No lock of ours is held while we send or log, so a logging handler that calls back into us
cannot deadlock the sender.

Process model (fork, exit, multiprocessing): see `process`, over the `WeakSet` of
recorders kept here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .._wire.transport import FAULT_KINDS
from . import series as _series
from .backend import Backend, MemoryBackend
from .batch import Batch
from .child import start_child
from .config import Config
from .drops import FIRST_MISS, STRICT_MISS, explain, show
from .family import Counter, Family
from .host import HostDelivery
from .names import DROP_REASONS, DROP_UNKNOWN_VALUE, METRIC_DROPPED_INPUTS_TOTAL, METRIC_SEND_ERRORS_TOTAL
from .sending import Sender, Stats
from .series import InvalidInputError, OwnedLock
from .shared_delivery import SharedDelivery
from .taking import Take, sampled_counter
from .thread import ThreadDelivery

log = logging.getLogger("sip_statsd")

DEFAULT_TIMEOUT = 5.0
# Reconfigurations waiting for a stuck flusher: past this many, the newest two are folded.
MAX_PENDING_SWITCHES = 8
_instances: weakref.WeakSet[Recorder] = weakref.WeakSet()


@dataclass
class _Switch:
    """A configure(): what was recorded before it goes to the old backend, then the new one."""

    batch: Batch
    config: Config
    backend: Backend | None


class Recorder:
    """Families, their cells and the machinery that flushes them."""

    def __init__(self, config: Config | None = None, *, dormant: bool = False) -> None:
        """`dormant`: start no thread until `wake()`, a flush, a configure() or a close()."""
        self.config = config or Config()
        self._families: dict[str, Family] = {}
        self._lock = OwnedLock()  # taking cells, registering families, fork
        self._configuring = OwnedLock()  # one reconfigure() at a time; a handler's waits its turn
        self._pending_config: dict[int, tuple[Config, Backend | None]] = {}
        self.flusher = ThreadDelivery(self, self.config.flush_interval)  # delivery="thread": our thread sends
        self._switches: deque[_Switch] = deque()  # under the schedule's condition
        self._intended: Backend | None = None  # a backend handed to reconfigure(), for the capture API
        self._helper_roots: weakref.WeakSet[object] = weakref.WeakSet()  # whose functions hold cells (SIP helpers)
        self.sender = Sender(self.config, self._family_list)  # the sending side: one sender at a time
        self._pid = os.getpid()  # a child forked from C without Python's hooks knows itself by this
        self.take = Take(self._families)  # reads the cells (or, delivery="shared", the mapping)
        self.host = HostDelivery(self)  # delivery="host": the host's thread sends (and every send on a caller's)
        self.shared = SharedDelivery(self)  # delivery="shared": every process's counts in one mapping
        self.host_tick = self.host.tick  # bound once: `sip_statsd.host_tick` is this, costs one call
        # Call quality: helpers that precompute from self.config, called after each reconfigure.
        self._config_listeners: list[Callable[[], None]] = []
        self.dropped: Counter | None = None
        # The library's own counters come first and never see caller input: no drop series.
        self.send_errors = Counter(
            METRIC_SEND_ERRORS_TOTAL,
            labels={"kind": FAULT_KINDS},
            description="Metric values the backend could not deliver, by kind of fault.",
            recorder=self,
        )
        self.sampled = sampled_counter(self)
        self.dropped = Counter(
            METRIC_DROPPED_INPUTS_TOTAL,
            labels={"metric": (), "reason": DROP_REASONS},
            description="Inputs dropped by soft enforcement, by metric and reason.",
            recorder=self,
            _allow_empty=True,
        )
        self.sender.counts_in(self.send_errors, self.dropped)
        _instances.add(self)
        if self.config.backend == "memory":
            self.sender.backend = self._intended = MemoryBackend()
        with self.flusher.schedule.cond:
            self._set_delivery(self.config)
            self.flusher.schedule.dormant = dormant
            if not dormant:
                self.flusher.schedule.start(self)

    def wake(self) -> None:
        """Start delivery if nothing has yet (the first use of the process-wide recorder)."""
        self.flusher.wake()

    # --- families -----------------------------------------------------------------------

    def _register(self, family: Family) -> None:
        """Register `family` and bind its drop counters: all or nothing."""
        with self._lock:
            if family.name in self._families:
                raise ValueError(f"a metric named {family.name!r} is already defined")
            shared = self.shared
            shared.check_can_add(family)  # all or nothing: the room is checked before any change
            dropped = self.dropped
            if dropped is not None:  # None while the library's own two counters are made
                dropped._add_value("metric", family.name)
            if (sampled := getattr(self, "sampled", None) if family.kind == "distribution" else None) is not None:
                sampled._add_value("metric", family.name)
            self._families[family.name] = family
            self.take.changed()
            shared.add(dropped, sampled, family)  # delivery="shared": the family's and its drop counters' cells
        if dropped is not None:
            family._drops = {reason: dropped.series(metric=family.name, reason=reason) for reason in DROP_REASONS}
            self._apply_strict(family)
        family._sampled = sampled.series(metric=family.name) if sampled is not None else None

    @property
    def families(self) -> tuple[Family, ...]:
        return tuple(self._families.values())

    @property
    def strict(self) -> bool:
        return self.config.strict

    def _apply_strict(self, family: Family) -> None:
        """Point `family`'s helpers at the strict-mode miss; else, until its first bad value is
        kept for the log, at the first-miss (the slow path names it), then at its drop counter."""
        if family._drops:
            first = (family.name, DROP_UNKNOWN_VALUE) not in self.sender.first_drops
            if self.strict:
                family._set_miss(STRICT_MISS)
            elif first and (family.name, DROP_UNKNOWN_VALUE) not in self.sender.logged:
                family._set_miss(FIRST_MISS)
            else:
                family._set_miss(family._drops[DROP_UNKNOWN_VALUE]._count)

    def _drop(self, family: Family, reason: str, key: str, value: object, expected: str | None = None) -> None:
        """Count (or, strict, raise) one input that is not in `family`'s declaration.

        The value is shown (its repr, bounded) only when it is raised or first logged: a bad
        argument passed on every call costs its repr once, not on every call. Logged by the
        flusher, never here: a logging handler may be an HTTP call, and this is the
        caller's thread. The first value of each metric and reason is kept for that log line.
        """
        if self.strict:
            expected = expected or explain(family, reason, key)
            raise InvalidInputError(f"{family.name}: {key}={show(value)} is not {expected} ({reason})")
        drops = family._drops
        if drops:
            next(drops[reason]._count)
        where = (family.name, reason)
        if where not in self.sender.logged:
            self.sender.first_drops.setdefault(where, (key, value))  # atomic; one per metric and reason
        if family._miss is FIRST_MISS:  # kept: the helpers' fast path counts the next ones
            self._apply_strict(family)

    # --- asking the flusher (any thread) -------------------------------------------------

    def flush(self, timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        """Send everything recorded so far; True once sent, False if `timeout` ran out first.

        The flusher sends; the caller only waits. Called on the flusher itself (a logging
        handler), it asks for another flush and returns False at once.
        """
        self._check_pid()
        schedule = self.flusher.schedule
        with schedule.cond:
            want = schedule.ask()
            started = schedule.start(self)
            if schedule.on_flusher() or (started and schedule.paused):
                return False  # on the flusher, or inside a fork bracket: served when it ends
        if started and self._holds_a_take_lock():
            return False  # a signal handler inside a lock the flusher needs: the flush is asked, not awaited
        with schedule.cond:
            if not started and not schedule.refused and not schedule.threadless:
                started = schedule.start(self)  # a signal handler's configure() switched to thread delivery
            if started:
                try:
                    return schedule.wait(want, timeout)
                except Exception:  # eventlet, gevent: a signal handler their hub runs cannot block
                    refused = None
            else:
                refused = schedule.refused  # no thread can start: shutdown (not a delivery of "host")
        if refused is None:
            return self.host.serve_unwaited(want)
        return self.host.serve_here(want) if refused else self.host.serve_on_caller(want, timeout)

    def _check_pid(self) -> None:
        """In a child forked without Python's fork hooks (from C): start our own delivery.

        Its cells hold what it recorded (and what the parent had not sent at the fork,
        which cannot be told apart without a hook); its locks, thread and socket are new.
        """
        if self._pid != os.getpid():
            _series._FOLD_LOCK = OwnedLock()
            self._after_fork_child(keep_cells=True)

    def close(self, timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        """Flush, stop the flusher and close the backend. Emits after this are kept for `flush()`.

        True once the last flush is done and the flusher has ended (or a `configure()` on
        another thread started it again); False if `timeout` passed first.
        """
        asked = self._ask_close()
        return asked is not None and self._wait_closed(asked, None if timeout is None else time.monotonic() + timeout)

    def _ask_close(self) -> tuple[int, bool] | None:
        """Ask for the last flush and the flusher's end: (flush number, a thread serves it)."""
        self._check_pid()
        schedule = self.flusher.schedule
        with schedule.cond:
            schedule.periodic = False
            want = schedule.ask()
            started = schedule.start(self)
            return None if schedule.on_flusher() else (want, started)

    def _wait_closed(self, asked: tuple[int, bool], deadline: float | None) -> bool:
        want, started = asked
        if not started and self.flusher.schedule.refused:  # no thread can start: interpreter shutdown
            return self.host.serve_here(want)
        if not started:  # delivery="host" (a handler may have switched it since: served here all the same)
            done = self.host.serve_on_caller(want, None if deadline is None else max(0.0, deadline - time.monotonic()))
            self.sender.retire()
            return done
        schedule = self.flusher.schedule
        with schedule.cond:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            return schedule.wait(want, remaining) and schedule.wait_ended(deadline)

    def reconfigure(
        self, config: Config, timeout: float | None = DEFAULT_TIMEOUT, backend: Backend | None = None
    ) -> None:
        """Switch to `config`: what was recorded before goes to the current backend, later emits to the new.

        Never waits for the network: the flusher sends and makes the new backend. `backend`,
        if given, is used as it is (the capture API restores an outer capture's). `timeout`
        is accepted for compatibility and not needed.
        """
        del timeout
        self._check_pid()
        self.shared.check_config(config)
        if self._configuring.held_here():
            # A signal handler (SIGHUP: reload) interrupted a configure() on this thread: the
            # one it interrupted applies this one as it leaves, so this one wins, as it came last.
            self._pending_config[0] = (config, backend)
            return
        while True:
            with self._configuring:
                self._reconfigure(config, backend)
            pending = self._pending_config.pop(0, None)  # one that arrived meanwhile, from a handler
            if pending is None:
                return
            config, backend = pending

    def _reconfigure(self, config: Config, backend: Backend | None) -> None:
        schedule = self.flusher.schedule
        if config == self.config and backend is None and self._intended is None:
            with schedule.cond:  # the same place: nothing to route apart, only (re)start
                schedule.periodic = True
                schedule.start(self)
            return
        if backend is None and config.backend == "memory":
            backend = MemoryBackend()  # no network: made at once, so tests can read it
        if self._holds_a_take_lock():
            # A signal handler interrupted this thread inside a lock the flusher's take holds
            # (our own, a fold's, a gauge's): waiting for the take could wait for ourselves.
            # What was recorded stays in the cells and goes to the new backend.
            batch = Batch()
        else:
            with self._lock:
                batch = self.take.all()
        with schedule.cond:
            switch = _Switch(batch, config, backend)
            if len(self._switches) >= MAX_PENDING_SWITCHES:
                # The flusher is stuck: fold this switch into the newest waiting one, so
                # configure() in a loop cannot grow memory. Its batch then goes to the
                # backend before that one (the configuration in between never sends).
                last = self._switches.pop()
                switch.batch = last.batch.merged(batch)
            self._switches.append(switch)
            self.config = config
            self._intended = backend
            schedule.interval = config.flush_interval
            schedule.periodic = True
            self._set_delivery(config)
            schedule.ask()
            schedule.start(self)
        for family in self._families.values():
            self._apply_strict(family)
        for listener in self._config_listeners:  # call quality: thresholds precomputed by the helpers
            listener()
        schedule.wake()

    @property
    def backend(self) -> Backend | None:
        """The backend handed to the latest reconfigure(), else the one in use."""
        return self._intended if self._intended is not None else self.sender.backend

    def stats(self, timeout: float | None = DEFAULT_TIMEOUT) -> Stats:
        """Totals since start, after a flush (waited for at most `timeout`)."""
        self.flush(timeout)
        s = self.sender.stats
        return Stats(dict(s.dropped_inputs), dict(s.send_errors), s.flushes, s.lines_sent)

    # --- the flusher's side (flusher thread only, or the last thread at shutdown) ----------

    def _serve(self) -> bool:
        """One flush: pending switches first, then what the cells hold. Never raises.

        False if something could not be sent for a fault of ours (a line that would not
        encode, a bug): counted, and said by flush(). A dead agent is counted, not False.
        """
        sender = self.sender
        sender.failed = False
        try:
            while True:
                with self.flusher.schedule.cond:
                    switch = self._switches.popleft() if self._switches else None
                if switch is None:
                    break
                sender.account(switch.batch)  # here, not in configure(): logging is the sender's
                sender.send(switch.batch)
                sender.switch(switch.config, switch.backend)
            with self._lock:
                batch = self.take.all()
            sender.account(batch)
            sender.send(batch)
            sender.prepare()
        except Exception as error:  # a bug of ours must not kill the flusher
            sender.failed = True
            sender.log_once(("internal", type(error)), "sip-statsd: flush failed: %r", error)
        return not sender.failed

    def _prepare(self) -> None:
        self.sender.prepare()

    def _retire(self) -> None:
        self.sender.retire()

    def _holds_a_take_lock(self) -> bool:
        """True if this thread holds a lock the take waits for (a signal handler interrupted it there)."""
        return self._lock.held_here() or self.take.holds_a_lock()

    def _sender_lock(self) -> OwnedLock:
        """Held by whoever sends (the flusher, or a host's thread): one sender at a time."""
        return self.host.lock

    def _family_list(self) -> list[Family]:
        with self._lock:
            return list(self._families.values())

    def _set_delivery(self, config: Config) -> None:
        """Thread, host or shared delivery: each part takes its mode (hold the schedule's condition)."""
        self.flusher.set_mode(config)
        self.host.set_mode(config)
        self.shared.set_mode(config)

    # --- fork (see process; each delivery's own story is in its class) -----------------------

    def _pause_for_fork(self) -> threading.Thread | None:
        return self.flusher.pause_for_fork()

    def _after_fork_parent(self) -> None:
        self.flusher.after_fork_parent()

    def _after_fork_child(self, keep_cells: bool = False) -> None:
        start_child(self, keep_cells)
