"""The dashboard's views of the families added beyond the origin: RFC 6076 KPIs and call quality.

Used by the `VIEWS` table of `families`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..._sip.values import (
    METRIC_ACTIVE_CALLS,
    METRIC_CALL_DURATION_S,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_QUALITY_ISSUE_TOTAL,
    METRIC_CALL_QUALITY_TOTAL,
    METRIC_INVITE_RESPONSE_TOTAL,
    METRIC_REQUEST_RESULT_TOTAL,
    METRIC_SESSION_REQUEST_DELAY_MS,
)
from .parts import Monitor, Queries, Thresholds, Widget, monitor, number, timeseries, toplist, value

# --- RFC 6076 KPIs: exact codes, calls in progress, duration, setup delay --------------------

# RFC 6076: SER = 200 / (attempts - 3xx); SEER counts 200, 480, 486, 600 and 603 as effective
# (the far end was reached and answered); ISA = 408, 500, 503 and 504 / attempts.
_SEER_CODES = ("200", "480", "486", "600", "603")
_ISA_CODES = ("408", "500", "503", "504")


def _kpi_queries(q: Queries) -> dict[str, str]:
    m = METRIC_INVITE_RESPONSE_TOTAL
    out = {"attempts": q.count(m), "redirects": q.count(m, "code:3xx"), "answered": q.count(m, "code:200")}
    out.update({f"c{c}": q.count(m, f"code:{c}") for c in (*_SEER_CODES[1:], *_ISA_CODES)})
    return out


_SER = "100 * answered / (attempts - redirects)"
_SEER = f"100 * ({' + '.join(['answered', *(f'c{c}' for c in _SEER_CODES[1:])])}) / (attempts - redirects)"
_ISA = f"100 * ({' + '.join(f'c{c}' for c in _ISA_CODES)}) / attempts"


def response_widgets(q: Queries) -> list[Widget]:
    kpis = _kpi_queries(q)
    return [
        timeseries(
            "RFC 6076 session establishment (SER, SEER) and ineffective attempts (ISA), %",
            kpis,
            {"SER": _SER, "SEER": _SEER, "ISA": _ISA},
            unit="%",
        ),
        value("SER (session establishment ratio)", kpis, _SER),
        value("SEER (session establishment effectiveness)", kpis, _SEER),
        value("ISA (ineffective session attempts)", kpis, _ISA),
        toplist("Final INVITE responses by code (time frame)", q.count(METRIC_INVITE_RESPONSE_TOTAL, by=("code",))),
    ]


def response_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    kpis = _kpi_queries(q)
    failed = " + ".join(kpis[f"c{c}"] for c in _ISA_CODES)
    return [
        monitor(
            "isa",
            f"[{title}] Ineffective session attempts (RFC 6076 ISA)",
            f"sum(last_15m):100 * ({failed}) / {kpis['attempts']} > {number(t.isa_percent)}",
            t.isa_percent,
            "{{value}}% of INVITEs over 15 minutes ended in 408, 500, 503 or 504: attempts that failed "
            "inside the network, not at the callee. 408 and 504 point at timeouts towards a next hop, "
            "500 and 503 at a failing or overloaded server (this service, a trunk, a media server).",
            priority=2,
        )
    ]


def request_widgets(q: Queries) -> list[Widget]:
    m = METRIC_REQUEST_RESULT_TOTAL
    return [
        timeseries("Non-INVITE outcomes by method and class", {"a": q.count(m, by=("method", "code_class"))}),
        toplist(
            "Non-INVITE failures by method (time frame)", q.count(m, "!code_class:2xx", by=("method", "code_class"))
        ),
    ]


def active_calls_widgets(q: Queries) -> list[Widget]:
    m = METRIC_ACTIVE_CALLS
    return [
        timeseries("Calls in progress by direction", {"a": q.gauge(m, by=("direction",), aggregation="sum")}),
        value("Calls in progress", {"a": q.gauge(m, aggregation="sum")}, "a"),
    ]


def duration_widgets(q: Queries) -> list[Widget]:
    m = METRIC_CALL_DURATION_S
    return [
        timeseries(
            "Call duration (RFC 6076 SDT), seconds: average and p95",
            {"avg": q.dist("avg", m), "p95": q.dist("p95", m)},
            {"average": "avg", "p95": "p95"},
            unit="s",
        )
    ]


def setup_delay_widgets(q: Queries) -> list[Widget]:
    m = METRIC_SESSION_REQUEST_DELAY_MS
    queries = {
        "ok50": q.dist("p50", m, "result:success"),
        "ok95": q.dist("p95", m, "result:success"),
        "bad50": q.dist("p50", m, "result:failure"),
    }
    shown = {"p50 success": "ok50", "p95 success": "ok95", "p50 failure": "bad50"}
    return [timeseries("Session request delay (RFC 6076 SRD), ms", queries, shown, unit="ms")]


# --- call quality --------------------------------------------------------------------------


def percentiles(metric: str, title: str, unit: str) -> Callable[[Queries], list[Widget]]:
    def widgets(q: Queries) -> list[Widget]:
        queries = {p: q.dist(p, metric) for p in ("p50", "p95", "p99")}
        return [timeseries(title, queries, {p: p for p in queries}, unit=unit)]

    return widgets


def mos_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    return [
        monitor(
            "poor_mos",
            f"[{title}] Poor call quality (MOS)",
            f"avg(last_30m):{q.dist('p50', METRIC_CALL_MOS_ESTIMATE)} < {number(t.mos_p50)}",
            t.mos_p50,
            "The median estimated MOS of calls ended in the last 30 minutes is {{value}}. Look at RTT, jitter "
            "and loss on the dashboard: loss and jitter are the network or a congested media server, RTT a "
            "route or carrier far away.",
        )
    ]


def _grade_shares(q: Queries) -> dict[str, str]:
    m = METRIC_CALL_QUALITY_TOTAL
    return {
        "poor": q.count(m, "grade:poor"),
        "unusable": q.count(m, "grade:unusable"),
        "unknown": q.count(m, "grade:unknown"),
        "all": q.count(m),
    }


_POOR_SHARE = "100 * (poor + unusable) / (all - unknown)"


def grade_widgets(q: Queries) -> list[Widget]:
    m = METRIC_CALL_QUALITY_TOTAL
    shares = _grade_shares(q)
    return [
        timeseries("Calls by quality grade (ITU-T G.109)", {"a": q.count(m, by=("grade",))}, display="bars"),
        timeseries(
            "Poor or unusable calls, and calls without RTCP data (%)",
            shares,
            {"poor or unusable": _POOR_SHARE, "no RTCP data": "100 * unknown / all"},
            unit="%",
        ),
        value("Poor or unusable share of graded calls", shares, _POOR_SHARE),
    ]


def grade_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    s = _grade_shares(q)
    expr = f"100 * ({s['poor']} + {s['unusable']}) / ({s['all']} - {s['unknown']})"
    return [
        monitor(
            "poor_calls",
            f"[{title}] Share of poor calls",
            f"sum(last_30m):{expr} > {number(t.poor_call_percent)}",
            t.poor_call_percent,
            "{{value}}% of the calls that ended in the last 30 minutes with a MOS graded `poor` or `unusable` "
            "(ITU-T G.109: MOS below 3.10). The quality issue counts on the dashboard say why: high_loss and "
            "high_jitter point at the network or a congested media server, high_rtt at a far route or carrier.",
        )
    ]


def issue_widgets(q: Queries) -> list[Widget]:
    m = METRIC_CALL_QUALITY_ISSUE_TOTAL
    per_call = {"issues": q.count(m), "calls": q.count(METRIC_CALL_QUALITY_TOTAL)}
    return [
        timeseries("Quality issues by kind (per second)", {"a": q.count(m, by=("issue",), rate=True)}, display="bars"),
        toplist("Quality issues by kind (time frame)", q.count(m, by=("issue",))),
        value("Quality issues per 100 calls", per_call, "100 * issues / calls"),
    ]
