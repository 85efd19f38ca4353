"""Which widgets and monitors each family of the catalog gets, and in which group.

To give a new family its place on the dashboard, add one line to `VIEWS` (its group, a
function making its widgets, and one making its monitors if it has any) and, for a new
group, one entry in `GROUPS`. A family missing from `VIEWS` falls back to the generic
widget of `dashboard` and the test that every family has its own widgets fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    METRIC_REQUEST_RESULT_TOTAL,
    METRIC_SESSION_REQUEST_DELAY_MS,
    METRIC_SESSION_TIMER_REFRESH_TOTAL,
    METRIC_STIR_VERIFY_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
    METRIC_VOICE_ATTACH_NATIVE_TOTAL,
    METRIC_VOICE_ATTACH_TOTAL,
)
from . import peers
from .kpis import (
    active_calls_widgets,
    duration_widgets,
    grade_monitors,
    grade_widgets,
    issue_widgets,
    mos_monitors,
    percentiles,
    request_widgets,
    response_monitors,
    response_widgets,
    setup_delay_widgets,
)
from .parts import Monitor, Queries, Thresholds, Widget, monitor, number, timeseries, toplist, value

Widgets = Callable[[Queries], list[Widget]]
Monitors = Callable[[Queries, Thresholds, str], list[Monitor]]


@dataclass(frozen=True)
class View:
    """Where a family goes on the dashboard, what it shows, and what watches it."""

    group: str
    widgets: Widgets
    monitors: Monitors | None = None


# Group key -> (title, note: what it shows and what to do when it looks wrong). Dashboard order.
GROUPS: dict[str, tuple[str, str]] = {
    "setup": (
        "Call setup",
        "Final INVITE outcomes per response class and direction, per second. **Answer-seizure ratio** "
        "(ASR) = 2xx / attempts (all final outcomes, 2xx-6xx, and INVITE timeouts). A falling ASR with "
        "rising **5xx** points at this service or its upstreams (check the logs and the transaction "
        "timeouts below); rising **6xx** at the far end (declines, global busy); rising 4xx at dialling, "
        "routing or authentication.",
    ),
    "peers": peers.PEER_GROUP,
    "teardown": (
        "Call teardown",
        "BYEs by the side that hung up and its reason. Many `timer-expired` or `error` BYEs mean calls "
        "cut by session timers or failures rather than by people: compare with the session timers group.",
    ),
    "transactions": (
        "Transactions",
        "Transaction timeouts (Timer B / F) by method. A peak for one method usually means an unreachable "
        "next hop; for all methods, a network partition or an overloaded proxy.",
    ),
    "registration": peers.REGISTRATION_GROUP,
    "session_timers": (
        "Session timers",
        "RFC 4028 refresh outcomes. `422-gave-up` and `481` mean refreshes that failed and calls that will "
        "end early; a `role-swap` rise means peers disagree on the refresher.",
    ),
    "security": (
        "Security",
        "DTLS-SRTP handshakes and RFC 8224 STIR verification. DTLS `fingerprint-mismatch` is a signalling / "
        "media mismatch or an attack; `timeout` is usually blocked UDP. STIR `failed` means signatures that "
        "did not verify (certificate fetch, clock skew, a re-signing peer).",
    ),
    "voice_attach": (
        "Voice attach",
        "Voice-attach decisions by mode and result, fallbacks from the pipeline to realtime, and the native "
        "path's outcomes. `config_error` is a deployment problem, not a caller's; the native rollout's "
        "share is native attaches / (native + mode-based attaches).",
    ),
    "quality": (
        "Call quality",
        "Per-call RTCP figures recorded once at call end: p50 / p95 / p99 of round-trip time, jitter, loss "
        "and estimated MOS (needs percentiles enabled on these distribution metrics in Datadog). A p95 "
        "RTT or jitter rise with a stable p50 is a subset of routes or carriers: split by your own tags.",
    ),
    "health": (
        "sip-statsd health",
        "The library's own counters. **Dropped inputs** are values the calling code passed that the catalog "
        "does not declare: a bug in the instrumentation, by metric and reason (run the service's tests with "
        "`strict=True`). **Send errors** are datagrams that did not reach the agent, by kind; when the agent "
        "is down entirely they cannot arrive either, and the no-data monitor on INVITE outcomes fires.",
    ),
    "custom": ("Your metrics", "Families defined with `Counter`, `Distribution` or `Gauge`: one widget each."),
}


# --- call setup --------------------------------------------------------------------------

_FINAL = "!code_class:1xx"


def invite_widgets(q: Queries) -> list[Widget]:
    m = METRIC_INVITE_RESULT_TOTAL
    shares = {
        "ok": q.count(m, "code_class:2xx"),
        "s5": q.count(m, "code_class:5xx"),
        "s6": q.count(m, "code_class:6xx"),
        "final": q.count(m, _FINAL),
        "timeouts": q.count(METRIC_TRANSACTION_TIMEOUT_TOTAL, "method:INVITE"),
    }
    asr = f"100 * ok / {peers.ATTEMPTS}"  # a timed-out INVITE is an attempt with no outcome
    return [
        timeseries(
            "INVITE outcomes by class and direction (per second)",
            {"a": q.count(m, by=("direction", "code_class"), rate=True)},
            display="bars",
        ),
        value("Answer-seizure ratio", {k: shares[k] for k in ("ok", "final", "timeouts")}, asr),
        timeseries(
            "Answer-seizure ratio and 5xx / 6xx shares of final outcomes (%)",
            shares,
            {"ASR": asr, "5xx share": "100 * s5 / final", "6xx share": "100 * s6 / final"},
            unit="%",
        ),
    ]


def invite_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    m = METRIC_INVITE_RESULT_TOTAL
    ok, final = q.count(m, "code_class:2xx"), q.count(m, _FINAL)
    attempts = f"({final} + default_zero({q.count(METRIC_TRANSACTION_TIMEOUT_TOTAL, 'method:INVITE')}))"
    errors = f"({q.count(m, 'code_class:5xx')} + {q.count(m, 'code_class:6xx')})"
    window = int(t.no_data_minutes)
    return [
        monitor(  # `< 0` never holds for a count: this monitor fires on missing data only
            "no_invite_outcomes",
            f"[{title}] No INVITE outcomes counted",
            f"sum(last_10m):{q.count(m)} < 0",
            0,
            f"No `{q.name(m)}` arrived for {window} minutes: the service stopped counting calls, cannot reach "
            "its agent, or is down. Check that the process runs, that DD_AGENT_HOST / DD_DOGSTATSD_URL point "
            "at a live agent, and the agent's DogStatsD status (`datadog-agent status`). A service that is "
            "idle for longer than this window on purpose needs a longer window (no_data_minutes).",
            no_data_minutes=window,
            priority=2,
        ),
        monitor(
            "asr",
            f"[{title}] Answer-seizure ratio is low",
            f"sum(last_15m):100 * {ok} / {attempts} < {number(t.asr_percent)}",
            t.asr_percent,
            "Fewer INVITEs than usual end in 2xx ({{value}}% over 15 minutes). Look at the 5xx / 6xx shares "
            "and the transaction timeouts on the dashboard: 5xx is this service or its upstreams, 6xx the far "
            "end, 4xx dialling or routing.",
            priority=2,
        ),
        monitor(
            "error_share",
            f"[{title}] 5xx / 6xx surge",
            f"sum(last_15m):100 * {errors} / {final} > {number(t.error_share_percent)}",
            t.error_share_percent,
            "{{value}}% of final INVITE outcomes over 15 minutes are 5xx or 6xx. 5xx: this service, a media "
            "server or a trunk is failing (check their logs and the transaction timeouts); 6xx: far ends "
            "decline or are busy everywhere.",
            priority=2,
        ),
    ]


# --- teardown, transactions, session timers ---------------------------------------------


def bye_widgets(q: Queries) -> list[Widget]:
    m = METRIC_BYE_TOTAL
    return [
        timeseries("BYEs by side and reason", {"a": q.count(m, by=("by", "reason_class"))}, display="bars"),
        toplist("BYEs by direction, side and reason (time frame)", q.count(m, by=("direction", "by", "reason_class"))),
    ]


def timeout_widgets(q: Queries) -> list[Widget]:
    m = METRIC_TRANSACTION_TIMEOUT_TOTAL
    return [
        timeseries("Transaction timeouts by method", {"a": q.count(m, by=("method",))}, display="bars"),
        toplist("Methods timing out most (time frame)", q.count(m, by=("method",))),
    ]


def timeout_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    limit = number(t.transaction_timeouts)
    return [
        monitor(
            "transaction_timeouts",
            f"[{title}] Transaction timeouts",
            f"sum(last_5m):{q.count(METRIC_TRANSACTION_TIMEOUT_TOTAL)} > {limit}",
            t.transaction_timeouts,
            "{{value}} SIP transactions timed out (Timer B / F) in 5 minutes. The dashboard splits them by "
            "method: one method points at one next hop, all of them at the network or an overloaded proxy.",
        )
    ]


def refresh_widgets(q: Queries) -> list[Widget]:
    m = METRIC_SESSION_TIMER_REFRESH_TOTAL
    return [
        timeseries("Session-timer refreshes by result", {"a": q.count(m, by=("result",))}, display="bars"),
        value(
            "Failed refreshes (422-gave-up, 481)",
            {"gave_up": q.count(m, "result:422-gave-up"), "gone": q.count(m, "result:481"), "all": q.count(m)},
            "100 * (gave_up + gone) / all",
        ),
    ]


# --- security ----------------------------------------------------------------------------


def dtls_widgets(q: Queries) -> list[Widget]:
    m = METRIC_DTLS_HANDSHAKE_TOTAL
    return [
        timeseries("DTLS-SRTP handshakes by result", {"a": q.count(m, by=("result",))}, display="bars"),
        value("DTLS handshakes failing", {"bad": q.count(m, "!result:ok"), "all": q.count(m)}, "100 * bad / all"),
    ]


def dtls_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    m = METRIC_DTLS_HANDSHAKE_TOTAL
    return [
        monitor(
            "dtls_failures",
            f"[{title}] DTLS-SRTP handshakes failing",
            f"sum(last_15m):100 * {q.count(m, '!result:ok')} / {q.count(m)} > {number(t.dtls_failure_percent)}",
            t.dtls_failure_percent,
            "{{value}}% of DTLS-SRTP handshakes over 15 minutes did not succeed. `timeout`: UDP blocked "
            "between the endpoints; `fingerprint-mismatch`: the SDP fingerprint does not match the "
            "certificate (a B2BUA rewriting SDP, or an attack); `fail`: certificates or cipher suites.",
        )
    ]


def stir_widgets(q: Queries) -> list[Widget]:
    m = METRIC_STIR_VERIFY_TOTAL
    return [
        timeseries("STIR verification by result", {"a": q.count(m, by=("result",))}, display="bars"),
        value("STIR verifications failed", {"bad": q.count(m, "result:failed"), "all": q.count(m)}, "100 * bad / all"),
    ]


def stir_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    m = METRIC_STIR_VERIFY_TOTAL
    return [
        monitor(
            "stir_failures",
            f"[{title}] STIR verification failures",
            f"sum(last_15m):100 * {q.count(m, 'result:failed')} / {q.count(m)} > {number(t.stir_failure_percent)}",
            t.stir_failure_percent,
            "{{value}}% of RFC 8224 Identity headers over 15 minutes failed to verify. Check that certificate "
            "URLs (x5u) are reachable from this service, the clock (iat freshness), and whether one peer "
            "re-signs or alters the headers.",
        )
    ]


# --- voice attach --------------------------------------------------------------------------


def voice_attach_widgets(q: Queries) -> list[Widget]:
    m = METRIC_VOICE_ATTACH_TOTAL
    return [timeseries("Voice attach by mode and result", {"a": q.count(m, by=("mode", "result"))}, display="bars")]


def fallback_widgets(q: Queries) -> list[Widget]:
    m = METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL
    return [timeseries("Voice-attach mode fallbacks", {"a": q.count(m, by=("from", "to"))}, display="bars")]


def native_widgets(q: Queries) -> list[Widget]:
    m = METRIC_VOICE_ATTACH_NATIVE_TOTAL
    rollout = {"native": q.count(m), "moded": q.count(METRIC_VOICE_ATTACH_TOTAL)}
    share = "100 * native / (native + moded)"
    return [
        timeseries("Native voice attach by result", {"a": q.count(m, by=("result",))}, display="bars"),
        timeseries("Native rollout's share of voice attaches (%)", rollout, {"native share": share}, unit="%"),
        value("Native rollout's share", rollout, share),
    ]


# --- the library's own health ----------------------------------------------------------------


def dropped_widgets(q: Queries) -> list[Widget]:
    m = METRIC_DROPPED_INPUTS_TOTAL
    return [
        timeseries("Dropped inputs by metric and reason", {"a": q.count(m, by=("metric", "reason"))}, display="bars"),
        toplist("Most dropped inputs (time frame)", q.count(m, by=("metric", "reason"))),
    ]


def dropped_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    m = METRIC_DROPPED_INPUTS_TOTAL
    return [
        monitor(
            "dropped_inputs",
            f"[{title}] Instrumentation drops inputs",
            f"sum(last_15m):{q.count(m, by=('metric', 'reason'))} > {number(t.dropped_inputs)}",
            t.dropped_inputs,
            "The service passed {{value}} values to sip-statsd that its catalog does not declare (an unknown "
            "label value, a bad number), so they were dropped, not counted. This is a bug in the calling "
            "code: the alert names the metric and reason; run its tests with `strict=True` to find the call.",
            priority=4,
        )
    ]


def sampled_widgets(q: Queries) -> list[Widget]:
    m = METRIC_SAMPLED_AWAY_TOTAL  # a full reservoir: the kept samples are sent weighted, counts stay right
    return [timeseries("Samples left out of a full reservoir, by metric", {"a": q.count(m, by=("metric",))})]


def send_error_widgets(q: Queries) -> list[Widget]:
    m = METRIC_SEND_ERRORS_TOTAL
    return [timeseries("Send errors by kind", {"a": q.count(m, by=("kind",))}, display="bars")]


def send_error_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    m = METRIC_SEND_ERRORS_TOTAL
    return [
        monitor(
            "send_errors",
            f"[{title}] Metrics not reaching the agent",
            f"sum(last_15m):{q.count(m, by=('kind',))} > {number(t.send_errors)}",
            t.send_errors,
            "{{value}} metric datagrams could not be delivered to the local agent in 15 minutes. `refused` / "
            "`no_socket`: the agent was down or restarting; `resolve`: its host name does not resolve; "
            "`dropped`: the socket would block (a slow agent on a Unix socket: raise its dogstatsd_so_rcvbuf; "
            "a small kernel send buffer on UDP). Counts arrive once delivery resumes: a dead agent shows as "
            "no data instead.",
        )
    ]


# The table: one line per family; order within a group is the order of these lines. A new
# family of the catalog is one more line here, e.g. for a counter with a `direction` label:
#     METRIC_X_TOTAL: View("setup", lambda q: [timeseries("X", {"a": q.count(METRIC_X_TOTAL, by=("direction",))})]),
# with a function for its monitors as the third field when it deserves an alert.
VIEWS: dict[str, View] = {
    METRIC_INVITE_RESULT_TOTAL: View("setup", invite_widgets, invite_monitors),
    METRIC_INVITE_RESPONSE_TOTAL: View("setup", response_widgets, response_monitors),
    METRIC_SESSION_REQUEST_DELAY_MS: View("setup", setup_delay_widgets),
    METRIC_ACTIVE_CALLS: View("setup", active_calls_widgets),
    METRIC_CALL_DURATION_S: View("teardown", duration_widgets),
    METRIC_BYE_TOTAL: View("teardown", bye_widgets),
    METRIC_TRANSACTION_TIMEOUT_TOTAL: View("transactions", timeout_widgets, timeout_monitors),
    METRIC_REQUEST_RESULT_TOTAL: View("transactions", request_widgets),
    METRIC_SESSION_TIMER_REFRESH_TOTAL: View("session_timers", refresh_widgets),
    METRIC_DTLS_HANDSHAKE_TOTAL: View("security", dtls_widgets, dtls_monitors),
    METRIC_STIR_VERIFY_TOTAL: View("security", stir_widgets, stir_monitors),
    METRIC_VOICE_ATTACH_TOTAL: View("voice_attach", voice_attach_widgets),
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL: View("voice_attach", fallback_widgets),
    METRIC_VOICE_ATTACH_NATIVE_TOTAL: View("voice_attach", native_widgets),
    METRIC_CALL_RTT_MS: View("quality", percentiles(METRIC_CALL_RTT_MS, "Round-trip time (ms)", "ms")),
    METRIC_CALL_JITTER_MS: View("quality", percentiles(METRIC_CALL_JITTER_MS, "Jitter (ms)", "ms")),
    METRIC_CALL_LOSS_FRACTION: View("quality", percentiles(METRIC_CALL_LOSS_FRACTION, "Packet loss (fraction)", "")),
    METRIC_CALL_MOS_ESTIMATE: View(
        "quality", percentiles(METRIC_CALL_MOS_ESTIMATE, "Estimated MOS (1-5)", "MOS"), mos_monitors
    ),
    METRIC_CALL_QUALITY_TOTAL: View("quality", grade_widgets, grade_monitors),
    METRIC_CALL_QUALITY_ISSUE_TOTAL: View("quality", issue_widgets),
    METRIC_DROPPED_INPUTS_TOTAL: View("health", dropped_widgets, dropped_monitors),
    METRIC_SEND_ERRORS_TOTAL: View("health", send_error_widgets, send_error_monitors),
    METRIC_SAMPLED_AWAY_TOTAL: View("health", sampled_widgets, None),
    **{name: View(group, widgets) for name, (group, widgets) in peers.VIEWS.items()},  # registration, attestation
}
