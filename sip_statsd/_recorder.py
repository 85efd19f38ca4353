"""The recorder: owns the families, flushes them to a backend from one background thread.

Emitters only touch their series' cells (see `CounterSeries`). Everything that may be slow
(making a client, DNS, sends) happens on the flusher thread; `flush()` on another thread
asks the flusher and waits for it, with a deadline. Fork-safe through
`os.register_at_fork` over a `WeakSet` of recorders; flushed at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ._backends import (
    FAULT_KINDS,
    FAULT_RESOLVE,
    RESOLVE_BACKOFF,
    Backend,
    Batch,
    MemoryBackend,
    fault_kind,
    make_backend,
)
from ._config import Config
from ._drops import STRICT_MISS, explain, show
from ._family import (
    Counter,
    CounterSeries,
    DistributionSeries,
    Family,
    InvalidInputError,
)
from ._gauge import take_levels
from ._values import DROP_REASONS, DROP_UNKNOWN_VALUE, METRIC_DROPPED_INPUTS_TOTAL, METRIC_SEND_ERRORS_TOTAL

log = logging.getLogger("sip_statsd")

DEFAULT_TIMEOUT = 5.0
_instances: weakref.WeakSet[Recorder] = weakref.WeakSet()


@dataclass
class Stats:
    """What the recorder has seen since it was made: a health check, not a metric."""

    dropped_inputs: dict[tuple[str, str], int] = field(default_factory=dict)
    send_errors: dict[str, int] = field(default_factory=dict)
    flushes: int = 0
    lines_sent: int = 0


class Recorder:
    """Families, their cells and the machinery that flushes them."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self._families: dict[str, Family] = {}
        self._lock = threading.Lock()  # taking cells, registering families, fork
        self._send_lock = threading.Lock()  # one batch at a time reaches the backend
        self._backend: Backend | None = None
        self._make_retry_at = 0.0  # no new backend before this (monotonic) after a failure
        self._make_fault = "other"
        self._resolve_failed = False  # a send reported FAULT_RESOLVE: remake after a back-off
        self._logged: set[object] = set()
        self._stats = Stats()
        self._make_thread_state()
        self.dropped: Counter | None = None
        # The library's own counters come first and never see caller input: no drop series.
        self.send_errors = Counter(
            METRIC_SEND_ERRORS_TOTAL,
            labels={"kind": FAULT_KINDS},
            description="Datagrams the backend could not deliver, by kind of fault.",
            recorder=self,
        )
        self._fault_counts = {kind: self.send_errors.series(kind=kind)._count for kind in FAULT_KINDS}
        self.dropped = Counter(
            METRIC_DROPPED_INPUTS_TOTAL,
            labels={"metric": (), "reason": DROP_REASONS},
            description="Inputs dropped by soft enforcement, by metric and reason.",
            recorder=self,
            _allow_empty=True,
        )
        _instances.add(self)
        self._start()

    # --- families -----------------------------------------------------------------------

    def _register(self, family: Family) -> None:
        with self._lock:
            if family.name in self._families:
                raise ValueError(f"a metric named {family.name!r} is already defined")
            self._families[family.name] = family
        if self.dropped is not None:  # None while the library's own two counters are made
            self._bind_drops(family)

    def _bind_drops(self, family: Family) -> None:
        dropped = self.dropped
        assert dropped is not None
        with self._lock:
            dropped._add_value("metric", family.name)
        family._drops = {reason: dropped.series(metric=family.name, reason=reason) for reason in DROP_REASONS}
        self._apply_strict(family)

    @property
    def families(self) -> tuple[Family, ...]:
        return tuple(self._families.values())

    @property
    def strict(self) -> bool:
        return self.config.strict

    def _apply_strict(self, family: Family) -> None:
        """Point `family`'s helpers at the strict-mode miss, or at its unknown_value drop counter."""
        if family._drops:
            family._set_miss(STRICT_MISS if self.strict else family._drops[DROP_UNKNOWN_VALUE]._count)

    def _drop(self, family: Family, reason: str, key: str, value: object, expected: str | None = None) -> None:
        """Count (or, strict, raise) one input that is not in `family`'s declaration."""
        shown = show(value)
        if self.strict:
            expected = expected or explain(family, reason, key)
            raise InvalidInputError(f"{family.name}: {key}={shown} is not {expected} ({reason})")
        drops = family._drops
        if drops:
            next(drops[reason]._count)
        self._log_once(
            (family.name, reason),
            "sip-statsd: dropped %s=%s for %s (%s); counted in %s, logged once per metric and reason",
            key,
            shown,
            family.name,
            reason,
            METRIC_DROPPED_INPUTS_TOTAL,
        )

    def _log_once(self, key: object, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args)

    # --- flushing -----------------------------------------------------------------------

    def _make_thread_state(self) -> None:
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._started = 0  # flushes begun by the flusher thread
        self._done = 0  # the last flush the flusher thread finished
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="sip-statsd-flusher", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        stop, wake = self._stop, self._wake
        while True:
            wake.wait(self.config.flush_interval)
            wake.clear()
            stopping = stop.is_set()
            with self._cond:
                self._started += 1
                ticket = self._started
            try:
                self._flush_now()
            finally:
                with self._cond:
                    self._done = ticket
                    self._cond.notify_all()
            if stopping:
                return

    def _flush_now(self) -> None:
        """Take every cell and send what it held; never raises."""
        try:
            with self._send_lock:
                batch = self._take()
                if batch:
                    self._send(batch)
        except Exception as error:  # a bug of ours must not kill the flusher
            self._log_once(("internal", type(error)), "sip-statsd: flush failed: %r", error)

    def _take(self) -> Batch:
        batch = Batch()
        stats = self._stats
        with self._lock:
            for family in self._families.values():
                if family.kind == "count":
                    for series in family._by_values.values():
                        assert isinstance(series, CounterSeries)
                        n = series._take()
                        if n:
                            batch.counts.append((series, n))
                elif family.kind == "gauge":  # a level, sent every flush once it has one
                    take_levels(family, batch.gauges)
                else:
                    for series in family._by_values.values():
                        assert isinstance(series, DistributionSeries)
                        values = series._take()
                        if values:
                            batch.samples.append((series, values))
        for series, n in batch.counts:
            if series.family is self.dropped:
                key = (series.labels["metric"], series.labels["reason"])
                stats.dropped_inputs[key] = stats.dropped_inputs.get(key, 0) + n
                self._log_once(
                    key,
                    "sip-statsd: dropped %d input(s) to %s (%s); counted in %s, "
                    "logged once; strict=True raises with the value",
                    n,
                    *key,
                    METRIC_DROPPED_INPUTS_TOTAL,
                )
            elif series.family is self.send_errors:
                kind = series.labels["kind"]
                stats.send_errors[kind] = stats.send_errors.get(kind, 0) + n
        return batch

    def _send(self, batch: Batch) -> None:
        backend = self._backend
        if backend is None:
            if time.monotonic() < self._make_retry_at:  # backing off after a failed make
                self._on_fault(self._make_fault, None, batch.lines)
                return
            try:
                backend = self._backend = make_backend(self.config, self._on_fault)
            except Exception as error:  # no client, no send: count it all, retry after a back-off
                self._back_off(fault_kind(error))
                self._on_fault(self._make_fault, error, batch.lines)
                return
        self._resolve_failed = False
        backend.send(batch)
        self._stats.flushes += 1
        self._stats.lines_sent += batch.lines
        if self._resolve_failed:  # the name stopped resolving: drop the client, remake later
            self._backend = None
            backend.close()
            self._back_off(FAULT_RESOLVE)

    def _back_off(self, fault: str) -> None:
        self._make_fault = fault
        self._make_retry_at = time.monotonic() + RESOLVE_BACKOFF

    def _on_fault(self, kind: str, error: BaseException | None, lines: int) -> None:
        self._resolve_failed |= kind == FAULT_RESOLVE
        next(self._fault_counts[kind])
        self._log_once(
            ("fault", kind),
            "sip-statsd: cannot send to %s (%s: %s); dropping %d line(s), counting in %s, "
            "logged once per kind of fault",
            self.config.describe_target(),
            kind,
            error,
            lines,
            METRIC_SEND_ERRORS_TOTAL,
        )

    def _flusher_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    def flush(self, timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        """Send everything recorded so far; True once sent, False if `timeout` ran out first."""
        thread = self._thread
        if not self._flusher_alive() or threading.current_thread() is thread:
            self._flush_now()
            return True
        with self._cond:
            wanted = self._started + 1
            self._wake.set()
            return self._cond.wait_for(lambda: self._done >= wanted, timeout)

    def close(self, timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        """Flush, stop the flusher and close the backend. Emits after this are kept for `flush()`."""
        thread = self._thread
        done = True
        if thread is not None and thread.is_alive() and threading.current_thread() is not thread:
            self._stop.set()
            self._wake.set()
            thread.join(timeout)
            done = not thread.is_alive()
        else:
            self._flush_now()
        self._stop.set()
        if done:
            self._close_backend()
        return done

    def _close_backend(self) -> None:
        with self._send_lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception as error:
                self._log_once(("close", type(error)), "sip-statsd: closing the backend failed: %r", error)

    def reconfigure(
        self, config: Config, timeout: float | None = DEFAULT_TIMEOUT, backend: Backend | None = None
    ) -> None:
        """Flush to the current backend, then switch to `config` (restarting a closed flusher).

        `backend`, if given, is used as it is (the capture API restores an outer capture's).
        """
        self.flush(timeout)
        self._close_backend()
        with self._send_lock:
            self.config = config
            self._logged = {k for k in self._logged if not (isinstance(k, tuple) and k[0] == "fault")}
            self._make_retry_at = 0.0
            if backend is None and config.backend == "memory":
                backend = MemoryBackend()  # no network: made at once, so tests can read it
            self._backend = backend
        for family in self._families.values():
            self._apply_strict(family)
        if not self._flusher_alive():
            if self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout)
            self._make_thread_state()
            self._start()
        else:
            self._wake.set()  # pick up a new flush_interval now

    @property
    def backend(self) -> Backend | None:
        return self._backend

    def stats(self) -> Stats:
        """Totals since start: dropped inputs, send errors, flushes and lines sent."""
        self.flush()
        s = self._stats
        return Stats(dict(s.dropped_inputs), dict(s.send_errors), s.flushes, s.lines_sent)

    # --- fork ---------------------------------------------------------------------------

    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork_parent(self) -> None:
        self._lock.release()

    def _after_fork_child(self) -> None:
        # Fresh locks: another parent thread may have held one at the fork.
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        running = self._thread is not None and not self._stop.is_set()
        # The parent sends what it had recorded; the child starts from zero.
        for family in self._families.values():
            for series in family._by_values.values():
                series._take()  # type: ignore[attr-defined]
        backend = self._backend
        self._backend = MemoryBackend() if isinstance(backend, MemoryBackend) else None
        self._make_thread_state()
        if running:
            self._start()


def _all() -> Iterator[Recorder]:
    return iter(list(_instances))


def _for_each(method: Callable[[Recorder], None]) -> Callable[[], None]:
    def run() -> None:
        for recorder in _all():
            method(recorder)

    return run


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_for_each(Recorder._before_fork),
        after_in_parent=_for_each(Recorder._after_fork_parent),
        after_in_child=_for_each(Recorder._after_fork_child),
    )


@atexit.register
def _close_all_at_exit() -> None:
    for recorder in _all():
        recorder.close()


_default: Recorder | None = None
_default_lock = threading.Lock()


def default_recorder() -> Recorder:
    """The process-wide recorder behind the module-level helpers."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Recorder()
    return _default
