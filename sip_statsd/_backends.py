"""Backends: from a flushed batch to datagrams on a `Transport` (datadog's in `_dogstatsd`).

Every backend is made and used on the sending side (the flusher thread), never on an
emitting thread, so a slow DNS answer or a dead agent costs the SIP service nothing. A
backend never raises out of `send`: every value it cannot deliver is reported through
`on_fault(kind, error, values)` by the transport.

From `statsd` (pystatsd) we take its line formatting and pipeline packing for plain
StatsD, sent through our transport (connected, so a dead agent is seen and counted); what
we take from `datadog`, and why not its send path, is said in `_dogstatsd`.
"""

from __future__ import annotations

import threading
from typing import Protocol

from statsd import StatsClient

from ._batch import Batch, exact_counts
from ._config import Config
from ._dogstatsd import DatadogBackend
from ._series import Series
from ._transport import (
    FAULT_KINDS,
    FAULT_RESOLVE,
    RESOLVE_BACKOFF,
    Address,
    FaultHandler,
    Transport,
    connect_unix_datagram,
    fault_kind,
)

__all__ = [
    "FAULT_KINDS",
    "FAULT_RESOLVE",
    "RESOLVE_BACKOFF",
    "Backend",
    "Batch",
    "MemoryBackend",
    "OffBackend",
    "fault_kind",
    "make_backend",
]


class Backend(Protocol):
    def send(self, batch: Batch) -> None: ...

    def close(self) -> None: ...

    @property
    def lines_sent(self) -> int: ...


class OffBackend:
    """Sends nothing."""

    lines_sent = 0

    def send(self, batch: Batch) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryBackend:
    """Keeps every flushed value in process, for the capture API."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[Series, int] = {}
        self.samples: dict[Series, list[float]] = {}
        self.gauges: dict[Series, float] = {}  # the last level sent
        self.lines_sent = 0

    def send(self, batch: Batch) -> None:
        with self._lock:
            for series, n in batch.counts:
                self.counts[series] = self.counts.get(series, 0) + n
            for dist, values in batch.samples:
                self.samples.setdefault(dist, []).extend(values)
            self.gauges.update(batch.gauges)
            self.lines_sent += batch.values

    def snapshot(self) -> tuple[dict[Series, int], dict[Series, list[float]]]:
        with self._lock:
            return dict(self.counts), {s: list(v) for s, v in self.samples.items()}

    def gauge_levels(self) -> dict[Series, float]:
        with self._lock:
            return dict(self.gauges)

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()
            self.samples.clear()
            self.gauges.clear()

    def close(self) -> None:
        pass


# --- statsd ----------------------------------------------------------------------------


class _StatsClient(StatsClient):  # type: ignore[misc]  # statsd ships no type information (Any base)
    """pystatsd's formatting and pipeline, sending through our transport."""

    def __init__(self, transport: Transport, prefix: str | None) -> None:
        # Not StatsClient.__init__: it resolves the name and opens an unconnected socket.
        self._transport = transport
        self._prefix = prefix
        self._maxudpsize = transport.address.payload

    def _send(self, data: str) -> None:
        lines = data.count("\n") + 1
        self._transport.send(((data.encode("ascii"), lines, lines),))

    def close(self) -> None:
        self._transport.close()


def flavored_name(series: Series, flavor: str, constant_tags: tuple[str, ...]) -> str:
    """The series' name with its labels folded in, as the statsd `flavor` writes it."""
    pairs = [t.split(":", 1) for t in (*series.tags, *constant_tags)]
    if flavor == "influxdb":
        return series.name + "".join(f",{k}={v}" for k, v in pairs)
    if flavor == "graphite":
        return series.name + "".join(f";{k}={v}" for k, v in pairs)
    return ".".join((series.name, *series.values))


class StatsdBackend:
    """`statsd.StatsClient` pipeline; labels folded into the name; distributions as `|ms`."""

    def __init__(self, config: Config, on_fault: FaultHandler) -> None:
        self._config = config
        if config.socket_path is not None:
            address = Address(socket_path=config.socket_path)
            transport = Transport(address, on_fault, lambda a: connect_unix_datagram(a.socket_path or ""))
        else:
            address = Address(host=config.host or "localhost", port=config.port or 8125)
            transport = Transport(address, on_fault)
        self._transport = transport
        self._client = _StatsClient(transport, config.prefix)
        self._names: dict[Series, str] = {}

    @property
    def lines_sent(self) -> int:
        return self._transport.lines_sent

    def _name(self, series: Series) -> str:
        name = self._names.get(series)
        if name is None:
            name = flavored_name(series, self._config.flavor, self._config.constant_tags)
            self._names[series] = name
        return name

    def send(self, batch: Batch) -> None:
        pipe = self._client.pipeline()
        for series, n in batch.counts:
            name = self._name(series)
            for part in exact_counts(n):
                pipe.incr(name, part)
        for dist, values in batch.samples:
            name = self._name(dist)
            for value in values:
                # Not pipe.timing(): it writes six decimals, turning 1.5e-07 into 0.000000.
                pipe._send_stat(name, f"{value}|ms", 1)
        for gauged, level in batch.gauges:
            # A signed StatsD gauge is a delta: pystatsd sends a level below 0 as `0|g`, then it.
            pipe.gauge(self._name(gauged), level)
        pipe.send()

    def close(self) -> None:
        self._client.close()


def make_backend(config: Config, on_fault: FaultHandler) -> Backend:
    """Make the backend `config` names (on the sending side: it may touch the network)."""
    if config.backend == "datadog":
        return DatadogBackend(config, on_fault)
    if config.backend == "statsd":
        return StatsdBackend(config, on_fault)
    if config.backend == "memory":
        return MemoryBackend()
    return OffBackend()
