"""The SIP catalog: the origin package's metrics and those added since, declared with the public family API.

Every series of every family exists once `build_catalog` returns; the helpers that feed
them live in `_helpers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from ._family import FLOAT_MAX, Counter, Distribution, Family
from ._recorder import Recorder
from ._values import (
    BY_SIDES,
    BYE_REASONS,
    CODE_CLASSES,
    DIRECTIONS,
    DTLS_RESULTS,
    METHODS,
    METRIC_BYE_TOTAL,
    METRIC_CALL_JITTER_MS,
    METRIC_CALL_LOSS_FRACTION,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_QUALITY_ISSUE_TOTAL,
    METRIC_CALL_QUALITY_TOTAL,
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
    QUALITY_GRADES,
    QUALITY_ISSUES,
    REFRESH_RESULTS,
    STIR_RESULTS,
    VOICE_ATTACH_MODES,
    VOICE_MODE_PIPELINE,
    VOICE_MODE_REALTIME,
    VOICE_RESULT_CONFIG_ERROR,
    VOICE_RESULT_OK,
)

SIP_CODES = range(100, 700)


@dataclass(frozen=True)
class SipCatalog:
    """The SIP families of one recorder."""

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
    # Call quality, counted by observe_call_qos too.
    call_quality: Counter
    call_quality_issue: Counter

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
        call_rtt_ms=qos(METRIC_CALL_RTT_MS, "Per-call RTCP round-trip time, milliseconds.", FLOAT_MAX),
        call_jitter_ms=qos(METRIC_CALL_JITTER_MS, "Per-call RTCP interarrival jitter, milliseconds.", FLOAT_MAX),
        call_loss_fraction=qos(METRIC_CALL_LOSS_FRACTION, "Per-call RTCP packet loss fraction, 0 to 1.", 1.0),
        call_mos_estimate=qos(METRIC_CALL_MOS_ESTIMATE, "Per-call estimated MOS, 1 to 5.", 5.0, 1.0),
        call_quality=counter(
            METRIC_CALL_QUALITY_TOTAL,
            "Calls by ITU-T G.109 quality grade of their MOS; 'unknown' when no valid MOS was given.",
            grade=QUALITY_GRADES,
        ),
        call_quality_issue=counter(
            METRIC_CALL_QUALITY_ISSUE_TOTAL,
            "Calls past a quality threshold (high RTT, jitter or loss; low MOS), one count per issue.",
            issue=QUALITY_ISSUES,
        ),
    )
