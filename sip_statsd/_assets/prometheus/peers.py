"""Grafana panels of the operator's view: the carrier KPIs, per peer, and registration.

The same KPIs as the Datadog group (`_assets.datadog.peers`) and the recording rules: ASR,
NER (ITU-T E.425), ACD, PDD (RFC 6076 SRD `success`), per `peer` where the service declares
peers; IRA and RRD (RFC 6076 §4.1-4.2) for registration.
"""

from __future__ import annotations

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
)
from .panels import Panel, _targets, stat, timeseries, toplist
from .promql import PromQL, ratio
from .rules import NER_CODES, PEERED, invite_attempts

_BY_PEER = ("peer",)


def _asr(q: PromQL, filters: dict[str, str], by: tuple[str, ...] = ()) -> str:
    return ratio(
        q.rate(METRIC_INVITE_RESULT_TOTAL, {"code_class": "=2xx", **filters}, by), invite_attempts(q, filters, by)
    )


def _ner(q: PromQL, filters: dict[str, str], by: tuple[str, ...] = ()) -> str:
    ner = q.rate(METRIC_INVITE_RESPONSE_TOTAL, {"code": "=~" + NER_CODES, **filters}, by)
    return ratio(ner, invite_attempts(q, filters, by))


def bottom(title: str, expr: str, legend: str) -> Panel:
    """The smallest series over the time range (a toplist of `bottomk`)."""
    panel = toplist(title, expr, legend, unit="percentunit")
    panel["targets"] = _targets({legend: f"bottomk(10, {expr})"}, instant=True)
    return panel


def carrier_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m_delay = METRIC_SESSION_REQUEST_DELAY_MS
    return [
        stat("ASR (answer-seizure ratio)", _asr(r, {})),
        stat("NER (ITU-T E.425 network effectiveness)", _ner(r, {})),
        stat("ACD (average call duration)", r.mean(METRIC_CALL_DURATION_S), unit="s"),
        stat("PDD p95 (post-dial delay = SRD success)", r.quantile(0.95, m_delay, {"result": "=success"}), unit="s"),
    ]


def peer_panels(q: PromQL, r: PromQL) -> list[Panel]:
    legend = "{{peer}}"
    return [
        timeseries("ASR by peer", {legend: _asr(q, PEERED, _BY_PEER)}, unit="percentunit"),
        timeseries("NER by peer", {legend: _ner(q, PEERED, _BY_PEER)}, unit="percentunit"),
        toplist("Top peers by ASR (time range)", _asr(r, PEERED, _BY_PEER), legend, unit="percentunit"),
        bottom("Bottom peers by ASR (time range)", _asr(r, PEERED, _BY_PEER), legend),
        bottom("Bottom peers by NER (time range)", _ner(r, PEERED, _BY_PEER), legend),
        toplist(
            "INVITE attempts by peer (time range)",
            invite_attempts(r, PEERED, _BY_PEER, fn="increase"),
            legend,
        ),
        timeseries(
            "PDD p95 by peer (INVITE to first ringing)",
            {legend: q.quantile(0.95, METRIC_SESSION_REQUEST_DELAY_MS, {"result": "=success", **PEERED}, _BY_PEER)},
            unit="s",
        ),
        timeseries(
            "ACD by peer (average call duration)", {legend: q.mean(METRIC_CALL_DURATION_S, PEERED, _BY_PEER)}, unit="s"
        ),
        timeseries(
            "Calls in progress by peer", {legend: f"{q.by(_BY_PEER)}({q.selector(METRIC_ACTIVE_CALLS, PEERED)})"}
        ),
    ]


def register_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_REGISTER_RESULT_TOTAL
    ira = ratio(r.rate(m, {"result": "=~failure|timeout"}), r.rate(m, {"result": "!=challenged"}))
    return [
        timeseries(
            "REGISTER outcomes by result (per second)",
            {"{{result}}": q.rate(m, by=("result",))},
            unit="reqps",
            bars=True,
        ),
        stat("IRA (RFC 6076 ineffective registration attempts)", ira),
    ]


def rrd_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_REGISTRATION_REQUEST_DELAY_MS
    return [
        timeseries(
            "Registration request delay (RFC 6076 RRD)",
            {p: q.quantile(v, m, {"result": "=success"}) for p, v in (("p50", 0.5), ("p95", 0.95))},
            unit="s",
        )
    ]


def contacts_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_REGISTERED_CONTACTS
    return [timeseries("Registered contacts (every registrar host)", {"contacts": f"{q.by()}({q.selector(m)})"})]


def attestation_panels(q: PromQL, r: PromQL) -> list[Panel]:
    m = METRIC_STIR_ATTESTATION_TOTAL
    return [
        timeseries(
            "STIR/SHAKEN attestation of verifications (per second)",
            {"{{attestation}} {{result}}": q.rate(m, by=("attestation", "result"))},
            unit="reqps",
            bars=True,
        )
    ]
