"""Backends: from a flushed batch to datagrams on a `Transport`.

Every backend is made and used on the sending side (the flusher thread), never on an
emitting thread, so a slow DNS answer or a dead agent costs the SIP service nothing. A
backend never raises out of `send`: every value it cannot deliver is reported through
`on_fault(kind, error, values)` by the transport.

What we still take from the clients, and why:
- `datadog`: its reading of the environment (`DD_DOGSTATSD_URL`, `DD_AGENT_HOST`,
  `DD_DOGSTATSD_PORT`, `DD_ENV`/`DD_SERVICE`/`DD_VERSION`, `DATADOG_TAGS`), its origin
  detection (the container ID from cgroups, `DD_EXTERNAL_ENV`), and its Unix socket set-up
  (the `unix://`, `unixgram://`, `unixstream://` schemes and the socket kind). Its send
  path is not used: it logs its faults instead of raising them and reconnects (resolving
  the name again) after every refused datagram; and formatting each value through it
  costs the flusher more than the helpers cost the caller. We format the lines ourselves,
  from prefixes made once per series and configuration.
- `statsd` (pystatsd): its line formatting and pipeline packing for plain StatsD, sent
  through our transport (connected, so a dead agent is seen and counted).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from datadog.dogstatsd.base import DogStatsd
from datadog.util.format import normalize_tags
from statsd import StatsClient

from ._config import Config
from ._family import CounterSeries, DistributionSeries, Series
from ._transport import (
    FAULT_KINDS,
    FAULT_RESOLVE,
    RESOLVE_BACKOFF,
    Address,
    FaultHandler,
    Transport,
    connect_udp,
    connect_unix_datagram,
    fault_kind,
)
from ._values import DROP_SAMPLE_OVERFLOW

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

# The largest count the agent holds exactly (it parses values as float64).
MAX_EXACT = 2**53


@dataclass
class Batch:
    """What one flush hands to a backend: summed counters and every distribution sample."""

    counts: list[tuple[CounterSeries, int]] = field(default_factory=list)
    samples: list[tuple[DistributionSeries, list[float]]] = field(default_factory=list)
    gauges: list[tuple[Series, float]] = field(default_factory=list)  # each gauge's level now

    def __bool__(self) -> bool:
        return bool(self.counts or self.samples or self.gauges)

    def merged(self, other: Batch) -> Batch:
        """One batch with both: counts summed per series, samples kept up to each series' cap."""
        counts: dict[CounterSeries, int] = dict(self.counts)
        for series, n in other.counts:
            counts[series] = counts.get(series, 0) + n
        samples: dict[DistributionSeries, list[float]] = {s: list(v) for s, v in self.samples}
        for dist, values in other.samples:
            kept = samples.setdefault(dist, [])
            room = dist._cap - len(kept)
            kept.extend(values[: max(room, 0)])
            for value in values[max(room, 0) :]:
                dist.family._drop(DROP_SAMPLE_OVERFLOW, "value", value)
        gauges = dict(self.gauges)
        gauges.update(other.gauges)  # a level: the later one holds
        return Batch(list(counts.items()), list(samples.items()), list(gauges.items()))

    @property
    def values(self) -> int:
        """How many metric values: a counter's total is one, every sample is one, a gauge's level one."""
        return len(self.counts) + sum(len(v) for _, v in self.samples) + len(self.gauges)


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


def _counts(n: int) -> Iterator[int]:
    """A count as lines the agent holds exactly (more than 2**53 goes out in parts)."""
    while n > MAX_EXACT:
        yield MAX_EXACT
        n -= MAX_EXACT
    yield n


# --- datadog ---------------------------------------------------------------------------


class _Datagrams:
    """Packs lines into datagrams of at most `limit` bytes, never splitting a line."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out: list[tuple[bytes, int, int]] = []
        self._parts: list[str] = []
        self._size = -1  # bytes so far, less the newline the first line does not need
        self._values = 0

    def room(self) -> int:
        return self.limit - self._size - 1

    def add(self, line: str, values: int) -> None:
        if len(line) > self.room() and self._parts:
            self.close()
        self._parts.append(line)
        self._size += len(line) + 1
        self._values += values

    def close(self) -> None:
        if self._parts:
            self.out.append(("\n".join(self._parts).encode("ascii"), self._values, len(self._parts)))
            self._parts, self._size, self._values = [], -1, 0


class DatadogBackend:
    """DogStatsD lines formatted here (packed distributions, protocol v1.1) over a `Transport`."""

    def __init__(self, config: Config, on_fault: FaultHandler) -> None:
        # The datadog client reads the DD_* environment and detects the container; it opens
        # no socket and starts no thread here (flush_interval=0, no buffering, no telemetry).
        client = DogStatsd(
            host=config.host,
            port=config.port,
            socket_path=config.socket_path,
            disable_buffering=True,
            flush_interval=0,
            disable_aggregation=True,
            disable_telemetry=True,
            track_instance=False,  # our fork handling replaces the backend in a child
        )
        self._namespace = f"{config.prefix}." if config.prefix else ""
        tags = [*config.constant_tags, *normalize_tags(list(client.constant_tags))]
        extra = ""
        if client._container_id:  # origin detection: the agent tags by container
            extra += f"|c:{client._container_id}"
        if client._external_data:
            extra += f"|e:{client._external_data}"
        self._constant = ",".join(tags)
        self._extra = extra
        self._packed = config.packed
        self._ends: dict[Series, tuple[str, str, str]] = {}
        if client.socket_path is not None:
            path = client.socket_path

            def connect(_: Address) -> Any:
                # datadog's set-up: the URL scheme picks the kind, else datagram then stream.
                return DogStatsd._get_uds_socket(path, 0)

            address = Address(socket_path=path)
            self._transport = Transport(address, on_fault, connect)
        else:
            address = Address(host=client.host, port=client.port)
            self._transport = Transport(address, on_fault, lambda a: connect_udp(a.host or "", a.port or 0))

    @property
    def lines_sent(self) -> int:
        return self._transport.lines_sent

    def _line_ends(self, series: Series) -> tuple[str, str, str]:
        """`name:`, then the suffixes `|c|#tags...` and `|d|#tags...`, made once per series."""
        ends = self._ends.get(series)
        if ends is None:
            tags = ",".join(t for t in (",".join(series.tags), self._constant) if t)
            tail = (f"|#{tags}" if tags else "") + self._extra
            ends = (f"{self._namespace}{series.name}:", "|c" + tail, "|d" + tail)
            self._ends[series] = ends
        return ends

    def send(self, batch: Batch) -> None:
        out = _Datagrams(self._transport.address.payload)
        ends = self._line_ends
        for series, n in batch.counts:
            head, count_tail, _ = ends(series)
            for part in _counts(n):
                out.add(f"{head}{part}{count_tail}", 1)
        for dist, values in batch.samples:
            head, _, tail = ends(dist)
            if self._packed:
                _add_packed(out, head, tail, ":".join(map(str, values)), len(values))
            else:
                for value in values:
                    out.add(f"{head}{value}{tail}", 1)
        for gauged, level in batch.gauges:
            head, count_tail, _ = ends(gauged)
            out.add(f"{head}{level}|g{count_tail[2:]}", 1)
        out.close()
        self._transport.send(out.out)

    def close(self) -> None:
        self._transport.close()


def _add_packed(out: _Datagrams, head: str, tail: str, joined: str, count: int) -> None:
    """Add `name:v1:v2...|d|#tags` lines, as many values per line as the datagram has room for."""
    fixed = len(head) + len(tail)
    while joined:
        room = out.room() - fixed
        if len(joined) <= room:
            out.add(f"{head}{joined}{tail}", count)
            return
        cut = joined.rfind(":", 0, room + 1) if room > 0 else -1
        if cut <= 0:
            if out._parts:  # no value fits what is left: start a datagram
                out.close()
                continue
            cut = joined.find(":")  # a value longer than a datagram goes alone
            if cut < 0:
                out.add(f"{head}{joined}{tail}", count)
                return
        piece, joined = joined[:cut], joined[cut + 1 :]
        taken = piece.count(":") + 1
        out.add(f"{head}{piece}{tail}", taken)
        count -= taken


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
            for part in _counts(n):
                pipe.incr(name, part)
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
