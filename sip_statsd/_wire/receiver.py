"""An embedded StatsD / DogStatsD receiver on loopback: collects, parses, aggregates.

Used by the tests, the pytest plugin and the command line (`listen`, `demo`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .lines import Line, parse_datagram

_RCVBUF = 16 * 1024 * 1024
# Malformed lines kept (the latest), and the characters kept of each line and of its reason:
# a listener that runs for days keeps bounded memory whatever arrives.
MAX_MALFORMED = 100
MAX_MALFORMED_TEXT = 200
MAX_SET_MEMBERS = 100_000  # unique members kept per set series


def _short(text: str) -> str:
    return text if len(text) <= MAX_MALFORMED_TEXT else text[: MAX_MALFORMED_TEXT - 3] + "..."


@dataclass
class Totals:
    """What arrived, aggregated as the Agent aggregates it, keyed `name{k:v,...}`.

    Counter sums and distributions' observed counts are weighted by `1/rate` (a line sent
    `|@0.25` stands for four); sets keep their unique members (at most MAX_SET_MEMBERS each);
    service checks their last status and message; events a count and the last text. With
    `max_series`, each of those maps keeps at most that many keys: a new key evicts the
    oldest (`evicted` counts them, `last_evicted` names the latest).
    """

    counts: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    observed: dict[str, float] = field(default_factory=dict)  # distribution samples, weighted by 1/rate
    sets: dict[str, set[str]] = field(default_factory=dict)
    checks: dict[str, tuple[int, str]] = field(default_factory=dict)  # (status, message)
    events: dict[str, tuple[int, str]] = field(default_factory=dict)  # (count, last text)
    datagrams: int = 0
    lines: int = 0
    bytes: int = 0
    malformed: list[tuple[str, str]] = field(default_factory=list)  # the latest MAX_MALFORMED, shortened
    malformed_count: int = 0  # every malformed line
    max_series: int | None = None
    evicted: int = 0
    last_evicted: str = ""

    def add_malformed(self, bad: list[tuple[str, str]]) -> None:
        self.malformed_count += len(bad)
        self.malformed.extend((_short(line), _short(why)) for line, why in bad[-MAX_MALFORMED:])
        if len(self.malformed) > MAX_MALFORMED:
            del self.malformed[:-MAX_MALFORMED]

    def _room(self, table: dict[str, Any], key: str) -> None:
        """Make room for a new `key` in `table` when it is full: the oldest key goes."""
        if self.max_series is not None and key not in table and len(table) >= self.max_series:
            oldest = next(iter(table))
            del table[oldest]
            if table is self.samples:
                self.observed.pop(oldest, None)
            self.evicted += 1
            self.last_evicted = oldest

    def add(self, line: Line, *, keep_samples: bool = True) -> None:
        self.lines += 1
        key, kind = line.key, line.kind
        if kind == "c":
            self._room(self.counts, key)
            self.counts[key] = self.counts.get(key, 0) + sum(line.values) / line.rate
        elif kind == "g":
            self._room(self.gauges, key)
            self.gauges[key] = line.values[-1]
        elif kind == "s":
            self._room(self.sets, key)
            members = self.sets.setdefault(key, set())
            if len(members) < MAX_SET_MEMBERS:
                members.update(line.members)
        elif kind == "sc":
            self._room(self.checks, key)
            self.checks[key] = (int(line.values[0]), _short(line.text))
        elif kind == "e":
            self._room(self.events, key)
            self.events[key] = (self.events.get(key, (0, ""))[0] + 1, _short(line.text))
        else:  # d, ms, h: every sample, and what the Agent counts (1/rate each)
            self._room(self.samples, key)
            kept = self.samples.setdefault(key, [])
            if keep_samples:
                kept.extend(line.values)
            self.observed[key] = self.observed.get(key, 0) + len(line.values) / line.rate

    def copy(self) -> Totals:
        return replace(
            self,
            counts=dict(self.counts),
            samples={k: list(v) for k, v in self.samples.items()},
            gauges=dict(self.gauges),
            observed=dict(self.observed),
            sets={k: set(v) for k, v in self.sets.items()},
            checks=dict(self.checks),
            events=dict(self.events),
            malformed=list(self.malformed),
        )

    def count(self, name: str, **labels: str) -> float:
        """Sum of counter `name` over keys whose tags include `labels`."""
        return sum(v for k, v in self.counts.items() if _matches(k, name, labels))

    def gauge(self, name: str, **labels: str) -> float | None:
        """Sum of the last levels of gauge `name` over keys whose tags include `labels`; None if none arrived."""
        levels = [v for k, v in self.gauges.items() if _matches(k, name, labels)]
        return sum(levels) if levels else None

    def sample_list(self, name: str, **labels: str) -> list[float]:
        return [v for k, vs in self.samples.items() if _matches(k, name, labels) for v in vs]

    def observed_count(self, name: str, **labels: str) -> float:
        """How many samples the Agent counts for distribution `name` (each line weighs 1/rate)."""
        return sum(v for k, v in self.observed.items() if _matches(k, name, labels))


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0-1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _matches(key: str, name: str, labels: dict[str, str]) -> bool:
    base, _, rest = key.partition("{")
    if base != name:
        return False
    tags = set(rest.rstrip("}").split(",")) if rest else set()
    return all(f"{k}:{v}" in tags for k, v in labels.items())


class Receiver:
    """Binds a UDP port (or a Unix datagram socket), parses every datagram as it arrives.

    `totals()` is everything since the start; `take_window()` what arrived since the last
    take (for a refreshing display). Raw datagrams are kept only with `keep_datagrams`,
    and samples in the running totals only with `keep_samples`, so a long `listen` stays
    small.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        socket_path: str | None = None,
        *,
        keep_datagrams: bool = True,
        keep_samples: bool = True,
        max_series: int | None = None,
    ) -> None:
        if socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(socket_path)
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except BaseException:
                sock.close()
                raise
        with contextlib.suppress(OSError):  # a smaller buffer still works
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.settimeout(0.1)  # lets close() stop the reader promptly
        self._sock = sock
        self.socket_path = socket_path
        self.host = host
        self.port: int = sock.getsockname()[1] if socket_path is None else 0
        self._keep_datagrams = keep_datagrams
        self._keep_samples = keep_samples
        self._cond = threading.Condition()
        self._datagrams: list[bytes] = []
        self._max_series = max_series
        self._totals = Totals(max_series=max_series)
        self._window = Totals(max_series=max_series)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sip-statsd-receiver", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        if self.socket_path is not None:
            return f"unix://{self.socket_path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            lines, bad = parse_datagram(data)
            with self._cond:
                if self._keep_datagrams:
                    self._datagrams.append(data)
                for totals in (self._totals, self._window):
                    totals.datagrams += 1
                    totals.bytes += len(data)
                    totals.add_malformed(bad)
                    for line in lines:
                        totals.add(line, keep_samples=totals is self._window or self._keep_samples)
                self._cond.notify_all()

    def datagrams(self) -> list[bytes]:
        """The raw datagrams (only with keep_datagrams)."""
        with self._cond:
            return list(self._datagrams)

    def totals(self) -> Totals:
        """A copy of everything parsed so far."""
        with self._cond:
            return self._totals.copy()

    def take_window(self) -> Totals:
        """What arrived since the last call, and start a new window."""
        with self._cond:
            window, self._window = self._window, Totals(max_series=self._max_series)
            return window

    def wait_for(self, predicate: Callable[[Totals], bool], timeout: float = 10.0) -> Totals:
        """Wait until `predicate(totals)` holds or `timeout` passes; return the last totals."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                totals = self._totals.copy()
                remaining = deadline - time.monotonic()
                if predicate(totals) or remaining <= 0:
                    return totals
                self._cond.wait(remaining)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1.0)
        self._sock.close()
        if self.socket_path is not None and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
