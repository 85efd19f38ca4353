"""The per-peer rules under `promtool test rules`: ASR, NER, ACD, PDD by peer and the per-peer ASR alert.

One service with three declared peers sends through a real `SipMetrics` over loopback UDP to
the statsd_exporter model; the expected values come from the traffic below, not from the
rules. `bad` fails most calls with plenty of attempts (the alert fires), `thin` fails all of
its 3 attempts (too few to judge: it must not fire), `good` answers most; `dead` only times out
and `half` answers 1 INVITE in 5, the others timing out (timeouts are attempts: both fire).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import prometheus_scenario as ps
import pytest
import yaml
from statsd_exporter_model import Exporter

from sip_statsd import SipMetrics
from sip_statsd.prometheus import build, write

# Final INVITE outcomes per minute and peer; each answered call lasts DURATION[peer] seconds and
# rang after DELAY_MS[peer] (the setup delay's success sample, PDD).
PEER_INVITES = {"good": {200: 8, 486: 1, 503: 1}, "bad": {200: 1, 503: 6, 408: 2, 480: 1}}
# INVITE timeouts (Timer B) per minute: counted only as transaction_timeout("INVITE"), never as an
# outcome (docs/events.md). `dead` times out on every INVITE; `half` answers 1 in 5, the rest time out.
TIMEOUTS = {"dead": 3, "half": 4}
HALF_ANSWERED = 1
THIN_MINUTES = (30, 33, 36)  # `thin`: one 503 at each, 3 attempts in the last 15 minutes
DURATION = {"good": 120.0, "bad": 30.0}
DELAY_MS = {"good": 150.0, "bad": 2500.0}
MINUTES = 40
EVAL = f"{MINUTES}m"
LABELS = {"env": "prod", "service": "trunks"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return ps.promtool()


def traffic(m: SipMetrics, minute: int) -> None:
    for peer, codes in PEER_INVITES.items():
        for code, n in codes.items():
            for _ in range(n):
                m.invite_result("outbound", code, peer=peer)
                if code == 200:
                    m.observe_setup_delay("outbound", DELAY_MS[peer], True, peer=peer)
                    m.call_started("outbound", peer=peer)
                    m.call_ended("outbound", DURATION[peer], peer=peer)
    for peer, n in TIMEOUTS.items():
        for _ in range(n):
            m.transaction_timeout("INVITE", peer=peer)
    for _ in range(HALF_ANSWERED):
        m.invite_result("outbound", 200, peer="half")
    if minute in THIN_MINUTES:
        m.invite_result("outbound", 503, peer="thin")


def scrapes(mapping: dict[str, Any]) -> list[ps.Scrape]:
    wire = ps.Wire()
    exporter = Exporter(mapping)
    m = SipMetrics(
        **ps.DIALECT,
        host="127.0.0.1",
        port=wire.port,
        constant_tags=LABELS,
        flush_interval=3600,
        peers=["good", "bad", "thin", "dead", "half"],
    )
    out = []
    try:
        for minute in range(MINUTES + 1):
            traffic(m, minute)
            assert m.flush(timeout=5)
            for datagram in wire.drain():
                text = ps.as_dialect(datagram)
                ps.check_letters(text)
                exporter.feed(text)
            out.append(exporter.exposition())
    finally:
        m.close(timeout=2)
        wire.close()
    return out


def quantile(q: float, value: float, buckets: list[float]) -> float:
    """histogram_quantile of samples all equal to `value`: interpolated inside their bucket."""
    upper = min(b for b in buckets if b >= value)
    lower = max((b for b in buckets if b < value), default=0.0)
    return lower + (upper - lower) * q


def test_per_peer_rules_and_alert(promtool: str, tmp_path: Path) -> None:
    paths = write(tmp_path / "gen", build(SipMetrics(backend="off")))
    rules_path = next(p for p in paths if p.name == "sip_statsd.rules.yml")
    doc = yaml.safe_load(rules_path.read_text())
    mapping = yaml.safe_load(next(p for p in paths if p.name == "statsd_exporter.yml").read_text())
    delay = next(e for e in mapping["mappings"] if e["name"] == "sip_session_request_delay_seconds")
    buckets = delay["histogram_options"]["buckets"]
    records = {r["record"].split(":")[1]: r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r
               and r["record"].startswith("env_service_peer:")}  # fmt: skip
    alert = next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "SipPeerAnswerSeizureRatioLow")

    def share(codes: dict[int, int], good: set[int]) -> float:
        return sum(n for c, n in codes.items() if c in good) / sum(codes.values())

    ner = {200, 480, 486, 487, 600, 603}
    want: dict[str, dict[str, float]] = {
        "sip_answer_seizure": {p: share(c, {200}) for p, c in PEER_INVITES.items()},
        "sip_network_effectiveness": {p: share(c, ner) for p, c in PEER_INVITES.items()},
        "sip_call_duration_seconds": dict(DURATION),
        "sip_post_dial_delay_seconds": {p: quantile(0.95, DELAY_MS[p] / 1000, buckets) for p in PEER_INVITES},
        # increase() over 15 minutes of a counter sampled each minute: 15 minutes of the per-minute count.
        "sip_invite_final": {p: 15.0 * sum(c.values()) for p, c in PEER_INVITES.items()},
    }
    want["sip_answer_seizure"]["thin"] = 0.0
    want["sip_network_effectiveness"]["thin"] = 0.0
    # Timeouts are attempts: `dead` has no outcome at all (ASR and NER 0, not absent), `half` 1 in 5.
    for kpi in ("sip_answer_seizure", "sip_network_effectiveness"):
        want[kpi]["dead"] = 0.0
        want[kpi]["half"] = HALF_ANSWERED / (HALF_ANSWERED + TIMEOUTS["half"])
    want["sip_invite_final"]["dead"] = 15.0 * TIMEOUTS["dead"]
    want["sip_invite_final"]["half"] = 15.0 * (HALF_ANSWERED + TIMEOUTS["half"])
    assert set(records) == set(want)

    def sample(peer: str, value: float) -> dict[str, Any]:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted({**LABELS, "peer": peer}.items()))
        return {"labels": "{" + labels + "}", "value": math.floor(value * 1e6 + 0.5)}

    def raw(peer: str) -> str:
        return (
            records["sip_invite_final"]
            + "{"
            + ",".join(f'{k}="{v}"' for k, v in sorted({**LABELS, "peer": peer}.items()))
            + "}"
        )

    tests = [
        {
            "expr": f"round({records[stem]} * 1e6)",
            "eval_time": EVAL,
            "exp_samples": [sample(p, v) for p, v in by.items()],
        }
        for stem, by in want.items()
        if stem != "sip_invite_final"
    ]
    # `thin`'s 3 attempts in the window (increase() extrapolates to the window's edges: 3 here).
    tests.append(
        {
            "expr": records["sip_invite_final"] + '{peer="thin"}',
            "eval_time": EVAL,
            "exp_samples": [{"labels": raw("thin"), "value": 3}],
        }
    )

    def fired(peer: str) -> dict[str, Any]:
        pct = want["sip_answer_seizure"][peer]
        summary = alert["annotations"]["summary"].replace("{{ $labels.peer }}", peer)
        description = alert["annotations"]["description"].replace(
            "{{ $value | humanizePercentage }}", f"{pct * 100:.4g}%"
        )
        return {
            "exp_labels": {**LABELS, "peer": peer, **alert["labels"]},
            "exp_annotations": {"summary": summary, "description": description},
        }

    test = {
        "name": "good, bad (fires), thin (3 attempts: too few to judge), dead and half (timeouts: fire)",
        "interval": "1m",
        "input_series": ps.input_series(scrapes(mapping)),
        "promql_expr_test": tests,
        "alert_rule_test": [
            {
                "eval_time": EVAL,
                "alertname": "SipPeerAnswerSeizureRatioLow",
                "exp_alerts": [fired(p) for p in ("bad", "dead", "half")],
            }
        ],
    }
    path = tmp_path / "test.yml"
    ps.write_test(path, rules_path, [test])
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_grafana_asr_ner_and_attempts_panel_counts_invite_timeouts(tmp_path: Path) -> None:
    """A timed-out INVITE is an attempt in Grafana as in the rules (issue 27 probe)."""
    paths = write(tmp_path / "gen", build(SipMetrics(backend="off")))
    grafana = json.loads(next(p for p in paths if p.name == "grafana-dashboard.json").read_text())
    panels = [
        p
        for p in grafana["panels"]
        if re.search(r"\bASR\b|\bNER\b|Answer-seizure ratio|INVITE attempts", p.get("title", ""))
    ]
    assert len(panels) >= 9, [p["title"] for p in panels]
    for panel in panels:
        exprs = [t["expr"] for t in panel["targets"] if "share" not in t.get("legendFormat", "")]  # of outcomes
        assert exprs, panel["title"]
        assert all('sip_transaction_timeout_total{method="INVITE"' in e for e in exprs), (panel["title"], exprs)
