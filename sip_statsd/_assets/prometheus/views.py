"""Which Grafana panels each family of the catalog gets, and in which row.

The rows and their order are the Datadog dashboard's groups (`_assets.datadog.families.GROUPS`),
so both dashboards read alike; a family missing here gets one generic panel in "Your metrics".
`q` queries rates over `$__rate_interval`, `r` counts over the dashboard's range (`$__range`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..._core.names import METRIC_DROPPED_INPUTS_TOTAL, METRIC_SAMPLED_AWAY_TOTAL, METRIC_SEND_ERRORS_TOTAL
from ..._sip.values import (
    METRIC_ACTIVE_CALLS,
    METRIC_BYE_TOTAL,
    METRIC_CALL_DURATION_S,
    METRIC_CALL_JITTER_MS,
    METRIC_CALL_LOSS_FRACTION,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_QUALITY_ISSUE_TOTAL,
    METRIC_CALL_QUALITY_TOTAL,
    METRIC_CALL_RTT_MS,
    METRIC_DTLS_HANDSHAKE_TOTAL,
    METRIC_INVITE_RESPONSE_TOTAL,
    METRIC_INVITE_RESULT_TOTAL,
    METRIC_REGISTER_RESULT_TOTAL,
    METRIC_REGISTERED_CONTACTS,
    METRIC_REGISTRATION_REQUEST_DELAY_MS,
    METRIC_REQUEST_RESULT_TOTAL,
    METRIC_SESSION_REQUEST_DELAY_MS,
    METRIC_SESSION_TIMER_REFRESH_TOTAL,
    METRIC_STIR_ATTESTATION_TOTAL,
    METRIC_STIR_VERIFY_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
    METRIC_VOICE_ATTACH_NATIVE_TOTAL,
    METRIC_VOICE_ATTACH_TOTAL,
)
from .panels import Panel, stat, timeseries, toplist
from .peers import attestation_panels, contacts_panels, register_panels, rrd_panels
from .promql import PromQL, ratio, zero_or
from .rules import ISA_CODES, REDIRECTS, SEER_CODES, invite_attempts

PanelsOf = Callable[[PromQL, PromQL], list[Panel]]


def _legend(keys: tuple[str, ...]) -> str:
    return " ".join(f"{{{{{k}}}}}" for k in keys) or "all"


def _counts(family: str, title: str, keys: tuple[str, ...], *, top: str | None = None) -> PanelsOf:
    """Per-second rate by `keys` as stacked bars; with `top`, also a top list over the range."""

    def panels(q: PromQL, r: PromQL) -> list[Panel]:
        out = [timeseries(f"{title} (per second)", {_legend(keys): q.rate(family, by=keys)}, unit="reqps", bars=True)]
        if top:
            out.append(toplist(top, r.rate(family, by=keys, fn="increase"), _legend(keys)))
        return out

    return panels


def _share(q: PromQL, family: str, bad: dict[str, str], of: dict[str, str] | None = None) -> str:
    return ratio(q.rate(family, bad), q.rate(family, of))


def invite_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_INVITE_RESULT_TOTAL
    final = {"code_class": "!=1xx"}
    return [
        timeseries(
            "INVITE outcomes by class and direction (per second)",
            {"{{direction}} {{code_class}}": q.rate(m, by=("direction", "code_class"))},
            unit="reqps",
            bars=True,
        ),
        stat("Answer-seizure ratio", ratio(r.rate(m, {"code_class": "=2xx"}), invite_attempts(r, {}))),
        timeseries(
            "Answer-seizure ratio and 5xx / 6xx shares of final outcomes",
            {
                "ASR": ratio(q.rate(m, {"code_class": "=2xx"}), invite_attempts(q, {})),
                "5xx share": _share(q, m, {"code_class": "=5xx"}, final),
                "6xx share": _share(q, m, {"code_class": "=6xx"}, final),
            },
            unit="percentunit",
        ),
    ]


def _kpis(q: PromQL) -> dict[str, str]:
    m = METRIC_INVITE_RESPONSE_TOTAL
    attempts = q.rate(m)
    established = f"({attempts} - {zero_or(q.rate(m, {'code': '=~' + REDIRECTS}), attempts)})"
    return {
        "SER": ratio(q.rate(m, {"code": "=200"}), established),
        "SEER": ratio(q.rate(m, {"code": "=~" + SEER_CODES}), established),
        "ISA": ratio(q.rate(m, {"code": "=~" + ISA_CODES}), attempts),
    }


def response_panels(q: PromQL, r: PromQL) -> list[Panel]:
    over_range = _kpis(r)
    return [
        timeseries(
            "RFC 6076 session establishment (SER, SEER) and ineffective attempts (ISA)",
            _kpis(q),
            unit="percentunit",
        ),
        stat("SER (session establishment ratio)", over_range["SER"]),
        stat("SEER (session establishment effectiveness)", over_range["SEER"]),
        stat("ISA (ineffective session attempts)", over_range["ISA"]),
        toplist(
            "Final INVITE responses by code (time range)",
            r.rate(METRIC_INVITE_RESPONSE_TOTAL, by=("code",), fn="increase"),
            "{{code}}",
        ),
    ]


def setup_delay_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_SESSION_REQUEST_DELAY_MS
    return [
        timeseries(
            "Session request delay (RFC 6076 SRD)",
            {
                "p50 success": q.quantile(0.5, m, {"result": "=success"}),
                "p95 success": q.quantile(0.95, m, {"result": "=success"}),
                "p50 failure": q.quantile(0.5, m, {"result": "=failure"}),
            },
            unit="s",
        )
    ]


def active_calls_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_ACTIVE_CALLS
    return [
        timeseries("Calls in progress by direction", {"{{direction}}": f"{q.by(('direction',))}({q.selector(m)})"}),
        stat("Calls in progress", f"{q.by()}({q.selector(m)})", unit="short", decimals=0),
    ]


def duration_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_CALL_DURATION_S
    return [
        timeseries(
            "Call duration (RFC 6076 SDT): average and p95",
            {"average": q.mean(m), "p95": q.quantile(0.95, m)},
            unit="s",
        )
    ]


def refresh_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_SESSION_TIMER_REFRESH_TOTAL
    return [
        *_counts(m, "Session-timer refreshes by result", ("result",))(q, r),
        stat("Failed refreshes (422-gave-up, 481)", _share(r, m, {"result": "=~422-gave-up|481"})),
    ]


def _failing(family: str, title: str, bad: dict[str, str], share_title: str) -> PanelsOf:
    def panels(q: PromQL, r: PromQL) -> list[Panel]:
        return [*_counts(family, title, ("result",))(q, r), stat(share_title, _share(r, family, bad))]

    return panels


def native_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_VOICE_ATTACH_NATIVE_TOTAL

    def share(p: PromQL) -> str:
        native, moded = p.rate(m), p.rate(METRIC_VOICE_ATTACH_TOTAL)
        both = f"({zero_or(native, moded)} + {zero_or(moded, native)})"
        return ratio(native, both)

    return [
        *_counts(m, "Native voice attach by result", ("result",))(q, r),
        timeseries("Native rollout's share of voice attaches", {"native share": share(q)}, unit="percentunit"),
        stat("Native rollout's share", share(r)),
    ]


def _percentiles(family: str, title: str) -> PanelsOf:
    def panels(q: PromQL, r: PromQL) -> list[Panel]:
        queries = {f"p{int(p * 100)}": q.quantile(p, family) for p in (0.5, 0.95, 0.99)}
        return [timeseries(title, queries, unit=q.metrics[family].unit)]

    return panels


def grade_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_CALL_QUALITY_TOTAL

    def poor(p: PromQL) -> str:
        graded = f"({p.rate(m)} - {zero_or(p.rate(m, {'grade': '=unknown'}), p.rate(m))})"
        return ratio(p.rate(m, {"grade": "=~poor|unusable"}), graded)

    return [
        *_counts(m, "Calls by quality grade (ITU-T G.109)", ("grade",))(q, r),
        timeseries(
            "Poor or unusable calls, and calls without RTCP data",
            {"poor or unusable": poor(q), "no RTCP data": _share(q, m, {"grade": "=unknown"})},
            unit="percentunit",
        ),
        stat("Poor or unusable share of graded calls", poor(r)),
    ]


def issue_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_CALL_QUALITY_ISSUE_TOTAL
    per_call = ratio(r.rate(m), r.rate(METRIC_CALL_QUALITY_TOTAL))
    return [
        *_counts(m, "Quality issues by kind", ("issue",), top="Quality issues by kind (time range)")(q, r),
        stat("Quality issues per call", per_call, unit="short", decimals=2),
    ]


# The table, in the Datadog dashboard's order: family -> (row key of GROUPS, its panels).
VIEWS: dict[str, tuple[str, PanelsOf]] = {
    METRIC_INVITE_RESULT_TOTAL: ("setup", invite_panels),
    METRIC_INVITE_RESPONSE_TOTAL: ("setup", response_panels),
    METRIC_SESSION_REQUEST_DELAY_MS: ("setup", setup_delay_panels),
    METRIC_ACTIVE_CALLS: ("setup", active_calls_panels),
    METRIC_CALL_DURATION_S: ("teardown", duration_panels),
    METRIC_BYE_TOTAL: (
        "teardown",
        _counts(
            METRIC_BYE_TOTAL,
            "BYEs by side and reason",
            ("by", "reason_class"),
            top="BYEs by direction, side and reason (time range)",
        ),
    ),
    METRIC_TRANSACTION_TIMEOUT_TOTAL: (
        "transactions",
        _counts(
            METRIC_TRANSACTION_TIMEOUT_TOTAL,
            "Transaction timeouts by method",
            ("method",),
            top="Methods timing out most (time range)",
        ),
    ),
    METRIC_REQUEST_RESULT_TOTAL: (
        "transactions",
        _counts(
            METRIC_REQUEST_RESULT_TOTAL,
            "Non-INVITE outcomes by method and class",
            ("method", "code_class"),
            top="Non-INVITE outcomes by method and class (time range)",
        ),
    ),
    METRIC_REGISTER_RESULT_TOTAL: ("registration", register_panels),
    METRIC_REGISTRATION_REQUEST_DELAY_MS: ("registration", rrd_panels),
    METRIC_REGISTERED_CONTACTS: ("registration", contacts_panels),
    METRIC_SESSION_TIMER_REFRESH_TOTAL: ("session_timers", refresh_panels),
    METRIC_DTLS_HANDSHAKE_TOTAL: (
        "security",
        _failing(
            METRIC_DTLS_HANDSHAKE_TOTAL, "DTLS-SRTP handshakes by result", {"result": "!=ok"}, "DTLS handshakes failing"
        ),
    ),
    METRIC_STIR_VERIFY_TOTAL: (
        "security",
        _failing(
            METRIC_STIR_VERIFY_TOTAL, "STIR verification by result", {"result": "=failed"}, "STIR verifications failed"
        ),
    ),
    METRIC_STIR_ATTESTATION_TOTAL: ("security", attestation_panels),
    METRIC_VOICE_ATTACH_TOTAL: (
        "voice_attach",
        _counts(METRIC_VOICE_ATTACH_TOTAL, "Voice attach by mode and result", ("mode", "result")),
    ),
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL: (
        "voice_attach",
        _counts(METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL, "Voice-attach mode fallbacks", ("from", "to")),
    ),
    METRIC_VOICE_ATTACH_NATIVE_TOTAL: ("voice_attach", native_panels),
    METRIC_CALL_RTT_MS: ("quality", _percentiles(METRIC_CALL_RTT_MS, "Round-trip time")),
    METRIC_CALL_JITTER_MS: ("quality", _percentiles(METRIC_CALL_JITTER_MS, "Jitter")),
    METRIC_CALL_LOSS_FRACTION: ("quality", _percentiles(METRIC_CALL_LOSS_FRACTION, "Packet loss")),
    METRIC_CALL_MOS_ESTIMATE: ("quality", _percentiles(METRIC_CALL_MOS_ESTIMATE, "Estimated MOS (1-5)")),
    METRIC_CALL_QUALITY_TOTAL: ("quality", grade_panels),
    METRIC_CALL_QUALITY_ISSUE_TOTAL: ("quality", issue_panels),
    METRIC_DROPPED_INPUTS_TOTAL: (
        "health",
        _counts(
            METRIC_DROPPED_INPUTS_TOTAL,
            "Dropped inputs by metric and reason",
            ("metric", "reason"),
            top="Most dropped inputs (time range)",
        ),
    ),
    METRIC_SEND_ERRORS_TOTAL: ("health", _counts(METRIC_SEND_ERRORS_TOTAL, "Send errors by kind", ("kind",))),
    METRIC_SAMPLED_AWAY_TOTAL: (
        "health",
        _counts(METRIC_SAMPLED_AWAY_TOTAL, "Samples left out of a full reservoir, by metric", ("metric",)),
    ),
}


def generic_panels(q: PromQL, family: str) -> list[Panel]:
    """One panel for a family the table does not know (a user's own), by its kind."""
    metric = q.metrics[family]
    keys = metric.family.label_keys
    title = metric.family.description or metric.family.name
    if metric.kind == "counter":
        return [timeseries(f"{title} (per second)", {_legend(keys): q.rate(family, by=keys)}, unit="reqps", bars=True)]
    if metric.kind == "histogram":
        queries = {f"p{int(p * 100)} {_legend(keys)}": q.quantile(p, family, by=keys) for p in (0.5, 0.95, 0.99)}
        return [timeseries(title, queries, unit=metric.unit)]
    return [timeseries(title, {_legend(keys): f"{q.by(keys)}({q.selector(family)})"})]
