"""What the recorder sends through: the backend protocol, the in-process backends, the registry.

The recorder makes a backend by its configured name through `make_backend`; the wire's
backends (`_wire.backends`: datadog, statsd) register themselves there when imported, so
the core never imports the network side. `memory` and `off` send nothing anywhere: they
live here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .._wire.transport import FaultHandler
from .batch import Batch
from .config import Config
from .series import Series


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


Maker = Callable[[Config, FaultHandler], Backend]
_makers: dict[str, Maker] = {}


def register_backend(name: str, maker: Maker) -> None:
    """Make `maker` build the backend that `Config.backend == name` selects."""
    _makers[name] = maker


def make_backend(config: Config, on_fault: FaultHandler) -> Backend:
    """Make the backend `config` names (on the sending side: it may touch the network)."""
    if config.backend == "memory":
        return MemoryBackend()
    maker = _makers.get(config.backend)
    if maker is None:
        if config.backend == "off":
            return OffBackend()
        raise RuntimeError(f"backend {config.backend!r} is not registered: import sip_statsd")
    return maker(config, on_fault)
