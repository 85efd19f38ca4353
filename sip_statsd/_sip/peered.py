"""The per-peer variants of the helpers, made only for an instance that declares peers.

Each is its peerless twin (in `helpers`, `kpis`, `qos`) with one more `dict.get` first:
the peer's table, or `other`'s for any peer not declared (None included). The peerless
twins take `peer` too and ignore it, so the instance without peers costs what it cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._core.gauge import GaugeSeries
from .._core.series import CounterSeries, DistributionSeries
from .catalog import SIP_CODES, SipCatalog, code_class
from .kpis import _CLASS_INDEX, _MISS, _NOT_HERE, KpiHelpers, _drop, _is_in, _set_cell, make_kpi_helpers
from .peerless import make_origin_peerless
from .qos import make_observe_call_qos
from .registration import _hashable, peer_labels
from .values import (
    CODE_CLASSES,
    DIRECTIONS,
    METHOD_OTHER,
    METHODS,
    REQUEST_METHODS,
    SETUP_RESULT_FAILURE,
    SETUP_RESULT_SUCCESS,
)

_NOWHERE: dict[object, Any] = {}
_DIRECTION = "one of inbound, outbound"


def _split(cat: SipCatalog, build: Callable[[dict[str, str]], Any]) -> tuple[dict[object, Any], Any]:
    """`build(labels)` for each declared peer (by name) and for `other` (returned apart)."""
    *declared, other = peer_labels(cat)
    return {labels["peer"]: build(labels) for labels in declared}, build(other)


@dataclass(frozen=True)
class PeeredHelpers:
    invite_result: Callable[..., None]
    transaction_timeout: Callable[..., None]


def make_peered_helpers(cat: SipCatalog) -> PeeredHelpers:
    inv, resp = cat.invite_result, cat.invite_response
    exact = {code for code in SIP_CODES if str(code) in resp.allowed["code"]}

    # Read from the family's table (1,200 entries a peer), not through series(), which checks.
    shown = {c: str(c) if c in exact else code_class(c) for c in SIP_CODES}
    cells = {v: s._count for v, s in resp._by_values.items() if isinstance(s, CounterSeries)}  # (direction, code, peer)

    def codes(extra: dict[str, str]) -> dict[object, Any]:  # direction → code → count
        return {str(d): {c: cells[(d, shown[c], extra["peer"])] for c in SIP_CODES} for d in DIRECTIONS}

    inv_peers, inv_other = _split(cat, codes)
    inv_get = inv_peers.get
    inv_miss = inv._miss

    def invite_result(direction: str, code: int, peer: str | None = None) -> None:
        """Count a final INVITE outcome: `direction` inbound/outbound, `code` 100-699, `peer` the far end.

        A peer not declared (None included) counts as `other`.

        >>> invite_result("outbound", 486, peer="carrier-a")
        """
        try:
            next(inv_get(peer, inv_other).get(direction, _NOWHERE).get(code, inv_miss))
        except Exception:
            if not _hashable(peer):
                invite_result(direction, code)
            elif not _is_in(direction, DIRECTIONS):
                _drop(inv, "direction", direction, _DIRECTION)
            else:
                _drop(inv, "code", code, "a SIP response code from 100 to 699")

    inv._follow_miss(lambda miss: _set_cell(invite_result, "inv_miss", miss))

    tt = cat.transaction_timeout

    def methods(extra: dict[str, str]) -> tuple[Callable[..., Any], Iterator[object]]:
        counts = {str(m): tt.series(method=m, **extra)._count for m in METHODS}
        return counts.get, counts[METHOD_OTHER]

    tt_peers, tt_other = _split(cat, methods)
    tt_get = tt_peers.get

    def transaction_timeout(method: str, peer: str | None = None) -> None:
        """Count a transaction timeout by SIP method (exact upper case; any other → `other`) and peer.

        >>> transaction_timeout("INVITE", peer="carrier-a")
        """
        try:
            get, other = tt_get(peer, tt_other)
            next(get(method, other))
        except Exception:
            next(tt_other[1])  # unhashable method or peer: still a timeout

    return PeeredHelpers(invite_result, transaction_timeout)


def make_peered_kpis(cat: SipCatalog) -> KpiHelpers:  # noqa: PLR0915 - one closure per helper
    rr = cat.request_result
    rows: list[list[Any]] = []

    def by_method(extra: dict[str, str]) -> tuple[Callable[..., Any], dict[object, list[Any]]]:
        table: dict[object, dict[object, list[Any]]] = {}
        for method in REQUEST_METHODS:
            by_direction: dict[object, list[Any]] = {}
            for direction in DIRECTIONS:
                row = [
                    *(
                        rr.series(direction=direction, method=method, code_class=k, **extra)._count
                        for k in CODE_CLASSES
                    ),
                    rr._miss,
                ]
                rows.append(row)
                by_direction[str(direction)] = row
            table[str(method)] = by_direction
        for excluded in _NOT_HERE:
            table[excluded] = {}
        return table.get, table[METHOD_OTHER]

    rr_peers, rr_other = _split(cat, by_method)
    rr_get = rr_peers.get
    miss_row: list[Any] = [rr._miss] * (_MISS + 1)
    class_get = _CLASS_INDEX.get

    def set_rr_miss(miss: Iterator[object]) -> None:
        for row in rows:
            row[_MISS] = miss
        miss_row[:] = [miss] * (_MISS + 1)

    rr._follow_miss(set_rr_miss)

    def request_result(direction: str, method: str, code: int, peer: str | None = None) -> None:
        """Count the final response of a non-INVITE transaction, by method, class and peer.

        >>> request_result("outbound", "OPTIONS", 200, peer="carrier-a")
        """
        try:
            get, other = rr_get(peer, rr_other)
            next(get(method, other).get(direction, miss_row)[class_get(code, _MISS)])
        except Exception:
            if not _hashable(peer):
                request_result(direction, method, code)
            elif not _is_in(direction, DIRECTIONS):
                _drop(rr, "direction", direction, _DIRECTION)
            elif _is_in(method, _NOT_HERE):
                _drop(rr, "method", method, "a non-INVITE method: count INVITE outcomes with invite_result")
            elif not _is_in(code, SIP_CODES):
                _drop(rr, "code", code, "a SIP response code from 100 to 699")
            else:  # an unhashable method: `other`
                request_result(direction, METHOD_OTHER, code, peer)

    ac = cat.active_calls

    def gauges(extra: dict[str, str]) -> dict[object, GaugeSeries]:
        found = {str(d): ac.series(direction=d, **extra) for d in DIRECTIONS}
        assert all(isinstance(g, GaugeSeries) for g in found.values())
        return found  # type: ignore[return-value]

    ac_peers, ac_other = _split(cat, gauges)
    up_get = {p: {d: g._up for d, g in t.items()} for p, t in ac_peers.items()}.get
    up_other = {d: g._up for d, g in ac_other.items()}
    down_get = {p: {d: g._down for d, g in t.items()} for p, t in ac_peers.items()}.get
    down_other = {d: g._down for d, g in ac_other.items()}
    dur = cat.call_duration_s
    dur_peers, dur_other = _split(cat, lambda extra: {str(d): dur.series(direction=d, **extra) for d in DIRECTIONS})
    dur_get = dur_peers.get
    ac_miss = ac._miss

    def call_started(direction: str, peer: str | None = None) -> None:
        """A call started, with `peer` (sip_active_calls{direction,peer} + 1).

        >>> call_started("outbound", peer="carrier-a")
        """
        try:
            next(up_get(peer, up_other).get(direction, ac_miss))
        except Exception:
            if _hashable(peer):
                _drop(ac, "direction", direction, _DIRECTION)
            else:
                call_started(direction)

    def call_ended(direction: str, duration_s: float | None = None, peer: str | None = None) -> None:
        """A call ended: one fewer in progress for `peer`; `duration_s` (>= 0) to sip_call_duration_s.

        >>> call_ended("outbound", duration_s=93.4, peer="carrier-a")
        """
        try:
            next(down_get(peer, down_other).get(direction, ac_miss))
        except Exception:
            if _hashable(peer):
                _drop(ac, "direction", direction, _DIRECTION)
            else:
                call_ended(direction, duration_s)
            return
        if duration_s is not None:
            series: DistributionSeries | None = dur_get(peer, dur_other).get(direction)
            if series is None:
                return
            samples = series._samples  # the peerless fast path; observe() checks the rest
            if type(duration_s) is float and 0.0 <= duration_s <= series._hi and len(samples) < series._cap:
                samples.append(duration_s)
            else:
                series.observe(duration_s)

    ac._follow_miss(lambda miss: _set_cell(call_started, "ac_miss", miss))

    sd = cat.session_request_delay_ms

    def delays(extra: dict[str, str]) -> dict[object, dict[object, DistributionSeries]]:
        return {
            str(d): {
                True: sd.series(direction=d, result=SETUP_RESULT_SUCCESS, **extra),
                False: sd.series(direction=d, result=SETUP_RESULT_FAILURE, **extra),
            }
            for d in DIRECTIONS
        }

    sd_peers, sd_other = _split(cat, delays)
    sd_get = sd_peers.get

    def observe_setup_delay(direction: str, delay_ms: float, success: bool, peer: str | None = None) -> None:
        """Record an RFC 6076 session request delay (SRD; PDD's measure), milliseconds, for `peer`.

        >>> observe_setup_delay("outbound", 182.0, True, peer="carrier-a")
        """
        try:
            series = sd_get(peer, sd_other).get(direction, _NOWHERE).get(success)
        except Exception:
            if not _hashable(peer):
                observe_setup_delay(direction, delay_ms, success)
                return
            series = None
        if series is not None:
            samples = series._samples  # the peerless fast path; observe() checks the rest
            if type(delay_ms) is float and 0.0 <= delay_ms <= series._hi and len(samples) < series._cap:
                samples.append(delay_ms)
            else:
                series.observe(delay_ms)
        elif not _is_in(direction, DIRECTIONS):
            _drop(sd, "direction", direction, _DIRECTION)
        else:
            _drop(sd, "success", success, "True or False")

    return KpiHelpers(request_result, call_started, call_ended, observe_setup_delay)


def make_peered_qos(cat: SipCatalog) -> Callable[..., None]:
    """`observe_call_qos` with `peer`: one peerless closure per peer, chosen by one look-up."""
    peers, other = _split(cat, lambda extra: make_observe_call_qos(cat, extra))
    qos_get = peers.get

    def observe_call_qos(
        rtt_ms: float | None = None,
        jitter_ms: float | None = None,
        loss_fraction: float | None = None,
        mos_estimate: float | None = None,
        *,
        peer: str | None = None,
        zero_is_measured: bool = False,
    ) -> None:
        """Record one call's RTCP QoS for `peer` (see the peerless helper for the rules).

        >>> observe_call_qos(rtt_ms=38.5, loss_fraction=0.0, zero_is_measured=True, peer="carrier-a")
        """
        try:
            emit = qos_get(peer, other)
        except Exception:
            emit = other
        if zero_is_measured:
            emit(rtt_ms, jitter_ms, loss_fraction, mos_estimate, zero_is_measured=True)
        else:
            emit(rtt_ms, jitter_ms, loss_fraction, mos_estimate)

    return observe_call_qos


@dataclass(frozen=True)
class PeerView:
    """The hot helpers bound to one peer: the peerless closures over that peer's series.

    `metrics.peer("carrier-a").invite_result("outbound", 486)` costs what `invite_result`
    costs on an instance without peers (no look-up of the peer per call): bind the view
    once per call leg or trunk, where the peer is known.
    """

    name: str
    invite_result: Callable[..., None]
    transaction_timeout: Callable[..., None]
    request_result: Callable[..., None]
    call_started: Callable[..., None]
    call_ended: Callable[..., None]
    observe_setup_delay: Callable[..., None]
    observe_call_qos: Callable[..., None]


def make_peer_view(cat: SipCatalog, name: str) -> PeerView:
    """The view of `name` (a declared peer or `other`) on an instance with peers."""
    extra = {"peer": name}
    invite_result, transaction_timeout = make_origin_peerless(cat, extra)
    kpis = make_kpi_helpers(cat, extra)
    return PeerView(
        name,
        invite_result,
        transaction_timeout,
        kpis.request_result,
        kpis.call_started,
        kpis.call_ended,
        kpis.observe_setup_delay,
        make_observe_call_qos(cat, extra),
    )
