"""Metric families and their pre-bound series.

A family declares its name, label keys and allowed values once; every allowed label
combination becomes a `Series` (see `series`) at definition, holding what the hot path and
the flusher need (name, ordered tags, the cell). Nothing is validated or formatted on emit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .drops import allowed_text, show
from .names import (
    DEFAULT_MAX_SAMPLES,
    DROP_UNKNOWN_VALUE,
    MAX_SAMPLES_LIMIT,
    MAX_SERIES_PER_FAMILY,
    check_key,
    check_name,
    check_value,
)
from .series import FLOAT_MAX, CounterSeries, DistributionSeries, InvalidInputError, Series

if TYPE_CHECKING:
    from .recorder import Recorder


def _no_default() -> Recorder:
    raise RuntimeError("no default recorder: import sip_statsd (its recorder module provides it)")


# The recorder a family joins when none is given. The recorder module fills this slot when it is
# imported (it defines the process-wide recorder), so a family never imports the recorder.
_default_recorder: Callable[[], Recorder] = _no_default


def use_default_recorder(provider: Callable[[], Recorder]) -> None:
    """Make `provider` what a family made without a recorder joins (the recorder module calls this)."""
    global _default_recorder
    _default_recorder = provider


class Family:
    """A metric and every one of its series, made at definition."""

    kind: ClassVar[str]
    _series_type: ClassVar[type[Series]]

    def __init__(
        self,
        name: str,
        labels: Mapping[str, Iterable[str]] | None = None,
        *,
        description: str = "",
        recorder: Recorder | None = None,
        _allow_empty: bool = False,
    ) -> None:
        self.name = check_name(name)
        self.description = description
        allowed: dict[str, tuple[str, ...]] = {}
        for key, values in (labels or {}).items():
            check_key(key)
            if isinstance(values, str):
                raise ValueError(f"{name}: allowed values of {key!r} must be a sequence, not the string {values!r}")
            vals = tuple(check_value(key, v) for v in values)
            if not vals and not _allow_empty:
                raise ValueError(f"{name}: label {key!r} has no allowed values")
            if len(set(vals)) != len(vals):
                raise ValueError(f"{name}: label {key!r} repeats an allowed value in {vals!r}")
            allowed[key] = vals
        self.allowed = allowed
        self.label_keys = tuple(allowed)
        combos = math.prod(len(v) for v in allowed.values())
        if combos > MAX_SERIES_PER_FAMILY:
            raise ValueError(
                f"{name}: {combos} label combinations exceed the {MAX_SERIES_PER_FAMILY} "
                "series a family may have; labels must stay low-cardinality"
            )
        self._by_values: dict[tuple[str, ...], Series] = {
            values: self._series_type(self, values) for values in itertools.product(*allowed.values())
        }
        self._drops: dict[str, CounterSeries] = {}
        self._extra_pending = False  # a counter's inc(n) queued something since the last take
        self._sampled: CounterSeries | None = None  # a distribution's sampled-away counter (the recorder's)
        # What the helpers' look-up tables give for an input that is not declared: the
        # unknown_value drop counter's itertools.count in soft mode (so a drop costs what a
        # hit costs), an iterator that raises in strict mode. Set by the recorder.
        self._miss: Iterator[object] = itertools.count()
        self._miss_listeners: list[Callable[[Iterator[object]], None]] = []
        if recorder is None:
            recorder = _default_recorder()
        self.recorder = recorder
        recorder._register(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.allowed}>"

    @property
    def all_series(self) -> tuple[Series, ...]:
        return tuple(self._by_values.values())

    def _lookup(self, labels: Mapping[str, object]) -> Series | None:
        """The series for `labels`, or None after a counted drop (or ValueError in strict mode)."""
        keys = self.label_keys
        if len(labels) != len(keys) or any(k not in labels for k in keys):
            self._drop(DROP_UNKNOWN_VALUE, "labels", _Keys(labels, keys))
            return None
        values = tuple(labels[k] for k in keys)
        try:
            series = self._by_values.get(values)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value
            series = None
        if series is None:
            for key, value in zip(keys, values, strict=True):
                if value not in self.allowed[key]:
                    self._drop(DROP_UNKNOWN_VALUE, key, value)
                    break
        return series

    def _find(self, labels: Mapping[str, object]) -> Series | None:
        """`_lookup` that never raises but in strict mode (the convenient emit path)."""
        try:
            return self._lookup(labels)
        except InvalidInputError:
            raise
        except Exception:
            self._drop(DROP_UNKNOWN_VALUE, "labels", labels)
            return None

    def series(self, /, **labels: str) -> Series:
        """Return the pre-bound series for `labels`; an unknown key or value raises ValueError.

        Bind once (at import or set-up) and call its `inc()` / `observe()` on the hot path.
        """
        values = []
        for key in self.label_keys:
            if key not in labels:
                raise ValueError(f"{self.name}: label {key!r} is missing (keys: {list(self.label_keys)})")
            value = labels.pop(key)
            if value not in self.allowed[key]:
                raise ValueError(f"{self.name}: {key}={show(value)} is not one of {allowed_text(self.allowed[key])}")
            values.append(value)
        if labels:
            raise ValueError(f"{self.name}: unknown label keys {sorted(labels)} (keys: {list(self.label_keys)})")
        return self._by_values[tuple(values)]

    def _set_miss(self, miss: Iterator[object]) -> None:
        self._miss = miss
        for listener in self._miss_listeners:
            listener(miss)

    def _follow_miss(self, listener: Callable[[Iterator[object]], None]) -> None:
        """Call `listener` with the miss iterator now and whenever it changes (strict on/off)."""
        self._miss_listeners.append(listener)
        listener(self._miss)

    def _drop(self, reason: str, key: str, value: object) -> None:
        self.recorder._drop(self, reason, key, value)

    def _add_value(self, key: str, value: str) -> None:
        """Allow one more value for `key` and make its series (the library's own counters only).

        The value is a metric name (the drop counter's `metric` label): it may have dots.
        """
        if value in self.allowed[key]:
            return
        check_name(value)
        self.allowed[key] = (*self.allowed[key], value)
        position = self.label_keys.index(key)
        axes = [self.allowed[k] if i != position else (value,) for i, k in enumerate(self.label_keys)]
        for values in itertools.product(*axes):
            self._by_values[values] = self._series_type(self, values)


class Counter(Family):
    """A counter family: increments are summed in process and sent once per series per flush.

    >>> calls = Counter("myapp_calls_total", labels={"outcome": ("ok", "failed")})
    >>> ok = calls.series(outcome="ok")   # bind once
    >>> ok.inc()                          # hot path
    """

    kind = "count"
    _series_type = CounterSeries

    def series(self, /, **labels: str) -> CounterSeries:
        found = super().series(**labels)
        assert isinstance(found, CounterSeries)
        return found

    def inc(self, n: int = 1, /, **labels: Any) -> None:
        """Look up the series for `labels` and add `n`: convenient, slower than a bound series."""
        series = self._find(labels)
        if series is not None:
            series.inc(n)  # type: ignore[attr-defined]


class Distribution(Family):
    """A distribution family: every sample is sent (as `|d`, or `|ms` on plain StatsD).

    `minimum` and `maximum` bound the valid samples (inclusive); non-finite values are
    always invalid. At most `max_samples` samples per series are kept between flushes.
    """

    kind = "distribution"
    _series_type = DistributionSeries

    def __init__(
        self,
        name: str,
        labels: Mapping[str, Iterable[str]] | None = None,
        *,
        minimum: float = -FLOAT_MAX,
        maximum: float = FLOAT_MAX,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        description: str = "",
        recorder: Recorder | None = None,
    ) -> None:
        if not (-FLOAT_MAX <= minimum <= maximum <= FLOAT_MAX):
            raise ValueError(f"{name}: need finite minimum <= maximum, got {minimum!r}, {maximum!r}")
        if type(max_samples) is not int or not 1 <= max_samples <= MAX_SAMPLES_LIMIT:
            raise ValueError(
                f"{name}: max_samples must be an int from 1 to {MAX_SAMPLES_LIMIT:,} (what a flush at exit "
                f"can still send), got {max_samples!r}"
            )
        self.minimum = float(minimum)
        self.maximum = float(maximum)
        self.max_samples = max_samples
        super().__init__(name, labels, description=description, recorder=recorder)

    def series(self, /, **labels: str) -> DistributionSeries:
        found = super().series(**labels)
        assert isinstance(found, DistributionSeries)
        return found

    def observe(self, value: float, /, **labels: Any) -> None:
        """Look up the series for `labels` and record `value`: convenient, slower than a bound series."""
        series = self._find(labels)
        if series is not None:
            series.observe(value)  # type: ignore[attr-defined]


class _Keys:
    """Label keys that do not match a family's, shown only if the drop is logged or raised."""

    __slots__ = ("expected", "given")

    def __init__(self, given: Mapping[str, object], expected: tuple[str, ...]) -> None:
        self.given = tuple(given)
        self.expected = expected

    def __repr__(self) -> str:
        extra = sorted(set(self.given) - set(self.expected))
        return f"{sorted(self.given)} (expected {list(self.expected)}, extra {extra})"
