"""The sending side of a recorder (`Sender`): its backend, its faults and its own counts.

Touched by whoever sends (the flusher thread, a host's thread, or, at interpreter shutdown,
the last thread left), one at a time: making a backend (which may resolve a name), sending
a batch, counting what could not be sent by kind of fault, and logging, once per kind,
with no lock of ours held. It knows nothing of when it is called: that is the delivery's.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .._wire.transport import FAULT_ENCODE, FAULT_KINDS, FAULT_OTHER, RESOLVE_BACKOFF, fault_kind
from .backend import Backend, MemoryBackend, make_backend
from .batch import Batch
from .config import Config, datadog_target
from .drops import show
from .family import Counter, Family
from .names import METRIC_DROPPED_INPUTS_TOTAL, METRIC_SEND_ERRORS_TOTAL
from .series import CounterSeries

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


class Sender:
    """A backend, made and remade from the active configuration, and what sending it cost.

    `families` gives the recorder's families (read for the zeros a Prometheus-fed receiver
    needs); `counts_in` names the library's own counters, once they are made.
    """

    def __init__(self, config: Config, families: Callable[[], list[Family]]) -> None:
        self.active = config  # the configuration the backend was made from
        self.backend: Backend | None = None
        self.retry_at = 0.0  # no new backend before this (monotonic) after a failed make
        self.make_fault: tuple[str, BaseException | None] = (FAULT_OTHER, None)
        self.logged: set[object] = set()
        self.stats = Stats()
        self.failed = False  # this flush lost values for a fault of ours (see Recorder._serve)
        # The first dropped input of each (metric, reason), kept by the emitting thread for the
        # sender's log line: (label key, value).
        self.first_drops: dict[tuple[str, str], tuple[str, object]] = {}
        self._families = families
        self.dropped: Counter | None = None
        self.send_errors: Counter | None = None
        self._fault_counts: dict[str, CounterSeries] = {}

    def counts_in(self, send_errors: Counter, dropped: Counter | None) -> None:
        """Count faults in `send_errors` and read drops from `dropped` (the recorder's own)."""
        self.send_errors = send_errors
        self.dropped = dropped
        self._fault_counts = {kind: send_errors.series(kind=kind) for kind in FAULT_KINDS}

    def switch(self, config: Config, backend: Backend | None) -> None:
        """From now on send to `backend` (made from `config` when None), the old one closed."""
        self.close_backend()
        self.active = config
        self.backend = backend
        self.retry_at = 0.0
        self.logged = {k for k in self.logged if not (isinstance(k, tuple) and k[0] == "fault")}

    def after_fork_child(self, config: Config, memory: bool) -> None:
        """A forked child: its own counts and backend (`memory`: an empty one, else made anew)."""
        self.active = config
        self.stats = Stats()
        backend = self.backend
        self.backend = MemoryBackend() if memory else None
        if backend is not None and not isinstance(backend, MemoryBackend):
            with contextlib.suppress(Exception):
                backend.close()  # the child's copy of the socket only

    def log_once(self, key: object, message: str, *args: object) -> None:
        if key not in self.logged:
            self.logged.add(key)
            with contextlib.suppress(Exception):  # a raising handler must not stop a flush or reach a call
                log.warning(message, *args)

    def prepare(self) -> None:
        if self.backend is None and time.monotonic() >= self.retry_at:
            self.make()

    def retire(self) -> None:
        if not isinstance(self.backend, MemoryBackend):  # memory holds no resource, and tests read it
            self.close_backend()

    def account(self, batch: Batch) -> None:
        """Keep the library's own counts for stats() and log new drops once (no lock held)."""
        stats = self.stats
        for series, n in batch.counts:
            if series.family is self.dropped:
                key = (series.labels["metric"], series.labels["reason"])
                stats.dropped_inputs[key] = stats.dropped_inputs.get(key, 0) + n
                first = self.first_drops.pop(key, None)
                self.log_once(
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

    def make(self) -> Backend | None:
        active = self.active
        if active.backend == "datadog" and active.host is None and active.port is None and active.socket_path is None:
            for ignored in datadog_target()[1]:  # the datadog client only logs these at debug or to its own logger
                if ignored not in _ENVIRONMENT_LOGGED:  # once per process, whichever instance sees it first
                    _ENVIRONMENT_LOGGED.add(ignored)
                    self.log_once(("environment", ignored), "sip-statsd: ignoring %s", ignored)
        try:
            self.backend = make_backend(self.active, self.on_fault)
        except Exception as error:  # no client, no send: count it, retry after a back-off
            self.make_fault = (fault_kind(error), error)
            self.retry_at = time.monotonic() + RESOLVE_BACKOFF
            return None
        return self.backend

    def send(self, batch: Batch) -> None:
        backend = self.backend
        fresh = self._unzeroed(backend)
        if not batch and not fresh:
            return
        if backend is None and time.monotonic() >= self.retry_at:
            backend = self.make()
            fresh = self._unzeroed(backend)
        if backend is None:
            self.on_fault(*self.make_fault, batch.values)
            return
        if fresh:
            backend.zeroed.update(fresh)  # type: ignore[attr-defined]
            batch = self._with_zeros(batch, fresh)
        before = backend.lines_sent
        if isinstance(backend, MemoryBackend):
            backend.on_fault = self.on_fault  # what it cannot keep is counted here
        try:
            backend.send(batch)
        except Exception as error:  # a bug of ours: what it held is counted as lost, never as sent
            self.on_fault(FAULT_OTHER, error, batch.values)
            self.failed = True
        self.stats.flushes += 1
        self.stats.lines_sent += backend.lines_sent - before

    def _unzeroed(self, backend: Backend | None) -> list[Family]:
        """The counter families `backend` wants a 0 for and has not had one (its receiver feeds
        Prometheus: `zeroed` is the set of families it had zeros for), those defined since too."""
        zeroed = getattr(backend, "zeroed", None)
        if zeroed is None:
            return []
        families = self._families()
        return [family for family in families if family.kind == "count" and family not in zeroed]

    def _with_zeros(self, batch: Batch, families: list[Family]) -> Batch:
        """`batch` plus a 0 for every series of `families` it lacks (once per backend).

        For receivers that feed Prometheus: a series exists there only once a line names it,
        and a ratio over a series that never arrived is empty, not 0.
        """
        have = {series for series, _ in batch.counts}
        zeros = [(series, 0) for family in families for series in family._by_values.values() if series not in have]
        return Batch([*batch.counts, *zeros], batch.samples, batch.gauges, batch.seen)  # type: ignore[list-item]

    def on_fault(self, kind: str, error: BaseException | None, values: int) -> None:
        self._fault_counts[kind].inc(values)
        if kind == FAULT_ENCODE:
            self.failed = True
        self.log_once(
            ("fault", kind),
            "sip-statsd: cannot send to %s (%s: %s); dropping %d value(s), counting in %s, "
            "logged once per kind of fault",
            self.active.describe_target(),
            kind,
            error,
            values,
            METRIC_SEND_ERRORS_TOTAL,
        )

    def close_backend(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception as error:
                self.log_once(("close", type(error)), "sip-statsd: closing the backend failed: %r", error)
