"""`sip_statsd.prometheus`: the statsd_exporter mapping and the Grafana dashboard, checked by their readers.

The mapping against statsd_exporter's own validation (its regular expressions and strict YAML
fields, `pkg/mapper/mapper.go`) and its exposition (`statsd_exporter_model`, fed over UDP by
the library); the dashboard through `grafana-foundation-sdk`'s models and every query
through promtool's parser.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import prometheus_scenario as ps
import pytest
import yaml
from statsd_exporter_model import Exporter

from sip_statsd import Counter, Distribution, SipMetrics
from sip_statsd.dashboard import build as datadog_build
from sip_statsd.prometheus import FILES, InvalidDocumentError, build, queries, validate, write

# statsd_exporter pkg/mapper/mapper.go: what InitFromYAMLString accepts.
METRIC_LINE_RE = re.compile(r"^(\*|[a-zA-Z_]([a-zA-Z0-9_\-])*)(\.\*|\.[a-zA-Z0-9_]([a-zA-Z0-9_\-])*)*$")
METRIC_NAME_RE = re.compile(r"^([a-zA-Z_]|(\$\{?\d+\}?))([a-zA-Z0-9_]|(\$\{?\d+\}?))*$")
# pkg/mapper/mapping.go MetricMapping and HistogramOptions yaml fields (UnmarshalStrict refuses others).
MAPPING_FIELDS = {
    "match", "name", "labels", "honor_labels", "observer_type", "match_type", "help", "action",
    "match_metric_type", "ttl", "summary_options", "histogram_options", "scale",
}  # fmt: skip
HISTOGRAM_FIELDS = {"buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets"}


def texts(**options: Any) -> dict[str, str]:
    return build(SipMetrics(backend="off"), **options).texts()


def mapping_of(metrics: SipMetrics, **options: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(build(metrics, **options).texts()[FILES[0]])
    return doc


def test_write_puts_three_files(tmp_path: Path) -> None:
    paths = write(tmp_path / "out", build(SipMetrics(backend="off")))
    assert [p.name for p in paths] == list(FILES)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)  # nothing partial left


def test_mapping_is_what_statsd_exporter_accepts() -> None:
    doc = mapping_of(SipMetrics(backend="off"), prefix="acme.voice")
    assert set(doc) == {"defaults", "mappings"}
    for m in doc["mappings"]:
        assert set(m) <= MAPPING_FIELDS, m
        assert set(m.get("histogram_options", {})) <= HISTOGRAM_FIELDS, m
        assert METRIC_LINE_RE.match(m["match"]), m["match"]
        assert METRIC_NAME_RE.match(m["name"]), m["name"]
        assert m["match_metric_type"] in ("counter", "gauge", "observer")
        buckets = m.get("histogram_options", {}).get("buckets", [])
        assert buckets == sorted(set(buckets)), m["name"]


def test_every_family_has_one_mapping_in_base_units() -> None:
    metrics = SipMetrics(backend="off")
    doc = mapping_of(metrics)
    by_match = {m["match"]: m for m in doc["mappings"]}
    assert set(by_match) == {f.name for f in metrics.families}
    assert by_match["sip_call_rtt_ms"]["name"] == "sip_call_rtt_seconds"
    assert by_match["sip_session_request_delay_ms"]["name"] == "sip_session_request_delay_seconds"
    assert by_match["sip_call_duration_s"]["name"] == "sip_call_duration_seconds"
    assert all("scale" not in m for m in doc["mappings"])  # |ms is divided by statsd_exporter itself
    assert by_match["sip_call_loss_fraction"]["name"] == "sip_call_loss_ratio"
    mos = by_match["sip_call_mos_estimate"]["histogram_options"]["buckets"]
    assert (mos[0], mos[-1]) == (1.0, 5.0)
    assert 3.5 in mos  # the MOS alert's threshold is a bound
    loss = by_match["sip_call_loss_fraction"]["histogram_options"]["buckets"]
    assert loss[-1] == 1.0
    assert 0.05 in loss  # the high_loss issue's threshold
    assert all(m["name"] == m["match"] for m in doc["mappings"] if m["match_metric_type"] != "observer")


def test_values_arrive_in_base_units_through_the_mapping(tmp_path: Path) -> None:
    """A MOS of 4.1 stays 4.1, a loss of 0.01 stays 0.01, 80 ms of RTT becomes 0.08 s."""
    metrics = SipMetrics(backend="off")
    exporter = Exporter(mapping_of(metrics))
    wire = ps.Wire()
    try:
        m = ps.service(wire, "sbc")
        m.observe_call_qos(rtt_ms=80.0, jitter_ms=5.0, loss_fraction=0.01, mos_estimate=4.1)
        m.call_ended("inbound", duration_s=42.0)
        m.observe_setup_delay("outbound", 250.0, True)
        assert m.flush(timeout=5)
        m.close(timeout=2)
        for datagram in wire.drain():
            text = ps.as_dialect(datagram)
            ps.check_letters(text)
            exporter.feed(text)
    finally:
        wire.close()
    seen = exporter.exposition()
    tags = 'env="prod",service="sbc"'
    assert seen[f"sip_call_mos_estimate_sum{{{tags}}}"] == pytest.approx(4.1)
    assert seen[f"sip_call_loss_ratio_sum{{{tags}}}"] == pytest.approx(0.01)
    assert seen[f"sip_call_rtt_seconds_sum{{{tags}}}"] == pytest.approx(0.08)
    assert seen[f"sip_call_jitter_seconds_sum{{{tags}}}"] == pytest.approx(0.005)
    assert seen[f'sip_call_duration_seconds_sum{{direction="inbound",{tags}}}'] == pytest.approx(42.0)
    labels = 'direction="outbound",env="prod",le="0.25",result="success",service="sbc"'
    delay = f"sip_session_request_delay_seconds_bucket{{{labels}}}"
    assert seen[delay] == 1


def test_a_users_families_get_mappings_and_panels() -> None:
    metrics = SipMetrics(backend="off")
    Counter("acme.transfers_total", labels={"kind": ("blind", "attended")}, recorder=metrics.recorder)
    Distribution("acme.ivr_wait_ms", description="IVR wait", recorder=metrics.recorder)
    assets = build(metrics, prefix="pbx")
    by_match = {m["match"]: m for m in assets.mapping["mappings"]}
    assert by_match["pbx.acme.transfers_total"]["name"] == "pbx_acme_transfers_total"
    wait = by_match["pbx.acme.ivr_wait_ms"]
    assert wait["name"] == "pbx_acme_ivr_wait_seconds"
    rows = [p["title"] for p in assets.dashboard["panels"] if p["type"] == "row"]
    assert rows[-1] == "Your metrics"
    exprs = queries(assets.dashboard)
    assert any("pbx_acme_transfers_total" in e for e in exprs)
    assert any("pbx_acme_ivr_wait_seconds_bucket" in e for e in exprs)
    assert all("pbx_sip_" in e or "pbx_acme_" in e for e in exprs)


# --- the Grafana dashboard -------------------------------------------------------------------


def test_dashboard_rows_and_notes_are_the_datadog_groups() -> None:
    board = build(SipMetrics(backend="off")).dashboard
    datadog, _ = datadog_build(SipMetrics(backend="off"))
    groups = [w["definition"]["title"] for w in datadog["widgets"]]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == groups
    notes = [p for p in board["panels"] if p["type"] == "text"]
    assert len(notes) == len(rows)
    assert all(n["options"]["content"] for n in notes)


def test_dashboard_queries_use_the_variables() -> None:
    board = build(SipMetrics(backend="off"), tags=("env", "service")).dashboard
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "env", "service"]
    assert board["templating"]["list"][0]["query"] == "prometheus"
    exprs = queries(board)
    assert len(exprs) >= 20
    for expr in exprs:
        assert 'env=~"$env"' in expr, expr
        assert 'service=~"$service"' in expr, expr
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert window in ("$__rate_interval", "$__range"), expr
    for panel in board["panels"]:
        if "targets" in panel:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_dashboard_is_a_grafana_foundation_sdk_dashboard() -> None:
    """Loaded into the SDK's models and written back, nothing is lost or changed; units are Grafana's."""
    validate(build(SipMetrics(backend="off"), prefix="acme").dashboard)


def test_validate_names_what_grafana_does_not_know() -> None:
    board = build(SipMetrics(backend="off")).dashboard
    board["panels"][2]["fieldConfig"]["defaults"]["unit"] = "furlongs"
    board["templating"]["list"][1]["definition"] = "label_values(up, env)"
    with pytest.raises(InvalidDocumentError) as caught:
        validate(board)
    assert caught.value.problems == [
        "/templating/list[1]/definition: not in the model",
        "/panels[2]: unit 'furlongs' is not a Grafana unit",
    ]


@pytest.fixture
def promtool() -> str:
    return ps.promtool()


@pytest.mark.parametrize("tags", [("env", "service", "version"), ()], ids=["tags", "no-tags"])
def test_every_dashboard_query_parses(promtool: str, tmp_path: Path, tags: tuple[str, ...]) -> None:
    """Each query, with Grafana's variables as Grafana fills them, as a recording rule promtool checks."""
    board = build(SipMetrics(backend="off"), prefix="acme", tags=tags).dashboard
    exprs = queries(board)
    filled = [
        e.replace("$__rate_interval", "4m").replace("$__range", "6h").replace("$env", ".*").replace("$service", ".*")
        .replace("$version", ".*")
        for e in exprs
    ]  # fmt: skip
    assert len(filled) >= 20
    assert not any("$" in e for e in filled)
    doc = {"groups": [{"name": "dashboard", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(filled)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(filled)} rules found" in done.stdout


@pytest.mark.parametrize(("tags", "level"), [(("region",), "region"), ((), "sip")], ids=["region", "no-tags"])
def test_rules_take_the_prefix_and_tags(promtool: str, tmp_path: Path, tags: tuple[str, ...], level: str) -> None:
    text = texts(prefix="acme", tags=tags)[FILES[1]]
    doc = yaml.safe_load(text)
    records = [r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r]
    assert all(r.startswith((f"{level}:acme_sip_", f"{level}_peer:acme_sip_")) for r in records), records
    assert "sip_invite_result_total" not in text.replace("acme_sip_invite_result_total", "")
    (tmp_path / "rules.yml").write_text(text, encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_options_raise_quoting_the_value() -> None:
    with pytest.raises(ValueError, match="'bad prefix'"):
        build(SipMetrics(backend="off"), prefix="bad prefix")
    with pytest.raises(ValueError, match="'Env'"):
        build(SipMetrics(backend="off"), tags=("Env",))


def test_cli_writes_the_files_with_a_users_families(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sip_statsd._cli.main import main

    (tmp_path / "prometheus_cli_families.py").write_text(
        "from sip_statsd import Counter, SipMetrics\n"
        "METRICS = SipMetrics(backend='off')\n"
        "TRANSFERS = Counter('acme_transfers_total', labels={'kind': ('blind',)}, recorder=METRICS.recorder)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    argv = ["prometheus", "--out", str(out), "--import", "prometheus_cli_families:METRICS"]
    argv += ["--prefix", "pbx", "--tag", "env"]
    try:
        assert main([*argv, "--threshold", "asr_percent=40"]) == 0
    finally:
        sys.modules.pop("prometheus_cli_families", None)  # other tests import modules of their own
    assert "recording and" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    text = (out / "statsd_exporter.yml").read_text()
    assert '"pbx.acme_transfers_total"' in text
    rules = (out / "sip_statsd.rules.yml").read_text()
    assert "env:pbx_sip_answer_seizure:ratio_rate15m < 0.4" in rules

    assert main(["prometheus", "--out", str(out), "--prefix", "a b"]) == 1
    assert "sip-statsd prometheus: invalid prefix 'a b'" in capsys.readouterr().err


def test_the_exporter_model_agrees_with_statsd_exporters_own_line_tests() -> None:
    """The port's parser gives the events statsd_exporter's TestLineToEvents expects, case by case."""
    from statsd_exporter_model import parse

    doc = json.loads((Path(__file__).parent / "statsd_exporter" / "line_cases.json").read_text())
    assert len(doc["cases"]) >= 40
    for case in doc["cases"]:
        got = [
            {"kind": e.kind, "name": e.name, "value": e.value, "labels": e.labels, "relative": e.relative}
            for e in parse(case["line"])
        ]
        assert got == case["events"], case["case"]


def test_a_dashboard_keeps_its_uid_per_title() -> None:
    def uid(**options: Any) -> str:
        return str(build(SipMetrics(backend="off"), **options).dashboard["uid"])

    assert uid() == "sip-statsd"
    assert uid(title="Edge SBCs") == uid(title="Edge SBCs") != uid(title="Core SBCs")
    assert len(uid(title="Edge SBCs")) <= 40  # Grafana's limit


def test_a_seconds_metric_says_seconds_in_its_help():
    """statsd_exporter divides |ms timers by 1000: the help of a `_seconds` name must not say milliseconds first."""
    from sip_statsd import prometheus

    mappings = prometheus.build().mapping["mappings"]
    seconds = [m for m in mappings if m["name"].endswith("_seconds")]
    assert seconds
    for mapping in seconds:
        said = mapping["help"].split(" (sent as")[0]
        assert "millisecond" not in said, mapping
