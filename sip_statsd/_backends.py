"""Backends: thin adapters from a flushed batch to a well-kept client.

Every backend is made and used on the sending side (the flusher thread, or the thread
that closes the recorder), never on an emitting thread, so a slow DNS answer or a dead
agent costs the SIP service nothing. A backend never raises out of `send`: each packet
it cannot deliver is reported through `on_fault(kind, error, lines)`.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._config import Config
from ._family import CounterSeries, DistributionSeries, Series

FaultHandler = Callable[[str, BaseException | None, int], None]

# The `kind` label of sip_statsd_send_errors_total.
FAULT_RESOLVE = "resolve"  # the agent's host name does not resolve
FAULT_REFUSED = "refused"  # nothing listens at the address (ICMP port unreachable, no UDS peer)
FAULT_NO_SOCKET = "no_socket"  # the Unix socket path does not exist
FAULT_DROPPED = "dropped"  # the socket would block, its buffer is full, or the packet too big
FAULT_OTHER = "other"
FAULT_KINDS = (FAULT_RESOLVE, FAULT_REFUSED, FAULT_NO_SOCKET, FAULT_DROPPED, FAULT_OTHER)

# After a failed name resolution, no backend is made again for this long (sends are
# counted as dropped): a resolver that takes seconds to say no must not hold the flusher.
RESOLVE_BACKOFF = 5.0


def fault_kind(error: BaseException | None) -> str:
    if error is None:
        return FAULT_DROPPED
    if isinstance(error, socket.gaierror | socket.herror):
        return FAULT_RESOLVE
    if isinstance(error, ConnectionRefusedError):
        return FAULT_REFUSED
    if isinstance(error, FileNotFoundError):
        return FAULT_NO_SOCKET
    if isinstance(error, BlockingIOError | TimeoutError):
        return FAULT_DROPPED
    return FAULT_OTHER


@dataclass
class Batch:
    """What one flush hands to a backend: summed counters and every distribution sample."""

    counts: list[tuple[CounterSeries, int]] = field(default_factory=list)
    samples: list[tuple[DistributionSeries, list[float]]] = field(default_factory=list)
    gauges: list[tuple[Series, float]] = field(default_factory=list)  # each gauge's level now

    def __bool__(self) -> bool:
        return bool(self.counts or self.samples or self.gauges)

    @property
    def lines(self) -> int:
        return len(self.counts) + sum(len(v) for _, v in self.samples) + len(self.gauges)


class Backend(Protocol):
    def send(self, batch: Batch) -> None: ...

    def close(self) -> None: ...


class OffBackend:
    """Sends nothing."""

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

    def send(self, batch: Batch) -> None:
        with self._lock:
            for series, n in batch.counts:
                self.counts[series] = self.counts.get(series, 0) + n
            for dist, values in batch.samples:
                self.samples.setdefault(dist, []).extend(values)
            self.gauges.update(batch.gauges)

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


# --- datadog ---------------------------------------------------------------------------

_capture = threading.local()


class _QuietDatadogLog(logging.Filter):
    """Keeps datadog's per-packet warnings out of the user's log while we send.

    datadog's client logs a WARNING (and reopens its socket) for about every other packet
    sent to a closed UDP port. While our sender is inside the client, its records are
    taken here instead, so the recorder can count them and log once per kind of fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        taken: list[logging.LogRecord] | None = getattr(_capture, "records", None)
        if taken is None:
            return True
        taken.append(record)
        return False


_QUIET = _QuietDatadogLog()


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    return record.args if isinstance(record.args, tuple) else ()


@functools.cache  # one subclass, made when the first datadog backend is
def _datadog_client_class() -> type[Any]:
    from datadog.dogstatsd.base import DogStatsd

    class _Client(DogStatsd):
        on_fault: FaultHandler

        def _xmit_packet(self, packet: str, is_telemetry: bool, *args: Any, **kwargs: Any) -> Any:
            records: list[logging.LogRecord] = []
            _capture.records = records
            try:
                sent = super()._xmit_packet(packet, is_telemetry, *args, **kwargs)
            finally:
                _capture.records = None
            if sent is False:
                error = next(
                    (a for r in records for a in _args(r) if isinstance(a, BaseException)),
                    None,
                )
                self.on_fault(fault_kind(error), error, packet.count("\n") + (not packet.endswith("\n")))
            return sent

    return _Client


class DatadogBackend:
    """`datadog.dogstatsd.DogStatsd`, buffered: many lines per datagram, sent on flush."""

    def __init__(self, config: Config, on_fault: FaultHandler) -> None:
        logging.getLogger("datadog.dogstatsd").addFilter(_QUIET)  # idempotent
        client = _datadog_client_class()(
            host=config.host,
            port=config.port,
            socket_path=config.socket_path,
            namespace=config.prefix,
            constant_tags=list(config.constant_tags),
            disable_buffering=False,
            flush_interval=0,  # no thread of its own: we flush it after each batch
            disable_aggregation=True,  # we aggregate already
            disable_telemetry=True,  # our own send-error counter covers it
            track_instance=False,  # our fork handling replaces the client in a child
        )
        client.on_fault = on_fault
        if client.socket_path is None:
            # Resolve once now, on the flusher, so an unknown host fails the make (and the
            # recorder backs off) instead of being asked again for every packet.
            socket.getaddrinfo(client.host, client.port, 0, socket.SOCK_DGRAM)
        self._client = client

    def send(self, batch: Batch) -> None:
        client = self._client
        increment = client.increment
        for series, n in batch.counts:
            increment(series.name, n, tags=series.tags)
        distribution = client.distribution
        for dist, values in batch.samples:
            name, tags = dist.name, dist.tags
            for value in values:
                distribution(name, value, tags=tags)
        gauge = client.gauge
        for gauged, level in batch.gauges:
            gauge(gauged.name, level, tags=gauged.tags)
        client.flush_buffered_metrics()

    def close(self) -> None:
        self._client.close_socket(quiet=True)


# --- statsd ----------------------------------------------------------------------------


def _statsd_client(config: Config, on_fault: FaultHandler) -> Any:
    from statsd import StatsClient

    class _Client(StatsClient):  # type: ignore[misc]  # statsd ships no type information (Any base)
        """pystatsd's client, but a failed send is reported instead of passed over."""

        def __init__(self) -> None:
            if config.socket_path is not None:
                # Datagram Unix socket (statsd_exporter, Telegraf); the name is the address.
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._addr = config.socket_path
                self._prefix = config.prefix
                self._maxudpsize = 8192
            else:
                super().__init__(config.host or "localhost", config.port or 8125, config.prefix, 1432)
            self._sock.setblocking(False)

        def _send(self, data: str) -> None:
            try:
                self._sock.sendto(data.encode("ascii"), self._addr)
            except OSError as error:
                on_fault(fault_kind(error), error, data.count("\n") + 1)

    return _Client()


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
        self._client = _statsd_client(config, on_fault)
        self._names: dict[Series, str] = {}

    def _name(self, series: Series) -> str:
        name = self._names.get(series)
        if name is None:
            name = flavored_name(series, self._config.flavor, self._config.constant_tags)
            self._names[series] = name
        return name

    def send(self, batch: Batch) -> None:
        pipe = self._client.pipeline()
        for series, n in batch.counts:
            pipe.incr(self._name(series), n)
        for dist, values in batch.samples:
            name = self._name(dist)
            for value in values:
                pipe.timing(name, value)
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
