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

from .._wire.transport import FAULT_DROPPED, FaultHandler
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


# The samples a memory backend keeps per series: it is for the capture API, and one chosen
# by SIP_STATSD_BACKEND=memory where nobody reads it must not grow for ever. Past this,
# samples are counted as `dropped` send errors.
MEMORY_MAX_SAMPLES = 100_000


class MemoryBackend:
    """Keeps flushed values in process, for the capture API: counters summed, gauges' last
    levels, and the first `MEMORY_MAX_SAMPLES` samples of each series (the rest counted)."""

    on_fault: FaultHandler | None = None  # set by the recorder that sends to it

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
            lost = 0
            for dist, values in batch.samples:
                kept = self.samples.setdefault(dist, [])
                room = MEMORY_MAX_SAMPLES - len(kept)
                kept.extend(values[:room] if room < len(values) else values)
                lost += max(0, len(values) - max(room, 0))
            self.gauges.update(batch.gauges)
            self.lines_sent += batch.values - lost
        if lost and self.on_fault is not None:
            self.on_fault(
                FAULT_DROPPED, MemoryError(f"the memory backend keeps {MEMORY_MAX_SAMPLES} samples a series"), lost
            )

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
