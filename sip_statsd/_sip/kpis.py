"""The helpers beyond the origin: non-INVITE outcomes, calls in progress, setup delay (RFC 6076).

Same discipline as `helpers`: look-up tables made once, down to an `itertools.count` or
a series; an undeclared value falls through to the family's miss iterator (the drop
counter in soft mode); only an exception takes the slow path that names the bad argument.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import Any

from .._core.drops import allowed_text
from .._core.family import Family
from .._core.gauge import GaugeSeries
from .._core.names import DROP_UNKNOWN_VALUE
from .._core.series import CounterSeries, DistributionSeries
from .catalog import SIP_CODES, SipCatalog
from .values import (
    CODE_CLASSES,
    DIRECTIONS,
    METHOD_ACK,
    METHOD_INVITE,
    METHOD_OTHER,
    REQUEST_METHODS,
    SETUP_RESULT_FAILURE,
    SETUP_RESULT_SUCCESS,
)

_NOWHERE: dict[object, Any] = {}
_MISS = len(CODE_CLASSES)  # the last cell of a request_result row: the family's miss iterator
# Code → index of its class in a row; shared by every row, made once.
_CLASS_INDEX: dict[object, int] = {code: code // 100 - 1 for code in SIP_CODES}
_NOT_HERE = (METHOD_INVITE, METHOD_ACK)
_CODE = "a SIP response code from 100 to 699"
_DIRECTION = f"one of {allowed_text(DIRECTIONS)}"


def _drop(family: Family, key: str, value: object, expected: str) -> None:
    family.recorder._drop(family, DROP_UNKNOWN_VALUE, key, value, expected)


def _is_in(value: object, allowed: Container[object]) -> bool:
    try:
        return value in allowed
    except Exception:
        return False


@dataclass(frozen=True)
class KpiHelpers:
    request_result: Callable[..., None]
    call_started: Callable[..., None]
    call_ended: Callable[..., None]
    observe_setup_delay: Callable[..., None]


def make_kpi_helpers(  # noqa: PLR0915 - one closure per helper
    cat: SipCatalog, extra: dict[str, str] | None = None
) -> KpiHelpers:
    """The helpers over all the series (no peers), or one peer's (`extra`: its label, a `PeerView`)."""
    extra = extra or {}
    rr = cat.request_result

    def count(direction: str, method: str, klass: str) -> Iterator[object]:
        series = rr.series(direction=direction, method=method, code_class=klass, **extra)
        assert isinstance(series, CounterSeries)
        return series._count

    # method → direction → row: one count per class, then the miss. INVITE and ACK have no
    # rows (their look-up gives the miss row); any other method is `other`.
    rows: list[list[Any]] = []
    by_method: dict[object, dict[object, list[Any]]] = {}
    for method in REQUEST_METHODS:
        by_direction: dict[object, list[Any]] = {}
        for direction in DIRECTIONS:
            row = [*(count(direction, method, klass) for klass in CODE_CLASSES), rr._miss]
            rows.append(row)
            by_direction[str(direction)] = row
        by_method[str(method)] = by_direction
    for excluded in _NOT_HERE:
        by_method[excluded] = {}
    miss_row: list[Any] = [rr._miss] * (_MISS + 1)
    rr_get = by_method.get
    rr_other = by_method[METHOD_OTHER]
    class_get = _CLASS_INDEX.get

    def set_rr_miss(miss: Iterator[object]) -> None:
        for row in rows:
            row[_MISS] = miss
        miss_row[:] = [miss] * (_MISS + 1)

    rr._follow_miss(set_rr_miss)

    def request_result_slow(direction: object, method: object, code: object) -> None:
        if not _is_in(direction, DIRECTIONS):
            _drop(rr, "direction", direction, _DIRECTION)
        elif _is_in(method, _NOT_HERE):
            _drop(rr, "method", method, "a non-INVITE method: count INVITE outcomes with invite_result (ACK has none)")
        elif not _is_in(code, SIP_CODES):
            _drop(rr, "code", code, _CODE)
        else:  # an unhashable method: like any other method not declared, it is `other`
            try:
                next(rr_other[str(direction)][class_get(code, _MISS)])
            except Exception:
                _drop(rr, "method", method, "a SIP method name")

    def request_result(direction: str, method: str, code: int, peer: str | None = None) -> None:
        """Count the final response of a non-INVITE transaction, by method and class.

        `method` in exact upper case (REGISTER, OPTIONS, BYE, ...; any other → `other`);
        INVITE and ACK are dropped and counted (use `invite_result` for INVITE).

        >>> request_result("inbound", "REGISTER", 401)  # sip_request_result_total{...,code_class:4xx}
        """
        try:
            next(rr_get(method, rr_other).get(direction, miss_row)[class_get(code, _MISS)])
        except Exception:
            request_result_slow(direction, method, code)

    ac = cat.active_calls
    gauges = {str(d): ac.series(direction=d, **extra) for d in DIRECTIONS}
    assert all(isinstance(g, GaugeSeries) for g in gauges.values())
    up_get = {d: g._up for d, g in gauges.items()}.get
    down_get = {d: g._down for d, g in gauges.items()}.get
    durations: dict[object, DistributionSeries] = {
        str(d): cat.call_duration_s.series(direction=d, **extra) for d in DIRECTIONS
    }
    duration_get = durations.get
    ac_miss = ac._miss

    def call_started(direction: str, peer: str | None = None) -> None:
        """A call started (an INVITE dialog confirmed, or however your service counts one).

        >>> call_started("inbound")   # sip_active_calls{direction:inbound} + 1
        """
        try:
            next(up_get(direction, ac_miss))
        except Exception:
            _drop(ac, "direction", direction, _DIRECTION)

    def call_ended(direction: str, duration_s: float | None = None, peer: str | None = None) -> None:
        """A call ended: one fewer in progress; `duration_s` (>= 0) also goes to sip_call_duration_s.

        >>> call_ended("inbound", duration_s=93.4)
        """
        try:
            next(down_get(direction, ac_miss))
        except Exception:
            _drop(ac, "direction", direction, _DIRECTION)
            return
        if duration_s is not None:
            series = duration_get(direction)
            if series is None:  # the direction was dropped above
                return
            samples = series._samples  # fast path as observe_call_qos's; observe() checks the rest
            if type(duration_s) is float and 0.0 <= duration_s <= series._hi and len(samples) < series._cap:
                samples.append(duration_s)
            else:
                series.observe(duration_s)

    ac._follow_miss(lambda miss: _set_cell(call_started, "ac_miss", miss))

    sd = cat.session_request_delay_ms
    sd_table: dict[object, dict[object, DistributionSeries]] = {
        str(d): {
            True: sd.series(direction=d, result=SETUP_RESULT_SUCCESS, **extra),
            False: sd.series(direction=d, result=SETUP_RESULT_FAILURE, **extra),
        }
        for d in DIRECTIONS
    }
    sd_get = sd_table.get

    def observe_setup_delay(direction: str, delay_ms: float, success: bool, peer: str | None = None) -> None:
        """Record an RFC 6076 session request delay (SRD), in milliseconds (>= 0).

        `success` True: INVITE to its first non-100 provisional or 2xx; False: INVITE to a
        failure final response.

        >>> observe_setup_delay("outbound", 182.0, True)
        """
        try:
            series = sd_get(direction, _NOWHERE).get(success)
        except Exception:
            series = None
        if series is not None:
            samples = series._samples  # fast path as observe_call_qos's; observe() checks the rest
            if type(delay_ms) is float and 0.0 <= delay_ms <= series._hi and len(samples) < series._cap:
                samples.append(delay_ms)
            else:
                series.observe(delay_ms)
        elif not _is_in(direction, DIRECTIONS):
            _drop(sd, "direction", direction, _DIRECTION)
        else:
            _drop(sd, "success", success, "True or False")

    return KpiHelpers(request_result, call_started, call_ended, observe_setup_delay)


def _set_cell(emit: Callable[..., None], name: str, value: object) -> None:
    """Rewrite the closure variable `name` of `emit` (shared by every closure over it)."""
    assert emit.__closure__ is not None
    emit.__closure__[emit.__code__.co_freevars.index(name)].cell_contents = value
