"""Gauges: a level (calls in progress), sent on every flush once it has a value.

A gauge is not summed between flushes like a counter: the flusher sends its current level,
every flush, from the first `set`/`inc`/`dec` on, including 0 after it went back.
"""

from __future__ import annotations

import itertools
import numbers
import os
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .family import Family
from .names import DROP_INVALID_NUMBER
from .series import _MAX_QUEUED, FLOAT_MAX, InvalidInputError, OwnedLock, Series

if TYPE_CHECKING:
    pass


def _finite(value: object) -> float | None:
    """`value` as a finite number (int kept as int), or None for anything else (bools too)."""
    if type(value) is int or type(value) is float:
        return value if -FLOAT_MAX <= value <= FLOAT_MAX else None  # the comparisons reject NaN
    if (isinstance(value, numbers.Real) and not isinstance(value, bool)) or isinstance(value, Decimal):
        as_float = float(value)
        return as_float if -FLOAT_MAX <= as_float <= FLOAT_MAX else None
    return None


class GaugeSeries(Series):
    """A gauge series. `inc()` / `dec()` cost one C call, lock-free and exact under threads.

    The level is `base + ups - downs`: `inc()` and `dec()` call `next()` on one of two
    `itertools.count` (atomic under the GIL, like a counter's), `inc(n)` / `dec(n)` append
    to a list, and `set(v)` records `v` with the counts it overrides, under a lock that
    only `set()` and the flusher take. An `inc()` racing a `set()` from another thread is
    ordered before or after it: counted once, or overridden by the set.

    A forked child starts at 0 and unsent: it has no calls in progress of its own.
    """

    __slots__ = (
        "_active",
        "_deferred",
        "_down",
        "_down_reads",
        "_extra",
        "_lock",
        "_pid",
        "_state",
        "_up",
        "_up_reads",
    )

    def __init__(self, family: Family, values: tuple[str, ...]) -> None:
        super().__init__(family, values)
        self._pid = os.getpid()
        self._lock = OwnedLock()  # set() and the flusher; never inc()/dec()
        # A set() from a signal handler that interrupted this thread inside the lock: the
        # level and the emitters' ups and downs when it was made, applied by the next fold
        # (one slot: dict.pop reads and clears it at once).
        self._deferred: dict[int, tuple[float, int, int]] = {}
        # The counts are never replaced (the helpers hold them), only read.
        self._up = itertools.count()
        self._down = itertools.count()
        # next() calls made by our reads, not by emitters: counted in the same C call as the
        # read itself (`_read`), so a signal handler's read never falls between the two.
        self._up_reads = itertools.count()
        self._down_reads = itertools.count()
        self._extra: list[float] = []  # inc(n) / dec(n): signed, list.append is atomic
        # The level, and the emitters' ups and downs it already holds (at the last fold).
        self._state: tuple[float, int, int] = (0, 0, 0)
        self._active = False  # sent from its first set/inc/dec on

    def _check_pid(self) -> None:
        """In a forked child, start again at 0, unsent (no calls in progress of its own).

        A parent thread may have held the lock at the fork: the child makes its own. No
        at-fork hook: whichever comes first in the child (this from set(), or the
        recorder's take of every series) does it, so the order of hooks does not matter.
        """
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = OwnedLock()
            self._fold()
            _, ups, downs = self._state
            self._state = (0, ups, downs)
            self._active = False

    def inc(self, n: float = 1, /) -> None:
        """Raise the level by `n` (a finite number >= 0, default 1). A bad `n` is dropped."""
        if type(n) is int and n == 1:
            next(self._up)
        else:
            self._add(n, 1)

    def dec(self, n: float = 1, /) -> None:
        """Lower the level by `n` (a finite number >= 0, default 1). A bad `n` is dropped."""
        if type(n) is int and n == 1:
            next(self._down)
        else:
            self._add(n, -1)

    def _add(self, n: object, sign: int) -> None:
        try:
            value = _finite(n)
            if value is None or value < 0:
                self.family._drop(DROP_INVALID_NUMBER, "n", n)
            else:
                extra = self._extra
                extra.append(sign * value)
                if len(extra) > _MAX_QUEUED:  # fold under the lock: memory stays bounded
                    self._check_pid()
                    if self._lock.held_here():  # a signal handler inside a fold: the next one folds this
                        return
                    with self._lock:
                        self._fold()
                    self._settle()
        except InvalidInputError:
            raise  # strict mode
        except Exception:
            self.family._drop(DROP_INVALID_NUMBER, "n", n)

    def set(self, value: float, /) -> None:
        """Set the level to `value` (a finite number). A bad value is dropped and counted."""
        try:
            level = _finite(value)
        except Exception:
            level = None
        if level is None:
            self.family._drop(DROP_INVALID_NUMBER, "value", value)
            return
        self._check_pid()
        if self._lock.held_here():  # a signal handler interrupted this thread inside the lock
            ups, downs = self._read()  # the moves made after this set go on top of it
            self._deferred[0] = (level, ups, downs)
            return
        with self._lock:
            self._fold(apply_deferred=False)  # what came before the set is overridden
            _, ups, downs = self._state
            self._state = (level, ups, downs)
            self._active = True
            if self._deferred:  # a handler's set() that interrupted this one came after it
                self._fold()
        self._settle()

    def _settle(self) -> None:
        """Apply a handler's set() that interrupted this thread inside the lock, before the
        thread goes on: its later moves then come after that set, in the order of the calls."""
        while self._deferred and not self._lock.held_here():
            with self._lock:
                self._fold()

    def _read(self) -> tuple[int, int]:
        """Emitters' inc() and dec() calls so far (under the lock)."""
        # One C call (no bytecode, so no signal handler, between the four nexts): each count
        # and the number of our reads before it, read together.
        up, up_reads, down, down_reads = map(next, (self._up, self._up_reads, self._down, self._down_reads))
        return up - up_reads, down - down_reads

    def _fold(self, apply_deferred: bool = True) -> bool:
        """Fold the moves made since the last fold into the level (under the lock); True if any.

        With `apply_deferred`, a set() a signal handler left (it interrupted this thread inside the
        lock) then overrides the moves made before it, and the inc()/dec() calls made after it
        (the handler's own) go on top of it."""
        ups, downs = self._read()
        level, ups0, downs0 = self._state
        extra = self._extra
        k = len(extra)
        if k:
            level += sum(extra[:k])
            del extra[:k]  # atomic; appends made meanwhile stay for the next fold
        new = level + (ups - ups0) - (downs - downs0)
        if not -FLOAT_MAX <= new <= FLOAT_MAX:  # moves that overflowed a float: counted, level kept
            drops = self.family._drops
            if drops:
                drops[DROP_INVALID_NUMBER].inc()
            new = self._state[0]
        deferred = self._deferred.pop(0, None) if apply_deferred and self._deferred else None
        if deferred is not None:  # a set() from a signal handler: over the moves made before it,
            # under those made after it (its read may follow this fold's: then none yet).
            new, ups_then, downs_then = deferred
            ups, downs = max(ups, ups_then), max(downs, downs_then)
            new += (ups - ups_then) - (downs - downs_then)
            self._active = True
        self._state = (new, ups, downs)
        return bool(k) or ups != ups0 or downs != downs0 or deferred is not None

    def _take(self) -> float | None:
        """The level now, or None while nothing ever set or moved it (flusher side)."""
        self._check_pid()
        with self._lock:
            if self._fold():
                self._active = True
            level = self._state[0] if self._active else None
        if self._deferred:  # a handler's set() during this take: it goes with the next one
            self._settle()
        return level

    def _quiet(self) -> bool:
        """Stop sending until the next set or move, keeping the level; True if it was being sent."""
        self._check_pid()
        with self._lock:
            self._fold()
            was, self._active = self._active, False
        self._settle()
        return was

    def _resume(self) -> None:
        with self._lock:
            self._active = True


def take_levels(family: Family, into: list[tuple[Series, float]]) -> None:
    """Append the level of each of `family`'s gauges that has one (flusher side, under its lock)."""
    for series in family._by_values.values():
        assert isinstance(series, GaugeSeries)
        level = series._take()
        if level is not None:
            into.append((series, level))


def holds_level_lock(family: Family) -> bool:
    """True if this thread holds the lock of one of `family`'s gauges (a signal handler interrupted it)."""
    return family.kind == "gauge" and any(
        isinstance(series, GaugeSeries) and series._lock.held_here() for series in family._by_values.values()
    )


def quiet_gauges(families: Iterable[Family]) -> list[GaugeSeries]:
    """Stop sending every gauge of `families` until it is next set or moved (the capture API:
    a block shows the gauges it moved, not every level the process ever sent); return those
    that were being sent, for `resume_gauges`."""
    return [
        series
        for family in families
        if family.kind == "gauge"
        for series in family._by_values.values()
        if isinstance(series, GaugeSeries) and series._quiet()
    ]


def resume_gauges(quieted: Iterable[GaugeSeries]) -> None:
    for series in quieted:
        series._resume()


class Gauge(Family):
    """A gauge family: a level per series, sent (`|g`) on every flush once it has a value.

    >>> queue = Gauge("myapp_queue_depth", labels={"queue": ("sip", "media")})
    >>> sip_queue = queue.series(queue="sip")   # bind once
    >>> sip_queue.inc(); sip_queue.dec()        # hot path
    >>> queue.set(12, queue="media")            # convenient, slower

    Several processes sending one gauge series to one agent overwrite each other's level:
    give each process a constant tag of its own (`constant_tags={"worker": "3"}`) and sum
    over it in the dashboard, or keep one process per host.
    """

    kind = "gauge"
    _series_type = GaugeSeries

    def series(self, /, **labels: str) -> GaugeSeries:
        found = super().series(**labels)
        assert isinstance(found, GaugeSeries)
        return found

    def set(self, value: float, /, **labels: Any) -> None:
        """Look up the series for `labels` and set its level: convenient, slower than a bound series."""
        series = self._find(labels)
        if series is not None:
            series.set(value)  # type: ignore[attr-defined]

    def inc(self, n: float = 1, /, **labels: Any) -> None:
        """Look up the series for `labels` and raise its level by `n`."""
        series = self._find(labels)
        if series is not None:
            series.inc(n)  # type: ignore[attr-defined]

    def dec(self, n: float = 1, /, **labels: Any) -> None:
        """Look up the series for `labels` and lower its level by `n`."""
        series = self._find(labels)
        if series is not None:
            series.dec(n)  # type: ignore[attr-defined]
