"""Prometheus recording rules (RFC 6076 ratios, ASR, shares) and alerting rules.

One alert per Datadog monitor of `sip-statsd dashboard` (same thresholds, same windows; the
`monitor` label is the Datadog monitor's key), plus the missing-series alerts a pull system
needs: statsd_exporter keeps a counter it has seen, so a service that stops counting shows as
a flat counter (`increase(...) == 0`), and series that were never there, or went away with a
restarted exporter or a service's labels, as absent ones (`absent_over_time`,
`present_over_time(...) unless ...`). Ratios are fractions (0-1) as Prometheus names them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..._core.names import METRIC_DROPPED_INPUTS_TOTAL, METRIC_SEND_ERRORS_TOTAL
from ..._sip.values import (
    METRIC_CALL_DURATION_S,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_QUALITY_TOTAL,
    METRIC_DTLS_HANDSHAKE_TOTAL,
    METRIC_INVITE_RESPONSE_TOTAL,
    METRIC_INVITE_RESULT_TOTAL,
    METRIC_REGISTER_RESULT_TOTAL,
    METRIC_SESSION_REQUEST_DELAY_MS,
    METRIC_STIR_VERIFY_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
)
from ..datadog.parts import Thresholds, number
from .emit import dump
from .promql import PromQL, plus, ratio, zero_or

# RFC 6076 section 4: SER = 200 / (attempts - 3xx); SEER also counts 480, 486, 600 and 603 as
# effective (the callee was reached); ISA = 408, 500, 503 and 504 / attempts. `3..` takes the
# exact redirect codes (301, 302) and the class `3xx` alike.
SEER_CODES = "200|480|486|600|603"
ISA_CODES = "408|500|503|504"
REDIRECTS = "3.."
# ITU-T E.425 network effectiveness ratio: the network put the call through to the user, who
# answered (200), was busy (486, 600), did not answer (480; 487: the caller gave up while it rang)
# or rejected it (603); over all final outcomes (seizures).
NER_CODES = "200|480|486|487|600|603"
# An INVITE that timed out (Timer B) is counted only as sip_transaction_timeout_total{method="INVITE"}
# (docs/events.md; every integration does so, none also reports a 408 outcome): an attempt with no
# final outcome, so ASR's and NER's attempts are final outcomes plus these timeouts.
INVITE_TIMEOUT = {"method": "=INVITE"}
PEERED = {"peer": "!="}  # `peer!=""`: series with a declared peer (or `other`), from an instance with peers


def invite_attempts(q: PromQL, filters: dict[str, str], by: tuple[str, ...] = (), fn: str = "rate") -> str:
    """Final INVITE outcomes plus INVITE timeouts (an attempt with no outcome)."""
    final = q.rate(METRIC_INVITE_RESULT_TOTAL, {"code_class": "!=1xx", **filters}, by, fn=fn)
    return plus(final, q.rate(METRIC_TRANSACTION_TIMEOUT_TOTAL, {**INVITE_TIMEOUT, **filters}, by, fn=fn))


def recording_name(level: str, prefix: str, what: str, ops: str) -> str:
    """`level:metric:operations`, the Prometheus convention for recording rule names."""
    return f"{level}:{prefix}{what}:{ops}"


class Recorded:
    """The recording rules of one build, by key, with the names alerts and panels use."""

    def __init__(self, q15: PromQL, q30: PromQL, prefix: str, kept_codes: Collection[str] | None = None) -> None:
        """`kept_codes`: the exact codes sip_invite_response_total keeps (`response_codes`); None: all."""
        level = "_".join(q15.tags) or "sip"
        p = prefix
        result, response = METRIC_INVITE_RESULT_TOTAL, METRIC_INVITE_RESPONSE_TOTAL
        final = q15.rate(result, {"code_class": "!=1xx"})
        attempts = q15.rate(response)
        established = f"({attempts} - {zero_or(q15.rate(response, {'code': '=~' + REDIRECTS}), attempts)})"
        # NER counts exact codes; one the instance folds into its class (response_codes) never
        # comes: it is left out of the expression and named on the NER records (a label), which
        # then read low by the calls that ended so.
        ner_codes = [c for c in NER_CODES.split("|") if kept_codes is None or c in kept_codes]
        uncounted = [c for c in NER_CODES.split("|") if c not in ner_codes]
        ner_filter = {"code": "=~" + "|".join(ner_codes or ["none"])}
        self.labels: dict[str, dict[str, str]] = {}
        if uncounted:
            note = {"sip_statsd_ner_uncounted_codes": "|".join(uncounted)}
            self.labels = {"ner": note, "peer_ner": note}
        dtls, stir, grades = METRIC_DTLS_HANDSHAKE_TOTAL, METRIC_STIR_VERIFY_TOTAL, METRIC_CALL_QUALITY_TOTAL
        graded = f"({q30.rate(grades)} - {zero_or(q30.rate(grades, {'grade': '=unknown'}), q30.rate(grades))})"
        per = f"{level}_peer"
        by_peer = ("peer",)
        seizures = invite_attempts(q15, {})
        peer_final = invite_attempts(q15, PEERED, by_peer)
        self.rules: dict[str, tuple[str, str]] = {
            "asr": (
                recording_name(level, p, "sip_answer_seizure", "ratio_rate15m"),
                ratio(q15.rate(result, {"code_class": "=2xx"}), seizures),
            ),
            "error_share": (
                recording_name(level, p, "sip_invite_5xx_6xx", "ratio_rate15m"),
                ratio(q15.rate(result, {"code_class": "=~5xx|6xx"}), final),
            ),
            "ser": (
                recording_name(level, p, "sip_session_establishment", "ratio_rate15m"),
                ratio(q15.rate(response, {"code": "=200"}), established),
            ),
            "seer": (
                recording_name(level, p, "sip_session_establishment_effectiveness", "ratio_rate15m"),
                ratio(q15.rate(response, {"code": "=~" + SEER_CODES}), established),
            ),
            "isa": (
                recording_name(level, p, "sip_ineffective_session_attempts", "ratio_rate15m"),
                ratio(q15.rate(response, {"code": "=~" + ISA_CODES}), attempts),
            ),
            "dtls_failures": (
                recording_name(level, p, "sip_dtls_handshake_failure", "ratio_rate15m"),
                ratio(q15.rate(dtls, {"result": "!=ok"}), q15.rate(dtls)),
            ),
            "stir_failures": (
                recording_name(level, p, "sip_stir_verify_failure", "ratio_rate15m"),
                ratio(q15.rate(stir, {"result": "=failed"}), q15.rate(stir)),
            ),
            "poor_calls": (
                recording_name(level, p, "sip_call_quality_poor", "ratio_rate30m"),
                ratio(q30.rate(grades, {"grade": "=~poor|unusable"}), graded),
            ),
            "poor_mos": (
                recording_name(level, p, "sip_call_mos_estimate", "p50_rate30m"),
                q30.quantile(0.5, METRIC_CALL_MOS_ESTIMATE),
            ),
            # The carrier vocabulary (ASR above): NER, ACD, PDD; then each of them per peer.
            "ner": (
                recording_name(level, p, "sip_network_effectiveness", "ratio_rate15m"),
                ratio(q15.rate(response, ner_filter), seizures),
            ),
            "acd": (
                recording_name(level, p, "sip_call_duration_seconds", "mean30m"),
                q30.mean(METRIC_CALL_DURATION_S),
            ),
            "pdd": (
                recording_name(level, p, "sip_post_dial_delay_seconds", "p95_rate15m"),
                q15.quantile(0.95, METRIC_SESSION_REQUEST_DELAY_MS, {"result": "=success"}),
            ),
            "peer_attempts": (
                recording_name(per, p, "sip_invite_final", "increase15m"),
                invite_attempts(q15, PEERED, by_peer, fn="increase"),
            ),
            "peer_asr": (
                recording_name(per, p, "sip_answer_seizure", "ratio_rate15m"),
                ratio(q15.rate(result, {"code_class": "=2xx", **PEERED}, by_peer), peer_final),
            ),
            "peer_ner": (
                recording_name(per, p, "sip_network_effectiveness", "ratio_rate15m"),
                ratio(q15.rate(response, {**ner_filter, **PEERED}, by_peer), peer_final),
            ),
            "peer_acd": (
                recording_name(per, p, "sip_call_duration_seconds", "mean30m"),
                q30.mean(METRIC_CALL_DURATION_S, PEERED, by_peer),
            ),
            "peer_pdd": (
                recording_name(per, p, "sip_post_dial_delay_seconds", "p95_rate15m"),
                q15.quantile(0.95, METRIC_SESSION_REQUEST_DELAY_MS, {"result": "=success", **PEERED}, by_peer),
            ),
            # RFC 6076 §4.2 IRA: failed and timed-out REGISTER attempts over all but challenges.
            "ira": (
                recording_name(level, p, "sip_ineffective_registration_attempts", "ratio_rate15m"),
                ratio(
                    q15.rate(METRIC_REGISTER_RESULT_TOTAL, {"result": "=~failure|timeout"}),
                    q15.rate(METRIC_REGISTER_RESULT_TOTAL, {"result": "!=challenged"}),
                ),
            ),
        }

    def name(self, key: str) -> str:
        return self.rules[key][0]


def _alert(
    name: str,
    monitor: str,
    expr: str,
    summary: str,
    description: str,
    *,
    severity: str = "warning",
    for_: str = "5m",
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "sip_statsd_monitor": monitor}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _new_series(q: PromQL, family: str, window: str, keys: tuple[str, ...]) -> str:
    """Groups with a series that appeared within `window` with a count: increase() misses its first.

    A series that appears at 0 (the statsd_exporter dialect sends every counter once as 0 at
    start) is not one.
    """
    by = ", ".join((*q.tags, *keys))
    now = q.selector(family)
    return f"(count by ({by}) (({now} > 0) unless {now} offset {window}) * 0 + 1)"


def _over(q: PromQL, family: str, keys: tuple[str, ...], limit: float) -> str:
    """Counts over 15 minutes above `limit`; at 0, a series new in the window counts too."""
    expr = f"{q.rate(family, by=keys, fn='increase', window='15m')} > {number(limit)}"
    return f"{expr}\nor\n{_new_series(q, family, '15m', keys)}" if limit == 0 else expr


def alerts(q: PromQL, rec: Recorded, t: Thresholds, title: str) -> list[dict[str, Any]]:
    """One alert per Datadog monitor (its key in the `sip_statsd_monitor` label), then missing data."""
    group = ", ".join(q.tags)
    pct = "{{ $value | humanizePercentage }}"
    window = f"{int(t.no_data_minutes)}m"
    invites = q.selector(METRIC_INVITE_RESULT_TOTAL)
    of = (" of " + " ".join(f"{{{{ $labels.{t} }}}}" for t in q.tags)) if q.tags else ""
    dropped_keys, send_keys = ("metric", "reason"), ("kind",)
    return [
        _alert(
            "SipNoInviteOutcomes",
            "no_invite_outcomes",
            f"{q.rate(METRIC_INVITE_RESULT_TOTAL, fn='increase', window=window)} == 0",
            f"[{title}] No INVITE outcomes counted{of}",
            f"No INVITE outcome was counted for {window}: the service stopped counting calls, cannot reach "
            "statsd_exporter, or is down (statsd_exporter keeps the counter, so it stays flat). A service idle "
            "this long on purpose needs a longer window (no_data_minutes).",
            severity="critical",
            for_="0m",
        ),
        _alert(
            "SipMetricsAbsent",
            "no_invite_outcomes",
            f"absent_over_time({invites}[{window}])",
            f"[{title}] No sip-statsd series at all",
            f"Prometheus has had no `{q.name(METRIC_INVITE_RESULT_TOTAL)}` series for {window}: statsd_exporter "
            "is not scraped, was restarted and nothing arrived since, or no service sends to it (check "
            'configure(receiver="statsd_exporter") and the exporter\'s --statsd.mapping-config).',
            severity="critical",
            for_="0m",
        ),
        _alert(
            "SipSeriesVanished",
            "no_invite_outcomes",
            f"group by ({group or 'job'}) (present_over_time({invites}[1d]))\nunless\n"
            f"group by ({group or 'job'}) ({invites})",
            f"[{title}] INVITE outcomes{of} are gone",
            "INVITE outcome series that Prometheus had in the last day are no longer exposed: the exporter "
            "was restarted or expired them (--statsd.mapping ttl) and this service has sent nothing since.",
            severity="critical",
            for_=window,
        ),
        _alert(
            "SipAnswerSeizureRatioLow",
            "asr",
            f"{rec.name('asr')} < {number(t.asr_percent / 100)}",
            f"[{title}] Answer-seizure ratio is low",
            f"Only {pct} of INVITE attempts (final outcomes and timeouts) over 15 minutes are 2xx. Look at the "
            "5xx / 6xx shares and the transaction timeouts: 5xx is this service or its upstreams, 6xx the far "
            "end, 4xx dialling or routing.",
            severity="critical",
        ),
        _alert(
            "SipPeerAnswerSeizureRatioLow",
            "peer_asr",
            f"{rec.name('peer_asr')} < {number(t.asr_percent / 100)}\nand on ({', '.join((*q.tags, 'peer'))})\n"
            f"{rec.name('peer_attempts')} >= {number(t.peer_min_attempts)}",
            f"[{title}] Answer-seizure ratio is low on peer {{{{ $labels.peer }}}}",
            f"Only {pct} of INVITE attempts (final outcomes and timeouts) on this peer over 15 minutes are 2xx "
            f"(judged only from "
            f"{number(t.peer_min_attempts)} attempts on). One peer low while the others hold: that carrier or "
            "trunk is rejecting or failing calls; compare its NER (the network's part) and its 5xx / 6xx.",
            severity="critical",
        ),
        _alert(
            "SipInviteErrorSurge",
            "error_share",
            f"{rec.name('error_share')} > {number(t.error_share_percent / 100)}",
            f"[{title}] 5xx / 6xx surge",
            f"{pct} of final INVITE outcomes over 15 minutes are 5xx or 6xx. 5xx: this service, a media server "
            "or a trunk is failing; 6xx: far ends decline or are busy everywhere.",
            severity="critical",
        ),
        _alert(
            "SipIneffectiveSessionAttempts",
            "isa",
            f"{rec.name('isa')} > {number(t.isa_percent / 100)}",
            f"[{title}] Ineffective session attempts (RFC 6076 ISA)",
            f"{pct} of INVITEs over 15 minutes ended in 408, 500, 503 or 504: attempts that failed inside "
            "the network. 408 and 504: timeouts towards a next hop; 500 and 503: a failing or overloaded server.",
            severity="critical",
        ),
        _alert(
            "SipTransactionTimeouts",
            "transaction_timeouts",
            f"{q.rate(METRIC_TRANSACTION_TIMEOUT_TOTAL, fn='increase', window='5m')} > "
            f"{number(t.transaction_timeouts)}",
            f"[{title}] Transaction timeouts",
            "{{ $value | humanize }} SIP transactions timed out (Timer B / F) in 5 minutes. The dashboard "
            "splits them by method: one method points at one next hop, all of them at the network or an "
            "overloaded proxy.",
            for_="0m",
        ),
        _alert(
            "SipDtlsHandshakeFailures",
            "dtls_failures",
            f"{rec.name('dtls_failures')} > {number(t.dtls_failure_percent / 100)}",
            f"[{title}] DTLS-SRTP handshakes failing",
            f"{pct} of DTLS-SRTP handshakes over 15 minutes did not succeed. timeout: UDP blocked; "
            "fingerprint-mismatch: SDP rewritten or an attack; fail: certificates or cipher suites.",
        ),
        _alert(
            "SipStirVerificationFailures",
            "stir_failures",
            f"{rec.name('stir_failures')} > {number(t.stir_failure_percent / 100)}",
            f"[{title}] STIR verification failures",
            f"{pct} of RFC 8224 Identity headers over 15 minutes failed to verify. Check that certificate "
            "URLs (x5u) are reachable, the clock (iat freshness), and whether a peer re-signs the headers.",
        ),
        _alert(
            "SipPoorCallQualityMos",
            "poor_mos",
            f"{rec.name('poor_mos')} < {number(t.mos_p50)}",
            f"[{title}] Poor call quality (MOS)",
            'The median estimated MOS of calls ended in the last 30 minutes is {{ $value | printf "%.2f" }}. '
            "Loss and jitter point at the network or a congested media server, RTT at a far route or carrier.",
        ),
        _alert(
            "SipPoorCallsShare",
            "poor_calls",
            f"{rec.name('poor_calls')} > {number(t.poor_call_percent / 100)}",
            f"[{title}] Share of poor calls",
            f"{pct} of the graded calls of the last 30 minutes were poor or unusable (ITU-T G.109: MOS below "
            "3.10). The quality issue counts say why: loss and jitter, or RTT.",
        ),
        _alert(
            "SipInstrumentationDropsInputs",
            "dropped_inputs",
            _over(q, METRIC_DROPPED_INPUTS_TOTAL, dropped_keys, t.dropped_inputs),
            f"[{title}] Instrumentation drops inputs ({{{{ $labels.metric }}}}, {{{{ $labels.reason }}}})",
            "The service passed values to sip-statsd that its catalog does not declare (an unknown label value, "
            "a bad number): they were dropped. A bug in the calling code; run its tests with strict=True.",
            severity="info",
            for_="0m",
        ),
        _alert(
            "SipMetricsNotReachingAgent",
            "send_errors",
            _over(q, METRIC_SEND_ERRORS_TOTAL, send_keys, t.send_errors),
            f"[{title}] Metrics not reaching statsd_exporter ({{{{ $labels.kind }}}})",
            "Metric datagrams could not be delivered in 15 minutes. refused / no_socket: the exporter was down "
            "or restarting; resolve: its host name does not resolve; dropped: the socket would block. Counts "
            "arrive once delivery resumes: a dead exporter shows as missing data instead.",
            for_="0m",
        ),
    ]


def rules_file(rec: Recorded, alert_rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "sip-statsd.recording",
                "rules": [
                    {"record": name, "expr": expr, **({"labels": rec.labels[key]} if key in rec.labels else {})}
                    for key, (name, expr) in rec.rules.items()
                ],
            },
            {"name": "sip-statsd.alerts", "rules": alert_rules},
        ]
    }


HEADER = """\
# Prometheus rules generated by sip-statsd (`sip-statsd prometheus`); regenerate, do not edit.
# Load them with rule_files: [sip_statsd.rules.yml]; check them with `promtool check rules`.
"""


def render(doc: dict[str, Any]) -> str:
    return dump(doc, HEADER)
