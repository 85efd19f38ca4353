"""What the drop path needs: the strict-mode miss, and words for a bad input."""

from __future__ import annotations

import enum
import reprlib
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .family import Family

_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 6


class MissError(Exception):
    """Raised by the strict-mode miss; the helper's slow path turns it into a ValueError."""


class StrictMiss:
    """The strict-mode miss iterator: `next()` on it sends the helper to its slow path."""

    def __iter__(self) -> StrictMiss:
        return self

    def __next__(self) -> object:
        raise MissError


STRICT_MISS = StrictMiss()
# Soft mode, until a family's first bad value is kept for the drop log: the same detour to
# the helper's slow path, which names the value (the fast path cannot: it only counts).
FIRST_MISS = StrictMiss()


def show(value: object) -> str:
    """`repr(value)`, at most 80 characters, whatever the object does.

    reprlib bounds the work for big containers and strings, not only the text.
    """
    if isinstance(value, enum.Enum) and isinstance(value, str | int):  # 'normal' (ByeReason.NORMAL)
        return f"{_REPR.repr(value.value)} ({type(value).__name__}.{value.name})"
    try:
        shown = _REPR.repr(value)
    except Exception:
        shown = f"<unprintable {type(value).__name__}>"
    return shown if len(shown) <= 80 else shown[:77] + "..."


def allowed_text(values: Iterable[object]) -> str:
    """Allowed label values as a user writes them: `['local', 'remote']`, not the enums' reprs."""
    return repr([str(v) for v in values])


def _bounds(low: float | None, high: float | None) -> str:
    if low is None:
        return "a finite number"
    if high is None or high >= sys.float_info.max:  # no bound above but the float's own
        return f"a finite number >= {low:g}"
    return f"a finite number from {low:g} to {high:g}"


def explain(family: Family, reason: str, key: str) -> str:
    """What `key` of `family` should have been, for a strict-mode error."""
    if reason == "unknown_value" and key in family.allowed:
        return f"one of {allowed_text(family.allowed[key])}"
    if reason == "sample_overflow":
        return "within the samples kept per series between flushes"
    if reason == "invalid_number" and family.kind == "gauge":  # a level: any finite number; a step: >= 0
        return "a finite number" if key == "value" else "a finite number >= 0"
    if reason == "invalid_number" and key == "value":
        return _bounds(getattr(family, "minimum", None), getattr(family, "maximum", None))
    if reason == "invalid_number":
        return "a non-negative int"
    return "declared"
