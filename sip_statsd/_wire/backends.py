"""The wire's backends: from a flushed batch to datagrams on a `Transport` (datadog's in `dogstatsd`).

Every backend is made and used on the sending side (the flusher thread), never on an
emitting thread, so a slow DNS answer or a dead agent costs the SIP service nothing. A
backend never raises out of `send`: every value it cannot deliver is reported through
`on_fault(kind, error, values)` by the transport.

From `statsd` (pystatsd) we take its line formatting and pipeline packing for plain
StatsD, sent through our transport (connected, so a dead agent is seen and counted); what
we take from `datadog`, and why not its send path, is said in `dogstatsd`.
"""

from __future__ import annotations

from statsd import StatsClient

from .._core.backend import Backend, register_backend
from .._core.batch import Batch, exact_counts
from .._core.config import Config
from .._core.series import Series
from .dialects import RECEIVERS
from .dogstatsd import DatadogBackend
from .texts import FamilyTexts, weighted
from .transport import FAULT_DROPPED, MAX_LINE, Address, FaultHandler, Transport

# --- statsd ----------------------------------------------------------------------------


class _StatsClient(StatsClient):  # type: ignore[misc]  # statsd ships no type information (Any base)
    """pystatsd's formatting and pipeline, sending through our transport."""

    def __init__(self, transport: Transport, prefix: str | None) -> None:
        # Not StatsClient.__init__: it resolves the name and opens an unconnected socket.
        self._transport = transport
        self._prefix = prefix
        self._maxudpsize = transport.address.payload - 1  # room for the last line's newline

    def _send(self, data: str) -> None:
        lines = data.count("\n") + 1
        payload = data.encode("utf-8", "surrogateescape")  # names and tags are checked ASCII
        if lines == 1 and len(payload) > MAX_LINE:  # a line an agent would truncate: counted, not sent
            self._transport._on_fault(FAULT_DROPPED, ValueError(f"a line of {len(payload)} bytes"), 1)
            return
        # Every line ends with a newline, the last one too (pystatsd joins without it).
        self._transport.send(((payload + b"\n", lines, lines),))

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
            address = Address(socket_path=config.socket_path, unix="unixgram")
        else:
            address = Address(host=config.host or "localhost", port=config.port or 8125)
        transport = Transport(address, on_fault)
        self._transport = transport
        self._client = _StatsClient(transport, config.prefix)
        self._names: dict[Series, str] = {}
        self._texts = FamilyTexts(config.precision)
        # A distribution's type letter: the receiver's if one is named, else `ms`, which every
        # plain StatsD daemon takes as a distribution (Etsy sums any other letter as a counter).
        dialect = RECEIVERS[config.receiver] if config.receiver != "datadog" else None
        self._letter = dialect.letter if dialect is not None else lambda _: "ms"

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
        seen = batch.seen
        for dist, values in batch.samples:
            name = self._name(dist)
            letter = self._letter(dist.name)
            for group, rate in weighted(values, seen.get(dist, 0)):
                # Not pipe.timing(): it writes six decimals, turning 1.5e-07 into 0.000000; and
                # the rate goes in the text, since pystatsd would sample again at any rate < 1.
                tail = f"|{letter}|@{rate}" if rate else f"|{letter}"
                for text in self._texts.of(dist.name, group):
                    pipe._send_stat(name, text + tail, 1)
        for gauged, level in batch.gauges:
            # A signed StatsD gauge is a delta: pystatsd sends a level below 0 as `0|g`, then it.
            pipe.gauge(self._name(gauged), level)
        pipe.send()

    def close(self) -> None:
        self._client.close()


def _make_datadog(config: Config, on_fault: FaultHandler) -> Backend:
    return DatadogBackend(config, on_fault)


register_backend("datadog", _make_datadog)
register_backend("statsd", StatsdBackend)
