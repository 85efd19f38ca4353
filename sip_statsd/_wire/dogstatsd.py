"""The datadog backend: DogStatsD lines formatted here, whole datagrams on a `Transport`.

Every backend is made and used on the sending side (the flusher thread), never on an
emitting thread, so a slow DNS answer or a dead agent costs the SIP service nothing. A
backend never raises out of `send`: every value it cannot deliver is reported through
`on_fault(kind, error, values)` by the transport.

It speaks the dialect of the configured receiver (`dialects`): the Datadog Agent by
default, or statsd_exporter, Telegraf, the OTel collector, Vector or Etsy's statsd. Where
the Agent is and what origin fields it reads come from the environment (`agent`), read
here, not through the datadog client: its send path logs its faults instead of raising
them and reconnects (resolving the name again) after every refused datagram, and its
private attributes changed under us (0.53). From the `datadog` package we use only its
public tag normaliser and cgroup reader. Lines are formatted from prefixes made once per
series and configuration.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add

from .._core.batch import Batch, exact_counts
from .._core.config import Config
from .._core.series import Series
from .agent import UNIX_SCHEMES, env_address, env_tags, origin_fields
from .dialects import RECEIVERS, TAGS_DOGSTATSD, TAGS_GRAPHITE, Dialect
from .texts import FamilyTexts, weighted
from .transport import FAULT_DROPPED, FAULT_ENCODE, MAX_LINE, Address, FaultHandler, Transport


def _size(text: str) -> int:
    """Bytes of `text` in UTF-8 (a surrogate counts as 3: encoding it fails later, counted)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class _Datagrams:
    """Packs lines into datagrams of at most `limit` bytes (UTF-8), never splitting a line.

    A line longer than an agent reads (`MAX_LINE`), or one that cannot be encoded, is not
    sent: its values are kept in `lost` by kind of fault, for the transport's counts. Every
    line ends with a newline, the last one too: an Agent with `dogstatsd_eol_required` drops
    a line without one, and both official clients send it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out: list[tuple[bytes, int, int]] = []
        self.lost: list[tuple[str, BaseException, int]] = []
        self._parts: list[str] = []
        self._size = 0  # bytes so far, newlines included
        self._values = 0
        self._lines = 0

    def room(self) -> int:
        return self.limit - self._size - 1

    def add(self, line: str, values: int, size: int = -1, lines: int = 1) -> None:
        size = _size(line) if size < 0 else size
        if size > MAX_LINE:
            self.lost.append((FAULT_DROPPED, ValueError(f"a line of {size} bytes, over {MAX_LINE}"), values))
            return
        if size > self.room() and self._parts:
            self.close()
        self._parts.append(line)
        self._size += size + 1
        self._values += values
        self._lines += lines

    def close(self) -> None:
        if self._parts:
            try:
                self._parts.append("")  # the last line's newline
                payload = "\n".join(self._parts).encode("utf-8")
            except UnicodeEncodeError as error:  # a lone surrogate: never sent, counted
                self.lost.append((FAULT_ENCODE, error, self._values))
            else:
                self.out.append((payload, self._values, self._lines))
            self._parts, self._size, self._values, self._lines = [], 0, 0, 0


class DatadogBackend:
    """Lines formatted here (packed distributions where the receiver reads them) over a `Transport`."""

    def __init__(self, config: Config, on_fault: FaultHandler) -> None:
        dialect = RECEIVERS[config.receiver]
        self._dialect = dialect
        self._namespace = f"{config.prefix}." if config.prefix else ""
        tags = list(config.constant_tags)
        if dialect.dd_address:  # DD_ENV, DD_SERVICE, ... belong to the Datadog environment
            tags += env_tags()
        self._constant = tags
        self._extra = origin_fields(config.cardinality) if dialect.extensions else ""
        self._on_fault = on_fault
        self._packed = config.packed and dialect.packed
        self._ends: dict[Series, tuple[str, str, str]] = {}
        self._texts = FamilyTexts(config.precision)
        self._transport = Transport(_address(config, dialect), on_fault)
        # Every declared counter series once as 0 (see Sender._unzeroed): the families had them.
        self.zeroed: set[object] | None = set() if dialect.zeros else None

    @property
    def lines_sent(self) -> int:
        return self._transport.lines_sent

    def _line_ends(self, series: Series) -> tuple[str, str, str]:
        """`name:` (labels folded in, for name-tag dialects), a distribution's `|letter`, and the
        tags and fields that end each line, made once per series."""
        ends = self._ends.get(series)
        if ends is None:
            pairs = [*series.tags, *self._constant]
            name = f"{self._namespace}{series.name}"
            dialect = self._dialect
            if dialect.tags == TAGS_DOGSTATSD:
                tail = (f"|#{','.join(pairs)}" if pairs else "") + self._extra
            else:  # InfluxDB `name,k=v` or Graphite `name;k=v`
                sep = ";" if dialect.tags == TAGS_GRAPHITE else ","
                name += "".join(sep + "=".join(pair.split(":", 1)) for pair in pairs)
                tail = self._extra
            letter = dialect.letter(series.name) if series.family.kind == "distribution" else ""
            ends = (f"{name}:", f"|{letter}", tail)
            self._ends[series] = ends
        return ends

    def send(self, batch: Batch) -> None:
        out = _Datagrams(self._transport.address.payload)
        ends = self._line_ends
        for series, n in batch.counts:
            head, _, tail = ends(series)
            for part in exact_counts(n):
                out.add(f"{head}{part}|c{tail}", 1)
        seen = batch.seen
        for dist, values in batch.samples:
            head, letter, tags = ends(dist)
            for group, rate in weighted(values, seen.get(dist, 0)):
                tail = f"{letter}|@{rate}{tags}" if rate else f"{letter}{tags}"
                texts = list(self._texts.of(dist.name, group))
                if self._packed:
                    _add_packed(out, head, tail, texts)
                else:
                    for text in texts:
                        out.add(f"{head}{text}{tail}", 1)
        signed_is_change = self._dialect.signed_gauge_is_change
        for gauged, level in batch.gauges:
            head, _, tail = ends(gauged)
            if level < 0 and signed_is_change:  # `-3|g` is "subtract 3" there: set 0, then move
                out.add(f"{head}0|g{tail}\n{head}{level}|g{tail}", 1, lines=2)  # never split
            else:
                out.add(f"{head}{level}|g{tail}", 1)
        out.close()
        for kind, error, lost in out.lost:
            self._on_fault(kind, error, lost)
        self._transport.send(out.out)

    def close(self) -> None:
        self._transport.close()


def _address(config: Config, dialect: Dialect) -> Address:
    """The configured address, else (for the Agent) the DD_* environment's, else localhost:8125."""
    path = config.socket_path
    if path is not None:
        for scheme in UNIX_SCHEMES:  # `unixstream:///path` given as the socket path, as datadogpy takes it
            if path.startswith(f"{scheme}://"):
                return Address(socket_path=path[len(scheme) + 3 :], unix=scheme)
        return Address(socket_path=path)
    if config.host is None and config.port is None and dialect.dd_address:
        host, port, path, scheme = env_address()
        if path is not None:
            return Address(socket_path=path, unix=scheme)
        return Address(host=host, port=port)
    return Address(host=config.host or "localhost", port=config.port or 8125)


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
