"""Series: one labelled series of a family, made at definition; their methods are the hot path.

A counter series counts with an `itertools.count`, a distribution series keeps its samples
in a list; the flusher takes both (see `recorder`). Families live in `family`.
"""

from __future__ import annotations

import itertools
import numbers
import operator
import random
import sys
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from .cpython import held_by_this_thread
from .names import DROP_INVALID_NUMBER

if TYPE_CHECKING:
    from .family import Distribution, Family

# The largest increment the agent holds exactly: it parses values as float64.
MAX_INCREMENT = 2**53
# inc(n) for n > 1 queues n until the next flush; past this many queued, the emitter folds
# them into one (under a lock, once per this many calls), so memory stays bounded.
_MAX_QUEUED = 1024
FLOAT_MAX = sys.float_info.max
_randbelow = random.Random().randrange  # a reservoir's slot: not for security


class InvalidInputError(ValueError):
    """An emit got a value outside its metric's declaration (raised only in strict mode)."""


class Series:
    """One labelled series of a family, made at definition; its methods are the hot path."""

    __slots__ = ("family", "labels", "name", "tags", "values")

    def __init__(self, family: Family, values: tuple[str, ...]) -> None:
        self.family = family
        self.name = family.name
        self.values = values
        self.labels: dict[str, str] = dict(zip(family.label_keys, values, strict=True))
        self.tags: tuple[str, ...] = tuple(f"{k}:{v}" for k, v in self.labels.items())

    def __repr__(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in self.labels.items())
        return f"<{type(self).__name__} {self.name}{{{labels}}}>"


class OwnedLock:
    """A lock that knows whether this thread holds it.

    A signal handler runs on the main thread between two bytecodes, possibly while that
    thread holds this lock (inside a fold, a set(), a configure()): a handler's call that
    needs the lock asks `held_here()` first and takes another way instead of waiting for
    itself; a fork from a handler goes on without it (see `_process`). An RLock underneath:
    its owner is set by the acquire itself, so no bytecode falls between taking the lock and
    knowing who holds it.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> OwnedLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def held_here(self) -> bool:
        """True if this thread holds the lock (a signal handler interrupted its holder)."""
        return held_by_this_thread(self._lock)

    def acquire_for_fork(self, timeout: float) -> bool:
        """Take the lock for a fork, unless this thread already holds it (then False at once)."""
        if self.held_here():
            return False
        return self._lock.acquire(timeout=max(0.0, timeout))

    def try_acquire(self) -> bool:
        """Take the lock if it is free, never waiting (a green hub cannot wait)."""
        return bool(self._lock.acquire(blocking=False))

    def release(self) -> None:
        self._lock.release()


# Taken once per _MAX_QUEUED inc(n) calls, and by the flusher; across a fork by `process`,
# which gives a child a new one (hence looked up in this module at each use, not kept).
_FOLD_LOCK = OwnedLock()


class CounterSeries(Series):
    """A counter series. `inc()` costs one C call; exact under concurrent threads."""

    __slots__ = ("_count", "_expect", "_extra", "_feeds", "_sources")

    def __init__(self, family: Family, values: tuple[str, ...]) -> None:
        super().__init__(family, values)
        # Why itertools.count: its __next__ runs entirely in C while holding the GIL, so
        # concurrent increments are never lost, and it costs ~35 ns against ~210 ns for a
        # Lock around `+= 1` (measured on 3.11, 2 cores). The flusher never resets it: it
        # reads it with one more next() and compares with what that next() would return
        # had no emitter counted (`_expect`, kept by `CounterScan`), so no increment can
        # fall between a read and a reset.
        self._count = itertools.count()
        self._expect = 0  # the flusher's next read, if no emitter counts meanwhile
        self._extra: list[int] = []  # inc(n) for n > 1: list.append is atomic too
        # A derived series (sip_invite_result_total's classes) counts, at each take, what
        # its source series (sip_invite_response_total's codes) counted since the last one:
        # the hot path feeds one count, the flusher reads it for both metrics. `_sources`
        # holds the sources; `_feeds` the series fed by this one.
        self._sources: tuple[CounterSeries, ...] = ()
        self._feeds: tuple[CounterSeries, ...] = ()

    def inc(self, n: int = 1, /) -> None:
        """Add `n` (an int from 0 to 2**53, default 1). A bad `n` is dropped and counted."""
        try:
            if n == 1 and type(n) is int:
                next(self._count)
            elif type(n) is int and 0 <= n <= MAX_INCREMENT:
                if n:
                    for series in (self, *self._feeds):
                        extra = series._extra
                        extra.append(n)
                        series.family._extra_pending = True  # after the append: see CounterScan
                        if len(extra) > _MAX_QUEUED:
                            series._fold_extra()
            else:
                self.family._drop(DROP_INVALID_NUMBER, "n", n)
        except InvalidInputError:
            raise  # strict mode
        except Exception:
            self.family._drop(DROP_INVALID_NUMBER, "n", n)

    def _fold_extra(self) -> None:
        if _FOLD_LOCK.held_here():  # a signal handler interrupted a fold: the next one folds this
            return
        with _FOLD_LOCK:  # folding and taking `_extra` exclude each other; appends never wait
            extra = self._extra
            k = len(extra)
            if k > _MAX_QUEUED:
                total = sum(extra[:k])
                del extra[:k]  # atomic; appends made meanwhile stay
                extra.append(total)

    def _take_extra(self) -> int:
        """What inc(n) queued since the last take (flusher side, under its lock)."""
        if not self._extra:
            return 0
        with _FOLD_LOCK:
            extra = self._extra
            k = len(extra)
            total = sum(extra[:k])
            del extra[:k]  # atomic; appends made meanwhile stay for the next take
            return total

    def _count_also(self, source: CounterSeries) -> None:
        """Count, from now on, every increment of `source` too (made before any emit)."""
        self._sources = (*self._sources, source)
        source._feeds = (*source._feeds, self)


class CounterScan:
    """Passes over counter families' counts in C: which series counted since the last pass.

    Every count is read with one next(), all at once (`map`), and subtracted from its
    previous read (`last`): a series nobody counted reads exactly one more (our own next()),
    and `list.count(1)` says in C whether that holds for all. A family where nothing happened
    costs a few C loops, not a Python step per series. `take_span` reads one contiguous part
    (a family: host delivery's partial take); each series' last read lives here only, so a
    series is never counted by two passes. Made again when a family grows.
    """

    __slots__ = ("counts", "last", "series")

    def __init__(self, series: tuple[CounterSeries, ...]) -> None:
        self.series = series
        self.counts = tuple(s._count for s in series)
        self.last = [s._expect - 1 for s in series]

    def take(self) -> list[tuple[CounterSeries, int]]:
        """(series, emitter increments since the last take) for each series that counted."""
        now = list(map(next, self.counts))
        diffs = list(map(operator.sub, now, self.last))
        self.last = now
        if diffs.count(1) == len(diffs):
            return []
        series = self.series
        return [(series[i], d - 1) for i, d in enumerate(diffs) if d != 1]

    def take_span(
        self, start: int, stop: int, counts: tuple[itertools.count[int], ...]
    ) -> list[tuple[CounterSeries, int]]:
        """`take` for the series from `start` to `stop` only (`counts` is `self.counts[start:stop]`)."""
        now = list(map(next, counts))
        last = self.last
        diffs = list(map(operator.sub, now, last[start:stop]))
        last[start:stop] = now
        if diffs.count(1) == len(diffs):
            return []
        series = self.series
        return [(series[start + i], d - 1) for i, d in enumerate(diffs) if d != 1]

    def keep(self) -> None:
        """Hand each series its next expected read (before the scan is made again)."""
        for series, last in zip(self.series, self.last, strict=True):
            series._expect = last + 1


class DistributionSeries(Series):
    """A distribution series: its samples are kept until the next flush and all are sent.

    Past `max_samples` between two flushes, the kept samples are a uniform reservoir of all
    of them (Vitter's algorithm R), as datadog-go (`WithMaxSamplesPerContext`) and datadogpy
    (`max_metric_samples_per_context`) keep one; the backend sends each with the weight it
    stands for (`|@rate`), so the receiver's counts and rates stay right under overload.
    """

    __slots__ = ("_cap", "_hi", "_lo", "_over", "_over_mark", "_samples")

    def __init__(self, family: Family, values: tuple[str, ...]) -> None:
        super().__init__(family, values)
        assert family.kind == "distribution"
        family = cast("Distribution", family)
        self._samples: list[float] = []
        self._lo = family.minimum
        self._hi = family.maximum
        self._cap = family.max_samples
        # Samples offered past the cap, counted without a lock as counters count (`next()` on
        # an itertools.count is atomic); `_over_mark` is its value at the last take.
        self._over = itertools.count()
        self._over_mark = 0

    def observe(self, value: float, /) -> None:
        """Record one sample. A non-finite, out-of-range or non-numeric value is dropped."""
        try:
            if (type(value) is float or type(value) is int) and self._lo <= value <= self._hi:
                samples = self._samples
                if len(samples) < self._cap:
                    samples.append(value)
                else:
                    self._sample(value)
                return
            if (isinstance(value, numbers.Real) and not isinstance(value, bool)) or isinstance(value, Decimal):
                as_float = float(value)
                if self._lo <= as_float <= self._hi:
                    self.observe(as_float)
                    return
            self.family._drop(DROP_INVALID_NUMBER, "value", value)
        except InvalidInputError:
            raise  # strict mode
        except Exception:
            self.family._drop(DROP_INVALID_NUMBER, "value", value)

    def _sample(self, value: float) -> None:
        """Past the cap: the n-th sample since the last take replaces a kept one with probability cap/n."""
        cap = self._cap
        seen = cap + 1 + next(self._over) - self._over_mark
        slot = _randbelow(seen)
        samples = self._samples
        if slot < cap and slot < len(samples):
            samples[slot] = value

    def _take(self) -> list[float]:
        return self._take_seen()[0]

    def _take_seen(self) -> tuple[list[float], int]:
        """The kept samples, and how many samples they stand for (more than kept past the cap)."""
        samples = self._samples
        k = len(samples)
        over = next(self._over) - self._over_mark
        self._over_mark += over + 1
        if not k:
            return [], 0
        batch = samples[:k]
        del samples[:k]  # atomic; samples appended meanwhile stay for the next take
        return batch, k + over
