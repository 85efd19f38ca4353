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
from dataclasses import dataclass, field

from .lines import Line, parse_datagram

_RCVBUF = 16 * 1024 * 1024
# Malformed lines kept (the latest), and the characters kept of each line and of its reason:
# a listener that runs for days keeps bounded memory whatever arrives.
MAX_MALFORMED = 100
MAX_MALFORMED_TEXT = 200


def _short(text: str) -> str:
    return text if len(text) <= MAX_MALFORMED_TEXT else text[: MAX_MALFORMED_TEXT - 3] + "..."


@dataclass
class Totals:
    """What arrived, aggregated: counter sums and sample lists keyed `name{k:v,...}`."""

    counts: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    datagrams: int = 0
    lines: int = 0
    bytes: int = 0
    malformed: list[tuple[str, str]] = field(default_factory=list)  # the latest MAX_MALFORMED, shortened
    malformed_count: int = 0  # every malformed line

    def add_malformed(self, bad: list[tuple[str, str]]) -> None:
        self.malformed_count += len(bad)
        self.malformed.extend((_short(line), _short(why)) for line, why in bad[-MAX_MALFORMED:])
        if len(self.malformed) > MAX_MALFORMED:
            del self.malformed[:-MAX_MALFORMED]

    def add(self, line: Line, *, keep_samples: bool = True) -> None:
        self.lines += 1
        if line.kind == "c":
            self.counts[line.key] = self.counts.get(line.key, 0) + sum(line.values) / line.rate
        elif line.kind == "g":
            self.gauges[line.key] = line.values[-1]
        elif keep_samples:
            self.samples.setdefault(line.key, []).extend(line.values)

    def copy(self) -> Totals:
        return Totals(
            dict(self.counts),
            {k: list(v) for k, v in self.samples.items()},
            dict(self.gauges),
            self.datagrams,
            self.lines,
            self.bytes,
            list(self.malformed),
            self.malformed_count,
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
        self._totals = Totals()
        self._window = Totals()
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
            window, self._window = self._window, Totals()
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
