"""The datadog backend: DogStatsD lines formatted here, whole datagrams on a `Transport`.

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

from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add
from typing import Any

from datadog.dogstatsd.base import DogStatsd
from datadog.util.format import normalize_tags

from .._core.batch import Batch, exact_counts
from .._core.config import Config
from .._core.series import Series
from .origin import checked_tags, origin_fields
from .transport import FAULT_DROPPED, FAULT_ENCODE, MAX_LINE, Address, FaultHandler, Transport, connect_udp


def _size(text: str) -> int:
    """Bytes of `text` in UTF-8 (a surrogate counts as 3: encoding it fails later, counted)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class _Datagrams:
    """Packs lines into datagrams of at most `limit` bytes (UTF-8), never splitting a line.

    A line longer than an agent reads (`MAX_LINE`), or one that cannot be encoded, is not
    sent: its values are kept in `lost` by kind of fault, for the transport's counts.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out: list[tuple[bytes, int, int]] = []
        self.lost: list[tuple[str, BaseException, int]] = []
        self._parts: list[str] = []
        self._size = -1  # bytes so far, less the newline the first line does not need
        self._values = 0

    def room(self) -> int:
        return self.limit - self._size - 1

    def add(self, line: str, values: int, size: int = -1) -> None:
        size = _size(line) if size < 0 else size
        if size > MAX_LINE:
            self.lost.append((FAULT_DROPPED, ValueError(f"a line of {size} bytes, over {MAX_LINE}"), values))
            return
        if size > self.room() and self._parts:
            self.close()
        self._parts.append(line)
        self._size += size + 1
        self._values += values

    def close(self) -> None:
        if self._parts:
            try:
                payload = "\n".join(self._parts).encode("utf-8")
            except UnicodeEncodeError as error:  # a lone surrogate: never sent, counted
                self.lost.append((FAULT_ENCODE, error, self._values))
            else:
                self.out.append((payload, self._values, len(self._parts)))
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
        # DD_ENV, DD_SERVICE, DD_VERSION, DATADOG_TAGS (normalised by the client): user data,
        # checked and bounded like constant tags; the origin fields stripped of syntax.
        tags = [*config.constant_tags, *checked_tags(normalize_tags(list(client.constant_tags)))]
        self._constant = ",".join(tags)
        self._extra = origin_fields(client._container_id)
        self._on_fault = on_fault
        self._packed = config.packed
        self._ends: dict[Series, tuple[str, str, str]] = {}
        self._texts = _Texts()
        if client.socket_path is not None:
            path = client.socket_path

            def connect(_: Address) -> Any:
                # datadog's set-up: the URL scheme picks the kind, else datagram then stream.
                return DogStatsd._get_uds_socket(path, 0)

            address = Address(socket_path=path)
            self._transport = Transport(address, on_fault, connect)
        else:
            # A DD_DOGSTATSD_PORT out of range is taken by the client as it is; 8125, as for one
            # that is not a number (the flusher logs it as ignored).
            port = client.port if isinstance(client.port, int) and 0 < client.port < 65536 else 8125
            address = Address(host=client.host, port=port)
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
            for part in exact_counts(n):
                out.add(f"{head}{part}{count_tail}", 1)
        for dist, values in batch.samples:
            head, _, tail = ends(dist)
            texts = self._texts.of(values)
            if self._packed:
                _add_packed(out, head, tail, texts)
            else:
                for text in texts:
                    out.add(f"{head}{text}{tail}", 1)
        for gauged, level in batch.gauges:
            head, count_tail, _ = ends(gauged)
            out.add(f"{head}{level}|g{count_tail[2:]}", 1)
        out.close()
        for kind, error, lost in out.lost:
            self._on_fault(kind, error, lost)
        self._transport.send(out.out)

    def close(self) -> None:
        self._transport.close()


# Writing a float's shortest repr is most of a flush's cost (~170 ns a value). Samples repeat
# (RTCP figures to a tenth of a ms, loss in 1/256 steps, MOS to a hundredth), so their texts
# are kept: a hit costs a dict look-up. Bounded, and bypassed while values rarely repeat.
_MAX_TEXTS = 8192
_RETRY_CACHE = 64  # flushes without the cache before trying it again


class _Texts(dict[float, str]):
    """The text of each sample value seen lately (`str(value)`, as the agent parses it)."""

    __slots__ = ("_skip",)

    def __init__(self) -> None:
        super().__init__()
        self._skip = 0

    def __missing__(self, value: float) -> str:
        if len(self) >= _MAX_TEXTS:
            self.clear()
        text = self[value] = str(value)
        return text

    def of(self, values: list[float]) -> list[str]:
        """The texts of `values`, from the cache while it pays."""
        if self._skip:
            self._skip -= 1
            return list(map(str, values))
        before = len(self)
        texts = list(map(self.__getitem__, values))
        # Mostly misses once the cache has had room to warm: the values do not repeat.
        if len(self) - before > len(values) // 2 and len(self) > _MAX_TEXTS // 2:
            self._skip = _RETRY_CACHE
        return texts


def _add_packed(out: _Datagrams, head: str, tail: str, texts: list[str]) -> None:
    """Add `name:v1:v2...|d|#tags` lines, as many values per line as the datagram has room for.

    Linear: the cut points come from the running sizes of the texts (each with its `:`),
    and each line joins its slice once; nothing is copied per line but the line itself.
    """
    fixed = _size(head) + _size(tail)
    ends = list(accumulate(map(add, map(len, texts), repeat(1))))  # ends[i]: bytes of texts[:i+1], each with a ':'
    start, base, n = 0, 0, len(texts)
    while start < n:
        room = out.room() - fixed
        end = bisect_right(ends, base + room + 1, start)  # texts[start:end] fit in `room`
        if end == start:
            if out._parts:  # no value fits what is left: start a datagram
                out.close()
                continue
            end = start + 1  # a value longer than a datagram goes alone
        out.add(f"{head}{':'.join(texts[start:end])}{tail}", end - start, fixed + ends[end - 1] - base - 1)
        base, start = ends[end - 1], end
