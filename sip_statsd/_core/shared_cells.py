"""Shared delivery's cells: what a process writes in its slot of the shared mapping (see `shared`).

The series of a recorder with shared delivery become these subclasses (same slots, so the
objects stay: helpers and users hold them); their cells point into the process's slot.
"""

from __future__ import annotations

import random
from typing import Any

from .gauge import GaugeSeries, _finite
from .names import DROP_INVALID_NUMBER
from .series import MAX_INCREMENT, CounterSeries, DistributionSeries, InvalidInputError

GAUGE_WORDS = 4  # a gauge's words in a slot: ups, downs, adjustment (a double), sets and moves by n
_randbelow = random.Random().randrange  # a reservoir's slot: not for security


class SharedCell:
    """A counter cell in this process's slot: `next()` adds one, where helpers call `next()` on an
    `itertools.count` (it returns None: nobody reads what a shared cell's `next()` returns)."""

    __slots__ = ("at", "view")

    def __init__(self, view: Any, at: int) -> None:
        self.view = view
        self.at = at

    def __iter__(self) -> SharedCell:
        return self

    def __next__(self) -> None:
        # One statement, no call inside: CPython switches threads only at calls and backward
        # jumps, never between this read and this write (tests/test_shared.py, eight threads).
        # Unsigned 64 bits, wrapping around: never an exception on the emit path.
        self.view[self.at] = (self.view[self.at] + 1) & 0xFFFFFFFFFFFFFFFF

    def add(self, n: int) -> None:
        self.view[self.at] = (self.view[self.at] + n) & 0xFFFFFFFFFFFFFFFF


class _GaugeCells:
    """A gauge's adjustment in this process's slot (ups and downs are `SharedCell`s)."""

    __slots__ = ("at", "floats", "view")

    def __init__(self, view: Any, floats: Any, at: int) -> None:
        self.view, self.floats, self.at = view, floats, at


class _Ring:
    """A distribution series' ring in this process's slot, and where the sender's marks are."""

    __slots__ = ("at", "floats", "marks", "size", "view")

    def __init__(self, view: Any, floats: Any, at: int, marks: int, size: int) -> None:
        self.view, self.floats, self.at, self.marks, self.size = view, floats, at, marks, size


class SharedCounterSeries(CounterSeries):
    """A counter series whose cell is in the shared mapping (`_count` is a `SharedCell`)."""

    __slots__ = ()

    def inc(self, n: int = 1, /) -> None:
        try:
            if n == 1 and type(n) is int:
                next(self._count)
            elif type(n) is int and 0 <= n <= MAX_INCREMENT:
                self._count.add(n)  # type: ignore[attr-defined]  # derived series are fed at the read
            else:
                self.family._drop(DROP_INVALID_NUMBER, "n", n)
        except InvalidInputError:
            raise
        except Exception:
            self.family._drop(DROP_INVALID_NUMBER, "n", n)


class SharedGaugeSeries(GaugeSeries):
    """A gauge series counted in the shared mapping: this process's part of the host's level."""

    __slots__ = ()

    def _add(self, n: object, sign: int) -> None:
        try:
            value = _finite(n)
            if value is None or value < 0:
                self.family._drop(DROP_INVALID_NUMBER, "n", n)
                return
            cells: _GaugeCells = self._extra  # type: ignore[assignment]
            floats, at = cells.floats, cells.at
            floats[at] = floats[at] + sign * value
            cells.view[at + 1] = cells.view[at + 1] + 1
        except InvalidInputError:
            raise
        except Exception:
            self.family._drop(DROP_INVALID_NUMBER, "n", n)

    def set(self, value: float, /) -> None:
        """This process's part becomes `value` (the host's level is the sum over processes)."""
        level = _finite(value)
        if level is None:
            self.family._drop(DROP_INVALID_NUMBER, "value", value)
            return
        cells: _GaugeCells = self._extra  # type: ignore[assignment]
        view, at = cells.view, cells.at
        moved = view[at - 2] - view[at - 1]  # this process's ups minus downs
        cells.floats[at] = level - moved
        view[at + 1] = view[at + 1] + 1

    def _take(self) -> float | None:  # the sender reads the mapping instead
        return None

    def _quiet(self) -> bool:
        return False


class SharedDistributionSeries(DistributionSeries):
    """A distribution series whose samples go to this process's ring (`_over` is a `_Ring`)."""

    __slots__ = ()

    def observe(self, value: float, /) -> None:
        try:
            if not (type(value) is float or type(value) is int):
                value = _finite(value)  # type: ignore[assignment]
            if value is not None and self._lo <= value <= self._hi:
                ring: _Ring = self._over  # type: ignore[assignment]
                view, at, size = ring.view, ring.at, ring.size
                written = view[at]
                read = view[ring.marks]  # the sender's mark: written by the sender only
                if written - read < size:
                    ring.floats[at + 2 + written % size] = value
                    view[at] = written + 1  # after the sample: the sender reads the count first
                else:  # full: the n-th sample past it replaces a kept one with probability size/n
                    over = view[at + 1] + 1
                    view[at + 1] = over
                    slot = _randbelow(size + over - view[ring.marks + 1])
                    if slot < size:
                        ring.floats[at + 2 + (read + slot) % size] = value
                return
            self.family._drop(DROP_INVALID_NUMBER, "value", value)
        except InvalidInputError:
            raise
        except Exception:
            self.family._drop(DROP_INVALID_NUMBER, "value", value)

    def _take_seen(self) -> tuple[list[float], int]:  # the sender reads the mapping instead
        return [], 0


class _Full:
    """The helpers' fast path appends while `len(samples) < cap`: never here, so they call observe()."""

    __slots__ = ()

    def __len__(self) -> int:
        return 2**62


_FULL = _Full()
