"""The SIP catalog (the origin package's metrics) and its eleven helpers.

The catalog is declared with the public family API. Each helper is a closure over a
dict that maps every valid argument tuple straight to a series' C-level increment, so a
call is one tuple, one `dict.get` and one C call. A miss gets the family's miss slot
instead (a C-level drop counter in soft mode), so the drop path costs what the hit path
costs; only an exception (an unhashable argument, or strict mode) takes the slow path.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

from ._family import Counter, Distribution, DistributionSeries, Family
from ._recorder import Recorder
from ._values import (
    BY_SIDES,
    BYE_REASONS,
    CODE_CLASSES,
    DIRECTION_OUTBOUND,
    DIRECTIONS,
    DROP_UNKNOWN_VALUE,
    DTLS_RESULTS,
    METHOD_OTHER,
    METHODS,
    METRIC_BYE_TOTAL,
    METRIC_CALL_JITTER_MS,
    METRIC_CALL_LOSS_FRACTION,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_RTT_MS,
    METRIC_DTLS_HANDSHAKE_TOTAL,
    METRIC_INVITE_RESULT_TOTAL,
    METRIC_SESSION_TIMER_REFRESH_TOTAL,
    METRIC_STIR_VERIFY_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
    METRIC_VOICE_ATTACH_NATIVE_TOTAL,
    METRIC_VOICE_ATTACH_TOTAL,
    NATIVE_RESULT_ERR,
    NATIVE_RESULT_OK,
    REFRESH_RESULTS,
    STIR_RESULTS,
    VOICE_ATTACH_MODES,
    VOICE_MODE_PIPELINE,
    VOICE_MODE_REALTIME,
    VOICE_RESULT_CONFIG_ERROR,
    VOICE_RESULT_OK,
)

SIP_CODES = range(100, 700)
_FLOAT_MAX = sys.float_info.max
_BOOLS = (True, False)


@dataclass(frozen=True)
class SipCatalog:
    """The thirteen SIP families of one recorder."""

    invite_result: Counter
    bye: Counter
    transaction_timeout: Counter
    session_timer_refresh: Counter
    dtls_handshake: Counter
    stir_verify: Counter
    voice_attach: Counter
    voice_attach_mode_fallback: Counter
    voice_attach_native: Counter
    call_rtt_ms: Distribution
    call_jitter_ms: Distribution
    call_loss_fraction: Distribution
    call_mos_estimate: Distribution

    @property
    def families(self) -> tuple[Family, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


def build_catalog(recorder: Recorder) -> SipCatalog:
    """Declare the SIP families on `recorder`: every series exists when this returns."""

    def counter(name: str, description: str, **labels: Iterable[str]) -> Counter:
        return Counter(name, labels=labels, description=description, recorder=recorder)

    def qos(name: str, description: str, maximum: float, minimum: float = 0.0) -> Distribution:
        return Distribution(name, minimum=minimum, maximum=maximum, description=description, recorder=recorder)

    return SipCatalog(
        invite_result=counter(
            METRIC_INVITE_RESULT_TOTAL,
            "Final INVITE outcomes by direction and response class.",
            direction=DIRECTIONS,
            code_class=CODE_CLASSES,
        ),
        bye=counter(
            METRIC_BYE_TOTAL,
            "BYEs by direction, the side that hung up, and reason.",
            direction=DIRECTIONS,
            by=BY_SIDES,
            reason_class=BYE_REASONS,
        ),
        transaction_timeout=counter(
            METRIC_TRANSACTION_TIMEOUT_TOTAL,
            "Transaction timeouts (Timer B/F) by method; unknown methods count as 'other'.",
            method=METHODS,
        ),
        session_timer_refresh=counter(
            METRIC_SESSION_TIMER_REFRESH_TOTAL,
            "RFC 4028 session-timer refresh outcomes.",
            result=REFRESH_RESULTS,
        ),
        dtls_handshake=counter(METRIC_DTLS_HANDSHAKE_TOTAL, "DTLS-SRTP handshake outcomes.", result=DTLS_RESULTS),
        stir_verify=counter(METRIC_STIR_VERIFY_TOTAL, "RFC 8224 STIR verification outcomes.", result=STIR_RESULTS),
        voice_attach=counter(
            METRIC_VOICE_ATTACH_TOTAL,
            "Voice-attach decisions by mode and result.",
            mode=VOICE_ATTACH_MODES,
            result=(VOICE_RESULT_OK, VOICE_RESULT_CONFIG_ERROR),
        ),
        voice_attach_mode_fallback=counter(
            METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
            "Voice-attach mode fallbacks.",
            **{"from": (VOICE_MODE_PIPELINE,), "to": (VOICE_MODE_REALTIME,)},
        ),
        voice_attach_native=counter(
            METRIC_VOICE_ATTACH_NATIVE_TOTAL,
            "Native voice-attach outcomes.",
            result=(NATIVE_RESULT_OK, NATIVE_RESULT_ERR),
        ),
        call_rtt_ms=qos(METRIC_CALL_RTT_MS, "Per-call RTCP round-trip time, milliseconds.", _FLOAT_MAX),
        call_jitter_ms=qos(METRIC_CALL_JITTER_MS, "Per-call RTCP interarrival jitter, milliseconds.", _FLOAT_MAX),
        call_loss_fraction=qos(METRIC_CALL_LOSS_FRACTION, "Per-call RTCP packet loss fraction, 0 to 1.", 1.0),
        call_mos_estimate=qos(METRIC_CALL_MOS_ESTIMATE, "Per-call estimated MOS, 1 to 5.", 5.0, 1.0),
    )


_Check = tuple[str, object, object, str]
_Table = dict[object, Callable[[], object]]  # label key, value given, allowed container, what is expected


def _slow(family: Family, checks: Iterable[_Check]) -> None:
    """Name the first bad argument and drop it (or raise, strict). Off the hot path."""
    for key, value, allowed, expected in checks:
        try:
            ok = value in allowed  # type: ignore[operator]
        except Exception:
            ok = False
        if not ok:
            family.recorder._drop(family, DROP_UNKNOWN_VALUE, key, value, expected)
            return
    family.recorder._drop(family, DROP_UNKNOWN_VALUE, "arguments", tuple(c[1] for c in checks), "valid")


def _table(entries: _Table) -> Callable[[object, Callable[[], object]], Callable[[], object]]:
    """The bound `get` of a look-up table: argument tuple -> a series' C-level increment."""
    return entries.get


def _one_of(values: Iterable[object]) -> str:
    return f"one of {list(values)}"


def _skip_qos(value: object) -> bool:
    """The origin's rule: None, NaN, +-inf, zero and negative mean "no data", not a sample."""
    if value is None:
        return True
    try:
        return bool(value != value or value <= 0 or value == math.inf)  # type: ignore[operator]  # noqa: PLR0124 - NaN test for any number type
    except Exception:
        return False  # not a number: observe() drops it as invalid


class Helpers:
    """The eleven helpers, bound to one catalog. Each is a plain function attribute."""

    invite_result: Callable[[str, int], None]
    bye: Callable[[str, str, str], None]
    bye_outbound: Callable[[str, str], None]
    transaction_timeout: Callable[[str], None]
    session_timer_refresh: Callable[[str], None]
    dtls_handshake: Callable[[str], None]
    stir_verify: Callable[[str], None]
    voice_attach: Callable[[str, bool], None]
    voice_attach_mode_fallback: Callable[[str, str], None]
    voice_attach_native: Callable[[bool], None]
    observe_call_qos: Callable[..., None]

    def __init__(self, cat: SipCatalog) -> None:  # noqa: PLR0915 - one closure per helper
        inv = cat.invite_result
        inv_miss = inv._miss
        inv_get = _table(
            {
                (d, code): inv.series(direction=d, code_class=f"{code // 100}xx").inc_one
                for d in DIRECTIONS
                for code in SIP_CODES
            }
        )

        def invite_result(direction: str, code: int) -> None:
            """Count a final INVITE outcome: `direction` inbound/outbound, `code` 100-699.

            >>> invite_result("inbound", 486)   # sip_invite_result_total{direction:inbound,code_class:4xx}
            """
            try:
                inv_get((direction, code), inv_miss[0])()
            except Exception:
                _slow(
                    inv,
                    (
                        ("direction", direction, DIRECTIONS, _one_of(DIRECTIONS)),
                        ("code", code, SIP_CODES, "a SIP response code from 100 to 699"),
                    ),
                )

        bye_f = cat.bye
        bye_miss = bye_f._miss
        bye_get = _table(
            {
                (d, by, r): bye_f.series(direction=d, by=by, reason_class=r).inc_one
                for d in DIRECTIONS
                for by in BY_SIDES
                for r in BYE_REASONS
            }
        )

        def bye_checks(direction: object, by: object, reason_class: object) -> tuple[_Check, ...]:
            return (
                ("direction", direction, DIRECTIONS, _one_of(DIRECTIONS)),
                ("by", by, BY_SIDES, _one_of(BY_SIDES)),
                ("reason_class", reason_class, BYE_REASONS, _one_of(BYE_REASONS)),
            )

        def bye(direction: str, by: str, reason_class: str) -> None:
            """Count a BYE: `by` local/remote, `reason_class` normal/timer-expired/error/user-hangup.

            >>> bye("inbound", "remote", "normal")
            """
            try:
                bye_get((direction, by, reason_class), bye_miss[0])()
            except Exception:
                _slow(bye_f, bye_checks(direction, by, reason_class))

        def bye_outbound(by: str, reason_class: str) -> None:
            """Count a BYE on an outbound call (the origin's `Bye`).

            >>> bye_outbound("local", "user-hangup")
            """
            try:
                bye_get((DIRECTION_OUTBOUND, by, reason_class), bye_miss[0])()
            except Exception:
                _slow(bye_f, bye_checks(DIRECTION_OUTBOUND, by, reason_class))

        tt = cat.transaction_timeout
        tt_get = _table({m: tt.series(method=m).inc_one for m in METHODS})
        tt_other = tt.series(method=METHOD_OTHER).inc_one

        def transaction_timeout(method: str) -> None:
            """Count a transaction timeout by SIP method (exact upper case); any other → `other`.

            >>> transaction_timeout("INVITE")
            """
            try:
                tt_get(method, tt_other)()
            except Exception:
                tt_other()  # unhashable: still a timeout, of an unknown method

        def one_label(family: Counter, key: str, name: str, doc: str) -> Callable[[str], None]:
            allowed = family.allowed[key]
            get = _table({v: family.series(**{key: v}).inc_one for v in allowed})
            miss = family._miss

            def emit(value: str) -> None:
                try:
                    get(value, miss[0])()
                except Exception:
                    _slow(family, ((key, value, allowed, _one_of(allowed)),))

            emit.__name__ = emit.__qualname__ = name
            emit.__doc__ = doc
            return emit

        session_timer_refresh = one_label(
            cat.session_timer_refresh,
            "result",
            "session_timer_refresh",
            """Count an RFC 4028 refresh: ok, 422-bumped, 422-gave-up, 481 or role-swap.

            >>> session_timer_refresh("422-bumped")
            """,
        )
        dtls_handshake = one_label(
            cat.dtls_handshake,
            "result",
            "dtls_handshake",
            """Count a DTLS-SRTP handshake: ok, fail, timeout or fingerprint-mismatch.

            >>> dtls_handshake("ok")
            """,
        )
        stir_verify = one_label(
            cat.stir_verify,
            "result",
            "stir_verify",
            """Count an RFC 8224 STIR verification: verified, failed, soft-fail or no-identity.

            >>> stir_verify("verified")
            """,
        )

        va = cat.voice_attach
        va_miss = va._miss
        va_get = _table(
            {
                (mode, ok): va.series(mode=mode, result=VOICE_RESULT_OK if ok else VOICE_RESULT_CONFIG_ERROR).inc_one
                for mode in VOICE_ATTACH_MODES
                for ok in _BOOLS
            }
        )

        def voice_attach(mode: str, ok: bool) -> None:
            """Count a voice-attach decision: `mode` cascaded/realtime; `ok` False → config_error.

            >>> voice_attach("realtime", True)
            """
            try:
                va_get((mode, ok), va_miss[0])()
            except Exception:
                _slow(
                    va,
                    (
                        ("mode", mode, VOICE_ATTACH_MODES, _one_of(VOICE_ATTACH_MODES)),
                        ("ok", ok, _BOOLS, "True or False"),
                    ),
                )

        fb = cat.voice_attach_mode_fallback
        fb_miss = fb._miss
        fb_get = _table(
            {
                (VOICE_MODE_PIPELINE, VOICE_MODE_REALTIME): fb.series(
                    **{"from": VOICE_MODE_PIPELINE, "to": VOICE_MODE_REALTIME}
                ).inc_one
            }
        )

        def voice_attach_mode_fallback(from_mode: str, to_mode: str) -> None:
            """Count a voice-attach fallback (the only one declared: pipeline → realtime).

            >>> voice_attach_mode_fallback("pipeline", "realtime")
            """
            try:
                fb_get((from_mode, to_mode), fb_miss[0])()
            except Exception:
                _slow(
                    fb,
                    (
                        ("from", from_mode, (VOICE_MODE_PIPELINE,), _one_of((VOICE_MODE_PIPELINE,))),
                        ("to", to_mode, (VOICE_MODE_REALTIME,), _one_of((VOICE_MODE_REALTIME,))),
                    ),
                )

        nat = cat.voice_attach_native
        nat_miss = nat._miss
        nat_get = _table(
            {ok: nat.series(result=NATIVE_RESULT_OK if ok else NATIVE_RESULT_ERR).inc_one for ok in _BOOLS}
        )

        def voice_attach_native(ok: bool) -> None:
            """Count a native voice attach: `ok` True → ok, False → err.

            >>> voice_attach_native(False)
            """
            try:
                nat_get(ok, nat_miss[0])()
            except Exception:
                _slow(nat, (("ok", ok, _BOOLS, "True or False"),))

        rtt, jitter, loss, mos = (
            f.series() for f in (cat.call_rtt_ms, cat.call_jitter_ms, cat.call_loss_fraction, cat.call_mos_estimate)
        )
        assert isinstance(rtt, DistributionSeries)

        def observe_call_qos(
            rtt_ms: float | None = None,
            jitter_ms: float | None = None,
            loss_fraction: float | None = None,
            mos_estimate: float | None = None,
        ) -> None:
            """Record one call's RTCP QoS, once, at call cleanup.

            None, NaN, ±inf, zero and negative values mean "no data" and are skipped;
            loss_fraction above 1 and MOS outside 1-5 are invalid (dropped and counted).

            >>> observe_call_qos(rtt_ms=38.5, jitter_ms=4.2, loss_fraction=0.003, mos_estimate=4.3)
            """
            if not _skip_qos(rtt_ms):
                rtt.observe(rtt_ms)  # type: ignore[arg-type]
            if not _skip_qos(jitter_ms):
                jitter.observe(jitter_ms)  # type: ignore[arg-type]
            if not _skip_qos(loss_fraction):
                loss.observe(loss_fraction)  # type: ignore[arg-type]
            if not _skip_qos(mos_estimate):
                mos.observe(mos_estimate)  # type: ignore[arg-type]

        self.invite_result = invite_result
        self.bye = bye
        self.bye_outbound = bye_outbound
        self.transaction_timeout = transaction_timeout
        self.session_timer_refresh = session_timer_refresh
        self.dtls_handshake = dtls_handshake
        self.stir_verify = stir_verify
        self.voice_attach = voice_attach
        self.voice_attach_mode_fallback = voice_attach_mode_fallback
        self.voice_attach_native = voice_attach_native
        self.observe_call_qos = observe_call_qos
