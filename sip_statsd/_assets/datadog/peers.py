"""The operator's view on the Datadog dashboard: per-peer KPIs in the carrier vocabulary, registration.

ASR (answer-seizure ratio) = 2xx / attempts (final INVITE outcomes + INVITE timeouts); NER
(ITU-T E.425 network effectiveness) = answered, busy, no answer and rejected by the user (200,
480, 486, 487, 600, 603) / attempts; ACD (average call duration) = the mean of sip_call_duration_s; PDD
(post-dial delay, INVITE to first ringing) = RFC 6076 SRD's `success` samples. The per-peer
widgets read series with a `peer` tag (an instance with declared peers); without peers they
stay empty.
"""

from __future__ import annotations

from collections.abc import Callable

from ..._sip.values import (
    METRIC_ACTIVE_CALLS,
    METRIC_CALL_DURATION_S,
    METRIC_INVITE_RESPONSE_TOTAL,
    METRIC_INVITE_RESULT_TOTAL,
    METRIC_REGISTER_RESULT_TOTAL,
    METRIC_REGISTERED_CONTACTS,
    METRIC_REGISTRATION_REQUEST_DELAY_MS,
    METRIC_SESSION_REQUEST_DELAY_MS,
    METRIC_STIR_ATTESTATION_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
)
from .parts import Monitor, Queries, Thresholds, Widget, _queries, monitor, number, timeseries, value

NER_CODES = ("200", "480", "486", "487", "600", "603")
_FINAL = "!code_class:1xx"
_PEER = "peer:*"
_BY_PEER = ("peer",)
_INVITE_TIMEOUT = "method:INVITE"
# A timed-out INVITE (Timer B) is counted only in sip_transaction_timeout_total{method:INVITE}
# (docs/events.md): an attempt without an outcome, so attempts = final outcomes + those timeouts.
# `default_zero` (a function of formulas and monitor queries alike): a peer with timeouts and no
# outcome at all, or none of a code, still gets a value instead of none.
ATTEMPTS = "(default_zero(final) + default_zero(timeouts))"
ASR = f"100 * default_zero(ok) / {ATTEMPTS}"
NER = f"100 * ({' + '.join(f'default_zero(c{c})' for c in NER_CODES)}) / {ATTEMPTS}"


def _zero(query: str) -> str:
    """`default_zero(...)` in a monitor's query, as in the formulas (ATTEMPTS)."""
    return f"default_zero({query})"


def _kpis(q: Queries, *filters: str, by: tuple[str, ...] = ()) -> dict[str, str]:
    out = {
        "ok": q.count(METRIC_INVITE_RESULT_TOTAL, "code_class:2xx", *filters, by=by),
        "final": q.count(METRIC_INVITE_RESULT_TOTAL, _FINAL, *filters, by=by),
        "timeouts": q.count(METRIC_TRANSACTION_TIMEOUT_TOTAL, _INVITE_TIMEOUT, *filters, by=by),
    }
    out.update({f"c{c}": q.count(METRIC_INVITE_RESPONSE_TOTAL, f"code:{c}", *filters, by=by) for c in NER_CODES})
    return out


def ranked(title: str, queries: dict[str, str], formula: str, order: str) -> Widget:
    """A toplist of a formula over several queries, `desc` (top) or `asc` (bottom), over the time frame."""
    return {
        "definition": {
            "type": "toplist",
            "title": title,
            "requests": [
                {
                    "response_format": "scalar",
                    "queries": _queries(queries, aggregator="sum"),
                    "formulas": [{"formula": formula, "limit": {"count": 10, "order": order}}],
                }
            ],
        }
    }


def carrier_widgets(q: Queries) -> list[Widget]:
    """ASR, NER, ACD and PDD over every call, beside RFC 6076's SER / SEER / SRD / SDT."""
    kpis = _kpis(q)
    return [
        value("ASR (answer-seizure ratio)", {k: kpis[k] for k in ("ok", "final", "timeouts")}, ASR),
        value("NER (ITU-T E.425 network effectiveness)", kpis, NER),
        value("ACD (average call duration), s", {"d": q.dist("avg", METRIC_CALL_DURATION_S)}, "d", unit="s"),
        value(
            "PDD p95 (post-dial delay = SRD success), ms",
            {"p": q.dist("p95", METRIC_SESSION_REQUEST_DELAY_MS, "result:success")},
            "p",
            unit="ms",
            precision=0,
        ),
    ]


def peer_widgets(q: Queries) -> list[Widget]:
    kpis = _kpis(q, _PEER, by=_BY_PEER)
    asr_queries = {k: kpis[k] for k in ("ok", "final", "timeouts")}
    return [
        timeseries("ASR by peer (%)", asr_queries, {"ASR": ASR}, unit="%"),
        timeseries("NER by peer (%)", kpis, {"NER": NER}, unit="%"),
        ranked("Top peers by ASR (time frame)", asr_queries, ASR, "desc"),
        ranked("Bottom peers by ASR (time frame)", asr_queries, ASR, "asc"),
        ranked("Bottom peers by NER (time frame)", kpis, NER, "asc"),
        ranked("INVITE attempts by peer (time frame)", {k: kpis[k] for k in ("final", "timeouts")}, ATTEMPTS, "desc"),
        timeseries(
            "PDD p95 by peer (INVITE to first ringing, SRD success), ms",
            {"a": q.dist("p95", METRIC_SESSION_REQUEST_DELAY_MS, "result:success", _PEER, by=_BY_PEER)},
            unit="ms",
        ),
        timeseries(
            "ACD by peer (average call duration), s",
            {"a": q.dist("avg", METRIC_CALL_DURATION_S, _PEER, by=_BY_PEER)},
            unit="s",
        ),
        timeseries(
            "Calls in progress by peer", {"a": q.gauge(METRIC_ACTIVE_CALLS, _PEER, by=_BY_PEER, aggregation="sum")}
        ),
    ]


def peer_monitors(q: Queries, t: Thresholds, title: str) -> list[Monitor]:
    """ASR per peer, judged only where the peer had at least `peer_min_attempts` attempts (outcomes + timeouts).

    At each point, `moving_rollup(..., 900, 'sum')` is the last 15 minutes' count and
    `cutoff_min` turns a count below the minimum into no value, so a peer with a handful of
    attempts gives no ratio to compare; the monitor averages that 15-minute ASR over 5 minutes.
    (Datadog's query functions; validated as a model like every monitor, not against an account.)
    """
    ok = _zero(q.count(METRIC_INVITE_RESULT_TOTAL, "code_class:2xx", _PEER, by=_BY_PEER))
    final = _zero(q.count(METRIC_INVITE_RESULT_TOTAL, _FINAL, _PEER, by=_BY_PEER))
    timeouts = _zero(q.count(METRIC_TRANSACTION_TIMEOUT_TOTAL, _INVITE_TIMEOUT, _PEER, by=_BY_PEER))
    attempts = f"moving_rollup({final}, 900, 'sum') + moving_rollup({timeouts}, 900, 'sum')"
    judged = f"cutoff_min({attempts}, {number(t.peer_min_attempts)})"
    return [
        monitor(
            "peer_asr",
            f"[{title}] Answer-seizure ratio is low on a peer",
            f"avg(last_5m):100 * moving_rollup({ok}, 900, 'sum') / {judged} < {number(t.asr_percent)}",
            t.asr_percent,
            "Only {{value}}% of INVITE attempts (final outcomes and timeouts) on peer {{peer.name}} over 15 "
            "minutes are 2xx (judged "
            f"from {number(t.peer_min_attempts)} attempts on). One peer low while the others hold: that carrier "
            "or trunk rejects or fails calls; compare its NER (the network's part) and its 5xx / 6xx.",
            priority=2,
        )
    ]


def register_widgets(q: Queries) -> list[Widget]:
    m = METRIC_REGISTER_RESULT_TOTAL
    shares = {
        "bad": q.count(m, "result:failure"),
        "late": q.count(m, "result:timeout"),
        "ok": q.count(m, "result:success"),
    }
    ira = "100 * (bad + late) / (ok + bad + late)"
    return [
        timeseries("REGISTER outcomes by result", {"a": q.count(m, by=("result",))}, display="bars"),
        value("IRA (RFC 6076 ineffective registration attempts)", shares, ira),
    ]


def rrd_widgets(q: Queries) -> list[Widget]:
    m = METRIC_REGISTRATION_REQUEST_DELAY_MS
    queries = {"ok50": q.dist("p50", m, "result:success"), "ok95": q.dist("p95", m, "result:success")}
    return [timeseries("Registration request delay (RFC 6076 RRD), ms", queries, {"p50": "ok50", "p95": "ok95"})]


def contacts_widgets(q: Queries) -> list[Widget]:
    m = METRIC_REGISTERED_CONTACTS
    # One series per registrar host (the Agent's host tag): summed, the contacts of every host.
    return [
        timeseries("Registered contacts (every registrar host)", {"a": q.gauge(m, aggregation="sum")}),
        value("Registered contacts", {"a": q.gauge(m, aggregation="sum")}, "a", unit="", precision=0),
    ]


def attestation_widgets(q: Queries) -> list[Widget]:
    m = METRIC_STIR_ATTESTATION_TOTAL
    return [timeseries("STIR/SHAKEN attestation of verified calls", {"a": q.count(m, by=("attestation", "result"))})]


PEER_GROUP: tuple[str, str] = (
    "Carrier KPIs, per peer (carrier / trunk)",
    "The carrier vocabulary, for all calls then per far end: **ASR** (2xx / attempts: final outcomes + "
    "INVITE timeouts), **NER** (ITU-T E.425: answered, busy, no answer or rejected by the user / attempts: "
    "what the network put through), **PDD** "
    "(INVITE to first ringing, RFC 6076 SRD success) and **ACD** (average call duration). A peer low on "
    "ASR but high on NER is its users not answering; low on both, the carrier or trunk. Empty unless the "
    "service declares its peers (`SipMetrics(peers=[...])`); each peer adds 274 possible series.",
)
REGISTRATION_GROUP: tuple[str, str] = (
    "Registration",
    "REGISTER outcomes (a 401/407 challenge is part of a registration, not a failure), **IRA** (RFC 6076: "
    "failed and timed-out attempts over success + failure + timeout), **RRD** (first REGISTER to its final "
    "response, across the challenge) and the registrar's contacts.",
)


# The families of issue 27 on the dashboard: family -> (group, widgets), for `families.VIEWS`.
VIEWS: dict[str, tuple[str, Callable[[Queries], list[Widget]]]] = {
    METRIC_REGISTER_RESULT_TOTAL: ("registration", register_widgets),
    METRIC_REGISTRATION_REQUEST_DELAY_MS: ("registration", rrd_widgets),
    METRIC_REGISTERED_CONTACTS: ("registration", contacts_widgets),
    METRIC_STIR_ATTESTATION_TOTAL: ("security", attestation_widgets),
}
