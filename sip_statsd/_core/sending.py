"""The sending side of a recorder: its backend, its faults and its own counts.

Touched by the flusher thread only (or, at interpreter shutdown, by the last thread left):
making a backend (which may resolve a name), sending a batch, counting what could not be
sent by kind of fault, and logging, once per kind, with no lock of ours held.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

from .._wire.transport import FAULT_ENCODE, FAULT_OTHER, RESOLVE_BACKOFF, fault_kind
from .backend import Backend, MemoryBackend, make_backend
from .batch import Batch
from .config import Config, datadog_target
from .drops import show
from .family import Counter, Family
from .names import METRIC_DROPPED_INPUTS_TOTAL, METRIC_SEND_ERRORS_TOTAL
from .series import CounterSeries, OwnedLock

log = logging.getLogger("sip_statsd")
_ENVIRONMENT_LOGGED: set[str] = set()  # DD_* values ignored, as logged


@dataclass
class Stats:
    """What the recorder has seen since it was made: a health check, not a metric.

    `send_errors` counts metric values (a counter's total, or one sample) that could not
    be delivered, by kind; `lines_sent` counts lines the network took (a packed line
    carries many samples).
    """

    dropped_inputs: dict[tuple[str, str], int] = field(default_factory=dict)
    send_errors: dict[str, int] = field(default_factory=dict)
    flushes: int = 0
    lines_sent: int = 0


class Sending:
    """The flusher's half of a recorder (see `Recorder`, which is one)."""

    dropped: Counter | None
    send_errors: Counter
    _fault_counts: dict[str, CounterSeries]
    _families: dict[str, Family]
    _lock: OwnedLock

    def _init_sending(self, config: Config) -> None:
        self._active = config
        self._backend: Backend | None = None
        self._retry_at = 0.0  # no new backend before this (monotonic) after a failed make
        self._make_fault: tuple[str, BaseException | None] = (FAULT_OTHER, None)
        self._logged: set[object] = set()
        self._stats = Stats()
        self._failed = False  # this flush lost values for a fault of ours (see Recorder._serve)
        # The first dropped input of each (metric, reason), kept by the emitting thread for the
        # flusher's log line: (label key, value).
        self._first_drops: dict[tuple[str, str], tuple[str, object]] = {}

    def _log_once(self, key: object, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            with contextlib.suppress(Exception):  # a raising handler must not stop a flush or reach a call
                log.warning(message, *args)

    def _prepare(self) -> None:
        if self._backend is None and time.monotonic() >= self._retry_at:
            self._make()

    def _retire(self) -> None:
        if not isinstance(self._backend, MemoryBackend):  # memory holds no resource, and tests read it
            self._close_backend()

    def _account(self, batch: Batch) -> None:
        """Keep the library's own counts for stats() and log new drops once (no lock held)."""
        stats = self._stats
        for series, n in batch.counts:
            if series.family is self.dropped:
                key = (series.labels["metric"], series.labels["reason"])
                stats.dropped_inputs[key] = stats.dropped_inputs.get(key, 0) + n
                first = self._first_drops.pop(key, None)
                self._log_once(
                    key,
                    "sip-statsd: dropped %d input(s) to %s (%s)%s; counted in %s, "
                    "logged once per metric and reason; strict=True raises with the value",
                    n,
                    *key,
                    f", the first {first[0]}={show(first[1])}" if first else "",
                    METRIC_DROPPED_INPUTS_TOTAL,
                )
            elif series.family is self.send_errors:
                kind = series.labels["kind"]
                stats.send_errors[kind] = stats.send_errors.get(kind, 0) + n

    def _make(self) -> Backend | None:
        active = self._active
        if active.backend == "datadog" and active.host is None and active.port is None and active.socket_path is None:
            for ignored in datadog_target()[1]:  # the datadog client only logs these at debug or to its own logger
                if ignored not in _ENVIRONMENT_LOGGED:  # once per process, whichever instance sees it first
                    _ENVIRONMENT_LOGGED.add(ignored)
                    self._log_once(("environment", ignored), "sip-statsd: ignoring %s", ignored)
        try:
            self._backend = make_backend(self._active, self._on_fault)
        except Exception as error:  # no client, no send: count it, retry after a back-off
            self._make_fault = (fault_kind(error), error)
            self._retry_at = time.monotonic() + RESOLVE_BACKOFF
            return None
        return self._backend

    def _send(self, batch: Batch) -> None:
        backend = self._backend
        fresh = self._unzeroed(backend)
        if not batch and not fresh:
            return
        if backend is None and time.monotonic() >= self._retry_at:
            backend = self._make()
            fresh = self._unzeroed(backend)
        if backend is None:
            self._on_fault(*self._make_fault, batch.values)
            return
        if fresh:
            backend.zeroed.update(fresh)  # type: ignore[attr-defined]
            batch = self._with_zeros(batch, fresh)
        before = backend.lines_sent
        if isinstance(backend, MemoryBackend):
            backend.on_fault = self._on_fault  # what it cannot keep is counted here
        try:
            backend.send(batch)
        except Exception as error:  # a bug of ours: what it held is counted as lost, never as sent
            self._on_fault(FAULT_OTHER, error, batch.values)
            self._failed = True
        self._stats.flushes += 1
        self._stats.lines_sent += backend.lines_sent - before

    def _unzeroed(self, backend: Backend | None) -> list[Family]:
        """The counter families `backend` wants a 0 for and has not had one (its receiver feeds
        Prometheus: `zeroed` is the set of families it had zeros for), those defined since too."""
        zeroed = getattr(backend, "zeroed", None)
        if zeroed is None:
            return []
        with self._lock:
            families = list(self._families.values())
        return [family for family in families if family.kind == "count" and family not in zeroed]

    def _with_zeros(self, batch: Batch, families: list[Family]) -> Batch:
        """`batch` plus a 0 for every series of `families` it lacks (once per backend).

        For receivers that feed Prometheus: a series exists there only once a line names it,
        and a ratio over a series that never arrived is empty, not 0.
        """
        have = {series for series, _ in batch.counts}
        zeros = [(series, 0) for family in families for series in family._by_values.values() if series not in have]
        return Batch([*batch.counts, *zeros], batch.samples, batch.gauges, batch.seen)  # type: ignore[list-item]

    def _on_fault(self, kind: str, error: BaseException | None, values: int) -> None:
        self._fault_counts[kind].inc(values)
        if kind == FAULT_ENCODE:
            self._failed = True
        self._log_once(
            ("fault", kind),
            "sip-statsd: cannot send to %s (%s: %s); dropping %d value(s), counting in %s, "
            "logged once per kind of fault",
            self._active.describe_target(),
            kind,
            error,
            values,
            METRIC_SEND_ERRORS_TOTAL,
        )

    def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception as error:
                self._log_once(("close", type(error)), "sip-statsd: closing the backend failed: %r", error)
