"""The generated rules under promtool: `check rules`, and `test rules` on what the library sends.

The input series are scrapes of statsd_exporter (its mapping and exposition ported in
`statsd_exporter_model`, fed by real `SipMetrics` over loopback UDP); the expected values come
from the traffic each service made (`prometheus_scenario`), not from the rules or the model.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import prometheus_scenario as ps
import pytest
import yaml

from sip_statsd import SipMetrics
from sip_statsd.prometheus import build, write

SERVICES = ("sbc", "edge")
QUIET = {"sip_call_duration_seconds", "sip_post_dial_delay_seconds", "sip_ineffective_registration_attempts"}
EVAL = "40m"  # every series has a sample at each minute of the 15- and 30-minute windows, after the restart


@pytest.fixture(scope="module")
def promtool() -> str:
    return ps.promtool()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("prometheus")
    paths = write(out, build())
    docs = {p.name: yaml.safe_load(p.read_text()) for p in paths if p.suffix == ".yml"}
    return {"dir": out, "rules": out / "sip_statsd.rules.yml", **docs}


def run(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _rules(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for g in doc["groups"] for r in g["rules"] if kind in r]


def test_promtool_checks_the_rules(promtool: str, generated: dict[str, Any]) -> None:
    output = run(promtool, "check", "rules", str(generated["rules"]))
    doc = generated["sip_statsd.rules.yml"]
    alerts, records = _rules(doc, "alert"), _rules(doc, "record")
    assert len(alerts) >= 8
    assert len(records) >= 3
    assert f"SUCCESS: {len(alerts) + len(records)} rules found" in output


def test_every_datadog_monitor_has_an_alert(generated: dict[str, Any]) -> None:
    from sip_statsd.dashboard import build as datadog_build

    _, monitors = datadog_build()
    keys = {t.split(":", 1)[1] for m in monitors for t in m["tags"] if t.startswith("sip-statsd-monitor:")}
    watched = {a["labels"]["sip_statsd_monitor"] for a in _rules(generated["sip_statsd.rules.yml"], "alert")}
    assert keys == watched


# --- the expected values, from the traffic of one minute ------------------------------------


def share(counts: dict[Any, int], good: set[Any], minus: set[Any] = frozenset()) -> float | None:  # type: ignore[assignment]
    """What a 15-minute rate ratio gives: sum(good) / (sum(all) - sum(minus)), from per-minute counts."""
    top = 15 * sum(n for k, n in counts.items() if k in good)
    bottom = 15 * sum(counts.values()) - 15 * sum(n for k, n in counts.items() if k in minus)
    return None if bottom == 0 else (top / 900) / (bottom / 900)


def median_mos(mos: float, floors: list[float]) -> float:
    """histogram_quantile(0.5) of samples that all fall in one bucket: the middle of that bucket."""
    upper = min(b for b in floors if b >= mos)
    lower = max((b for b in floors if b < mos), default=0.0)
    return lower + (upper - lower) * 0.5


def expected_records(buckets: list[float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in SERVICES:
        inv = ps.INVITES[name]
        classes: dict[str, int] = {}
        for code, n in inv.items():
            classes[f"{code // 100}xx"] = classes.get(f"{code // 100}xx", 0) + n
        count, *_, mos = ps.QOS[name]
        poor = count if mos < 3.10 else 0
        # An INVITE timeout is an attempt without an outcome: ASR and NER count it (docs/metrics.md).
        attempts = {**classes, "timeout": ps.TIMEOUTS[name]}
        inv_attempts = {**inv, "timeout": ps.TIMEOUTS[name]}
        values = {
            "sip_answer_seizure": share(attempts, {"2xx"}),
            "sip_invite_5xx_6xx": share(classes, {"5xx", "6xx"}),
            "sip_session_establishment": share(inv, {200}, {c for c in inv if 300 <= c < 400}),
            "sip_session_establishment_effectiveness": share(
                inv, {200, 480, 486, 600, 603}, {c for c in inv if 300 <= c < 400}
            ),
            "sip_ineffective_session_attempts": share(inv, {408, 500, 503, 504}),
            "sip_network_effectiveness": share(inv_attempts, {200, 480, 486, 487, 600, 603}),
            "sip_dtls_handshake_failure": share(ps.DTLS[name], set(ps.DTLS[name]) - {"ok"}),
            "sip_stir_verify_failure": share(ps.STIR[name], {"failed"}),
            "sip_call_quality_poor": share({"poor": poor, "other": count - poor}, {"poor"}),
            "sip_call_mos_estimate": median_mos(mos, buckets),
        }
        out[name] = {k: v for k, v in values.items() if v is not None}
    return out


def render(template: str, labels: dict[str, str], value: float) -> str:
    """The annotation templates the rules use, as Prometheus renders them (text/template, %.4g)."""
    out = template.replace("{{ $value | humanizePercentage }}", _g4(value * 100) + "%")
    out = out.replace("{{ $value | humanize }}", _g4(value))
    out = out.replace('{{ $value | printf "%.2f" }}', f"{value:.2f}")
    for key, v in labels.items():
        out = out.replace(f"{{{{ $labels.{key} }}}}", v)
    assert "{{" not in out, out
    return out


def _g4(x: float) -> str:
    return f"{x:.4g}"


def alert(rule: dict[str, Any], labels: dict[str, str], value: float = 0.0) -> dict[str, Any]:
    """An expected alert: its labels (the series' and the rule's) and rendered annotations."""
    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": {k: render(v, labels, value) for k, v in rule["annotations"].items()},
    }


def lossy(tmp: Path) -> Any:
    """A service whose first flush finds no agent socket, then reaches the exporter: its send errors arrive."""
    state: dict[str, Any] = {}

    def extra(minute: int, wire: ps.Wire) -> None:
        if minute == ps.RESTART:
            from sip_statsd import SipMetrics

            tags = {"env": "prod", "service": "lossy"}
            m = SipMetrics(**ps.DIALECT, socket_path=str(tmp / "no-agent.sock"), constant_tags=tags)
            m.transaction_timeout("BYE")
            m.flush(timeout=5)  # counted as a send error of kind no_socket
            m.configure(
                **ps.DIALECT, host="127.0.0.1", port=wire.port, constant_tags={"env": "prod", "service": "lossy"}
            )
            assert m.flush(timeout=5)
            state["metrics"] = m
        elif minute == ps.RESTART + 1:
            state["metrics"].close(timeout=2)

    return extra


def _labels(service: str) -> dict[str, str]:
    return {"env": "prod", "service": service}


def _series(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_rules_on_what_the_exporter_exposes(promtool: str, generated: dict[str, Any], tmp_path: Path) -> None:
    """Every recording rule's value and every alert, firing or not, after 40 minutes of traffic."""
    doc, mapping = generated["sip_statsd.rules.yml"], generated["statsd_exporter.yml"]
    mos_buckets = next(m for m in mapping["mappings"] if m["name"] == "sip_call_mos_estimate")
    want = expected_records(mos_buckets["histogram_options"]["buckets"])
    scrapes = ps.run(mapping, 40, lossy(tmp_path))
    alerts = {a["alert"]: a for a in _rules(doc, "alert")}

    records = []
    for rule in _rules(doc, "record"):
        stem = rule["record"].split(":")[1]
        # promtool compares exactly, and Go sums a group's rates in its own order: compare in
        # millionths (a ratio) or thousandths of a MOS, rounded half up like PromQL's round().
        # No durations, setup delays, REGISTERs or peers in this traffic: those rules give nothing.
        silent = stem in QUIET or rule["record"].split(":")[0].endswith("_peer")
        samples = [
            {"labels": _series("", _labels(s)), "value": math.floor(want[s][stem] * 1e6 + 0.5)}
            for s in SERVICES
            if stem in want[s] and not silent
        ]
        assert len(samples) == (0 if silent else len(SERVICES)), rule["record"]
        records.append({"expr": f"round({rule['record']} * 1e6)", "eval_time": EVAL, "exp_samples": samples})

    def on(service: str, value: float = 0.0, **extra: str) -> dict[str, Any]:
        return {"service": service, "value": value, **extra}

    edge = want["edge"]
    firing: dict[str, list[dict[str, Any]]] = {
        # idle counted one INVITE at minute 2; lossy none, but the dialect sent its zeros
        "SipNoInviteOutcomes": [on("idle"), *([on("lossy")] if ps.NATIVE else [])],
        "SipAnswerSeizureRatioLow": [on("edge", edge["sip_answer_seizure"])],
        "SipInviteErrorSurge": [on("edge", edge["sip_invite_5xx_6xx"])],
        "SipIneffectiveSessionAttempts": [on("edge", edge["sip_ineffective_session_attempts"])],
        "SipTransactionTimeouts": [on("edge", 5 * ps.TIMEOUTS["edge"])],
        "SipDtlsHandshakeFailures": [on("edge", edge["sip_dtls_handshake_failure"])],
        "SipStirVerificationFailures": [on("edge", edge["sip_stir_verify_failure"])],
        "SipPoorCallQualityMos": [on("edge", edge["sip_call_mos_estimate"])],
        "SipPoorCallsShare": [on("edge", edge["sip_call_quality_poor"])],
        "SipInstrumentationDropsInputs": [
            on("edge", 15.0 * ps.DROPS["edge"], metric="sip_invite_result_total", reason="unknown_value"),
        ],
    }
    # At 10 minutes the lossy service's send errors are a series that appeared within the
    # window: its only count is invisible to increase(), the new-series term fires.
    early = {"SipMetricsNotReachingAgent": [on("lossy", 1.0, kind="no_socket")]}
    alert_tests = []
    for name, rule in alerts.items():
        for at, table in ((EVAL, firing), ("10m", early)):
            if at == "10m" and name not in early:
                continue
            exp = []
            for entry in table.get(name, []):
                labels = {k: v for k, v in entry.items() if k not in ("service", "value")}
                exp.append(alert(rule, {**_labels(entry["service"]), **labels}, entry["value"]))
            alert_tests.append({"eval_time": at, "alertname": name, "exp_alerts": exp})
    test = {
        "name": "40 minutes of sbc (healthy), edge (failing), idle (silent) and lossy (send errors)",
        "interval": "1m",
        "input_series": ps.input_series(scrapes),
        "promql_expr_test": records,
        "alert_rule_test": alert_tests,
    }
    path = tmp_path / "test.yml"
    ps.write_test(path, generated["rules"], [test])
    run(promtool, "test", "rules", str(path))


def test_missing_series_alerts(promtool: str, generated: dict[str, Any], tmp_path: Path) -> None:
    """No series at all, and series that stop being exposed (a restarted exporter), are alerts."""
    doc, mapping = generated["sip_statsd.rules.yml"], generated["statsd_exporter.yml"]
    alerts = {a["alert"]: a for a in _rules(doc, "alert")}
    scrapes = ps.run(mapping, 20)
    restarted = scrapes + [{} for _ in range(40)]  # the exporter restarted at 21m; nothing sent since
    vanished = [alert(alerts["SipSeriesVanished"], _labels(s)) for s in ("edge", "idle", "sbc")]
    tests = [
        {
            "name": "an exporter nobody sends to",
            "interval": "1m",
            "input_series": [{"series": 'up{job="statsd_exporter"}', "values": "1x60"}],
            "alert_rule_test": [
                {
                    "eval_time": "60m",
                    "alertname": "SipMetricsAbsent",
                    "exp_alerts": [alert(alerts["SipMetricsAbsent"], {})],
                },
                {"eval_time": "60m", "alertname": "SipSeriesVanished", "exp_alerts": []},
                {"eval_time": "60m", "alertname": "SipNoInviteOutcomes", "exp_alerts": []},
            ],
        },
        {
            "name": "series gone after 20 minutes",
            "interval": "1m",
            "input_series": ps.input_series(restarted),
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "SipSeriesVanished", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "SipMetricsAbsent", "exp_alerts": []},
                {"eval_time": "60m", "alertname": "SipSeriesVanished", "exp_alerts": vanished},
                {
                    "eval_time": "60m",
                    "alertname": "SipMetricsAbsent",
                    "exp_alerts": [alert(alerts["SipMetricsAbsent"], {})],
                },
            ],
        },
    ]
    path = tmp_path / "test.yml"
    ps.write_test(path, generated["rules"], tests)
    run(promtool, "test", "rules", str(path))


def test_ner_uses_only_the_codes_an_instance_sends_and_names_the_others() -> None:
    """response_codes=[200, 503] folds 480, 486 ... into their class: NER cannot count them, and says so."""

    def ner_rules(metrics: SipMetrics) -> list[dict[str, Any]]:
        doc = build(metrics).rules
        return [r for g in doc["groups"] for r in g["rules"] if "sip_network_effectiveness" in r.get("record", "")]

    full = ner_rules(SipMetrics(backend="off"))
    assert len(full) == 2
    assert all("labels" not in r and "480|486|487|600|603" in r["expr"] for r in full)
    few = ner_rules(SipMetrics(backend="off", response_codes=[200, 503]))
    assert len(few) == 2
    for rule in few:
        assert 'code=~"200"' in rule["expr"], rule["expr"]
        assert "480" not in rule["expr"]
        assert rule["labels"] == {"sip_statsd_ner_uncounted_codes": "480|486|487|600|603"}
