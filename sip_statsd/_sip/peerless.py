"""The peerless hot helpers of the origin's INVITE outcome and timeout, and what every helper shares.

`make_origin_peerless` makes `invite_result` and `transaction_timeout` over one set of series:
all of them on an instance without peers (`helpers`), or one peer's for a `PeerView` (`peered`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Iterable, Iterator
from typing import Any

from .._core.drops import allowed_text
from .._core.family import Family
from .._core.names import DROP_UNKNOWN_VALUE
from .._core.series import CounterSeries
from .catalog import SIP_CODES, SipCatalog, code_class
from .values import DIRECTIONS, METHOD_OTHER, METHODS

_Arg = tuple[str, Container[object], str]  # label key, allowed values, what is expected
_NOWHERE: dict[object, Any] = {}  # the next level for an undeclared value: every .get() misses
_Emit = Callable[..., None]


def _one_of(values: Iterable[object]) -> str:
    return f"one of {allowed_text(values)}"


def _arg(key: str, allowed: Collection[object], expected: str | None = None) -> _Arg:
    return key, allowed, expected or _one_of(allowed)


_INVITE_ARGS = (_arg("direction", DIRECTIONS), _arg("code", SIP_CODES, "a SIP response code from 100 to 699"))


def _slow(family: Family, args: tuple[_Arg, ...], *values: object) -> None:
    """Name the first bad argument and drop it (or raise, strict). Off the hot path."""
    for (key, allowed, expected), value in zip(args, values, strict=True):
        try:
            ok = value in allowed
        except Exception:
            ok = False
        if not ok:
            family.recorder._drop(family, DROP_UNKNOWN_VALUE, key, value, expected)
            return
    family.recorder._drop(family, DROP_UNKNOWN_VALUE, "arguments", values, "valid")


def _follow_miss(family: Family, emit: _Emit, name: str) -> None:
    """Keep the closure variable `name` of `emit` equal to `family`'s miss iterator.

    The helpers read their miss iterator from a closure cell, which costs nothing on the
    hot path; turning strict mode on or off rewrites the cell (shared by every helper that
    closes over the same variable).
    """
    assert emit.__closure__ is not None
    cell = emit.__closure__[emit.__code__.co_freevars.index(name)]

    def set_miss(miss: Iterator[object]) -> None:
        cell.cell_contents = miss

    family._follow_miss(set_miss)


def make_origin_peerless(
    cat: SipCatalog, extra: dict[str, str] | None = None
) -> tuple[Callable[..., None], Callable[..., None]]:
    """`invite_result` and `transaction_timeout` over one set of series: all of them without
    peers, or one peer's (`extra`: its label) for a `PeerView`. They take `peer` and ignore it."""
    extra = extra or {}
    inv = cat.invite_result
    resp = cat.invite_response
    exact = {code for code in SIP_CODES if str(code) in resp.allowed["code"]}
    # One count per (direction, code): sip_invite_response_total's series (the exact code,
    # or its class); sip_invite_result_total is derived from them at flush. 1,200 entries:
    # read from the family's table, not through series(), which checks its arguments.
    shown = {code: str(code) if code in exact else code_class(code) for code in SIP_CODES}
    cells = {
        v: s._count for v, s in resp._by_values.items() if isinstance(s, CounterSeries)
    }  # (direction, code[, peer])
    tail = tuple(extra.values())  # the peer, last
    inv_table: dict[object, Any] = {
        # Plain str keys: a dict whose keys are all exact str takes CPython's faster look-up.
        str(d): {code: cells[(d, shown[code], *tail)] for code in SIP_CODES}
        for d in DIRECTIONS
    }
    inv_get = inv_table.get
    inv_miss = inv._miss

    def invite_result(direction: str, code: int, peer: str | None = None) -> None:
        """Count a final INVITE outcome: `direction` inbound/outbound, `code` 100-699.

        `peer`: the far end, counted only on an instance that declares peers.

        >>> invite_result("inbound", 486)   # sip_invite_result_total{direction:inbound,code_class:4xx}
        """
        try:
            next(inv_get(direction, _NOWHERE).get(code, inv_miss))
        except Exception:
            _slow(inv, _INVITE_ARGS, direction, code)

    _follow_miss(inv, invite_result, "inv_miss")

    tt = cat.transaction_timeout
    tt_counts: dict[object, Any] = {str(m): tt.series(method=m, **extra)._count for m in METHODS}
    tt_get = tt_counts.get
    tt_other = tt_counts[METHOD_OTHER]

    def transaction_timeout(method: str, peer: str | None = None) -> None:
        """Count a transaction timeout by SIP method (exact upper case); any other → `other`.

        >>> transaction_timeout("INVITE")
        """
        try:
            next(tt_get(method, tt_other))
        except Exception:
            next(tt_other)  # unhashable: still a timeout, of an unknown method

    return invite_result, transaction_timeout
