"""Capture what your code emits, in your own tests (no pytest import).

>>> from sip_statsd.testing import capture_metrics
>>> with capture_metrics() as metrics:
...     handle_invite()                      # your code, calling sip_statsd helpers
...     metrics.assert_count("sip_invite_result_total", 1, direction="inbound", code_class="2xx")
...     metrics.assert_gauge("sip_active_calls", 1, direction="inbound")

Inside the block the instance sends to memory and is strict: an unknown label value or
invalid number raises ValueError at the call that made it. The previous configuration
(and a capture around this one) is restored on exit.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ._core.backend import MemoryBackend
from ._core.config import Config
from ._core.drops import allowed_text, show
from ._core.gauge import GaugeSeries, quiet_gauges, resume_gauges
from ._core.series import Series
from ._sip.api import DEFAULT, SipMetrics

__all__ = ["Capture", "capture_metrics"]


class Capture:
    """What one `capture_metrics()` block recorded, read after a flush."""

    def __init__(self, metrics: SipMetrics, backend: MemoryBackend) -> None:
        self.metrics = metrics
        self._backend = backend

    def _check_query(self, name: str, labels: dict[str, object]) -> None:
        """A misspelt metric, label or value raises instead of reading zero."""
        families = {f.name: f for f in self.metrics.families}
        family = families.get(name)
        if family is None:
            close = difflib.get_close_matches(name, families, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"no metric named {name!r}{hint}")
        for key, value in labels.items():
            if key not in family.allowed:
                raise ValueError(f"{name} has no label {key!r} (labels: {list(family.label_keys)})")
            if value not in family.allowed[key]:
                raise ValueError(f"{name}: {key}={show(value)} is not one of {allowed_text(family.allowed[key])}")

    def _read(self) -> tuple[dict[Series, int], dict[Series, list[float]]]:
        self.metrics.flush()
        return self._backend.snapshot()

    @staticmethod
    def _matches(series: Series, name: str, labels: dict[str, object]) -> bool:
        return series.name == name and all(series.labels[k] == v for k, v in labels.items())

    def count(self, name: str, /, **labels: object) -> int:
        """The total of counter `name` over every series whose labels include `labels`."""
        self._check_query(name, labels)
        counts, _ = self._read()
        return sum(n for s, n in counts.items() if self._matches(s, name, labels))

    def samples(self, name: str, /, **labels: object) -> list[float]:
        """Every sample of distribution `name` (over matching series), in the order recorded."""
        self._check_query(name, labels)
        _, samples = self._read()
        return [v for s, vs in samples.items() if self._matches(s, name, labels) for v in vs]

    def gauge(self, name: str, **labels: object) -> float | None:
        """The last level sent of gauge `name`, summed over every series whose labels include
        `labels` (`gauge("sip_active_calls")` is both directions'); None if none was sent.

        A gauge shows once it is set or moved inside the block, and from then on on every
        flush (0 included). Its level is the process's: calls an earlier test left in
        progress count too.
        """
        self._check_query(name, labels)
        self._read()
        levels = [v for s, v in self._backend.gauge_levels().items() if self._matches(s, name, labels)]
        return sum(levels) if levels else None

    def recorded(self) -> dict[str, float | list[float]]:
        """Everything recorded, keyed `name{k=v,...}`: counter totals, sample lists, gauge levels."""
        counts, samples = self._read()
        out: dict[str, float | list[float]] = {_key(s): n for s, n in counts.items()}
        out.update({_key(s): v for s, v in samples.items()})
        out.update({_key(s): v for s, v in self._backend.gauge_levels().items()})
        return dict(sorted(out.items()))

    def clear(self) -> None:
        """Forget what was captured so far (after sending what was pending into it)."""
        self._read()
        self._backend.clear()

    def assert_count(self, name: str, expected: int, /, **labels: object) -> None:
        """Assert the total of `name` over series matching `labels`; a failure lists near misses."""
        __tracebackhide__ = True
        actual = self.count(name, **labels)
        if actual != expected:
            raise AssertionError(f"{_key_of(name, labels)}: expected {expected}, got {actual}\n" + self._near(name))

    def assert_samples(self, name: str, expected: list[float], /, **labels: object) -> None:
        """Assert the samples of `name` (in order); a failure lists near misses."""
        __tracebackhide__ = True
        actual = self.samples(name, **labels)
        if actual != list(expected):
            raise AssertionError(
                f"{_key_of(name, labels)}: expected samples {list(expected)}, got {actual}\n" + self._near(name)
            )

    def assert_gauge(self, name: str, expected: float | None, **labels: object) -> None:
        """Assert the last level sent of `name` (see `gauge`); a failure lists near misses."""
        __tracebackhide__ = True
        actual = self.gauge(name, **labels)
        if actual != expected:
            raise AssertionError(
                f"{_key_of(name, labels)}: expected level {expected}, got {actual}\n" + self._near(name)
            )

    def _near(self, name: str) -> str:
        recorded = self.recorded()
        same = {k: v for k, v in recorded.items() if k.split("{", 1)[0] == name}
        if same:
            return "recorded for this metric:\n" + "\n".join(f"  {k} = {v}" for k, v in same.items())
        if recorded:
            return "nothing recorded for this metric; recorded:\n" + "\n".join(
                f"  {k} = {v}" for k, v in recorded.items()
            )
        return "nothing was recorded at all"


def _key_of(name: str, labels: dict[str, object]) -> str:
    return name + "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}"


def _key(series: Series) -> str:
    return _key_of(series.name, dict(series.labels))


@dataclass
class _Entry:
    """What a capture block saw on entry, restored when it leaves (or handed to the block
    that entered after it, if that one is still open: blocks may overlap across threads)."""

    config: Config
    backend: MemoryBackend | None
    quieted: list[GaugeSeries]


_open: dict[int, list[_Entry]] = {}  # id(recorder) -> its open blocks, oldest first
_open_lock = threading.Lock()


@contextmanager
def capture_metrics(*, strict: bool = True, metrics: SipMetrics | None = None) -> Iterator[Capture]:
    """Send `metrics` (default: the process-wide instance) to memory for the block.

    Only that instance is captured: with `metrics=SipMetrics()`, the module-level helpers
    (`sip_statsd.invite_result`) still go where the process-wide instance sends.
    Strict by default: a bad input raises `InvalidInputError` (a ValueError) where it is
    made. What was recorded before the block goes to the previous backend first. The
    configured call-quality thresholds are kept. Blocks may nest or overlap (across threads:
    A in, B in, A out, B out): the last one to leave restores what the first one saw.
    """
    target = metrics or DEFAULT
    recorder = target.recorder
    backend = MemoryBackend()
    recorder.flush()  # the levels so far go to the previous backend, then the gauges wait for a move
    with _open_lock:
        previous_config = recorder.config
        previous_backend = recorder.backend
        keep = previous_backend if isinstance(previous_backend, MemoryBackend) else None
        entry = _Entry(previous_config, keep, quiet_gauges(recorder.families))
        _open.setdefault(id(recorder), []).append(entry)
        # The call-quality thresholds stay the application's: they decide what is counted.
        capture_config = previous_config.__class__(
            backend="memory", strict=strict, quality_thresholds=previous_config.quality_thresholds
        )
        recorder.reconfigure(capture_config, backend=backend)
    try:
        yield Capture(target, backend)
    finally:
        recorder.flush()
        with _open_lock:
            stack = _open[id(recorder)]
            at = stack.index(entry)
            del stack[at]
            if at < len(stack):  # a later block is still open: it restores what this one saw
                later = stack[at]
                later.config, later.backend = entry.config, entry.backend
                later.quieted = entry.quieted + later.quieted
            else:
                recorder.reconfigure(entry.config, backend=entry.backend)
                resume_gauges(entry.quieted)
            if not stack:
                del _open[id(recorder)]
