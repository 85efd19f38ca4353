"""The generated dashboard and monitors: datadog-api-client's models accept them, every query
names a declared metric, tag and value, and every family of the catalog has its own widgets."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sip_statsd as sm
from sip_statsd import SipMetrics
from sip_statsd._assets.datadog.apply import to_model
from sip_statsd._assets.datadog.families import GROUPS, VIEWS
from sip_statsd._assets.datadog.parts import number
from sip_statsd._cli.main import main
from sip_statsd.dashboard import DEFAULT_TAGS, InvalidDocumentError, Thresholds, build, count_widgets

ROOT = Path(__file__).parent.parent

# --- a parser for the metric queries, independent of the builder ------------------------------

TERM = re.compile(
    r"(?P<agg>[a-z0-9]+):(?P<name>[A-Za-z][\w.]*)\{(?P<filters>[^{}]*)\}"
    r"(?: by \{(?P<by>[^{}]*)\})?(?P<fn>\.as_count\(\)|\.as_rate\(\))?"
)
# Families that get a `peer` label on an instance with declared peers: queries may filter on
# `peer:*` and group by it (the per-peer widgets read nothing on an instance without peers).
PEERED = {f.name for f in SipMetrics(backend="off", peers=["p"]).families if "peer" in f.label_keys}
MONITOR = re.compile(
    r"(?P<time>avg|sum|min|max)\(last_(?P<n>\d+)(?P<unit>[mhd])\):(?P<expr>.+) (?P<op><=|>=|<|>) (?P<threshold>[\d.]+)"
)
AGGREGATIONS = {
    "count": {"sum"},
    "distribution": {"p50", "p75", "p90", "p95", "p99", "avg", "min", "max", "sum", "count"},
    "gauge": {"avg", "min", "max", "sum"},
}
WINDOWS = {"1m", "5m", "10m", "15m", "30m", "1h", "2h", "4h", "1d"}


class Catalog:
    """What a query may name: the families of one instance, with a prefix, and the tag keys."""

    def __init__(self, metrics: SipMetrics, prefix: str | None, tags: tuple[str, ...]) -> None:
        self.families = {(f"{prefix}.{f.name}" if prefix else f.name): f for f in metrics.families}
        self.tags = tags

    def check_term(self, term: re.Match[str], *, monitor: bool) -> str:
        """Raise AssertionError unless `term` is a query Datadog runs on a declared series; return its metric."""
        text = term.group(0)
        family = self.families.get(term["name"])
        assert family is not None, f"{text}: {term['name']!r} is not a metric of the catalog"
        assert term["agg"] in AGGREGATIONS[family.kind], f"{text}: {term['agg']}: on a {family.kind}"
        if family.kind == "count":
            assert term["fn"], f"{text}: a count needs .as_count() or .as_rate()"
        else:
            assert not term["fn"], f"{text}: .as_count() on a {family.kind}"
        items = term["filters"].split(",")
        if items != ["*"]:
            for item in items:
                if item.startswith("$"):
                    assert not monitor, f"{text}: template variable in a monitor"
                    assert item[1:] in self.tags, f"{text}: unknown template variable {item}"
                    continue
                key, _, value = item.lstrip("!").partition(":")
                if key == "peer" and family.name in PEERED:
                    assert value == "*", f"{text}: a peer filter is peer:* (the names are the service's)"
                    continue
                assert key in family.allowed, f"{text}: {key!r} is not a label of {family.name}"
                assert value in family.allowed[key], f"{text}: {key}:{value} is not declared"
        for key in (term["by"] or "").split(",") if term["by"] else ():
            peer = key == "peer" and family.name in PEERED
            assert key in family.allowed or peer or (monitor and key in self.tags), f"{text}: cannot group by {key!r}"
        return family.name

    def check_query(self, query: str) -> str:
        """A dashboard query: exactly one metric term."""
        term = TERM.fullmatch(query)
        assert term, f"not a metric query: {query!r}"
        return self.check_term(term, monitor=False)

    def check_monitor(self, monitor: dict[str, Any]) -> list[str]:
        """A `query alert` as Datadog accepts it; returns the metrics it reads."""
        assert monitor["type"] == "query alert"
        query = monitor["query"]
        shape = MONITOR.fullmatch(query)
        assert shape, f"not a query alert: {query!r}"
        assert f"{shape['n']}{shape['unit']}" in WINDOWS, query
        terms = list(TERM.finditer(shape["expr"]))
        assert terms, query
        names = [self.check_term(t, monitor=True) for t in terms]
        windowed = "moving_rollup(" in shape["expr"]  # each point already a sum over a window of its own
        if any(t["fn"] == ".as_count()" for t in terms) and not windowed:
            assert shape["time"] == "sum", f"{query}: .as_count() is summed over the window"
        arithmetic = TERM.sub("x", shape["expr"])
        for node in ast.walk(ast.parse(arithmetic, mode="eval")):
            if isinstance(node, ast.Call):  # a window's sum at each point; no value below a minimum count
                assert isinstance(node.func, ast.Name), query
                assert node.func.id in ("cutoff_min", "moving_rollup", "default_zero"), query
                assert all(isinstance(a, ast.Constant) for a in node.args[1:]), query
                assert len(node.args) == {"cutoff_min": 2, "moving_rollup": 3, "default_zero": 1}[node.func.id], query
                continue
            assert isinstance(node, ast.Expression | ast.BinOp | ast.Name | ast.Constant | ast.operator | ast.Load), (
                f"{query}: {ast.dump(node)} in the arithmetic"
            )
        options = monitor["options"]
        assert float(shape["threshold"]) == options["thresholds"]["critical"], query
        if options.get("notify_no_data"):
            minutes = int(shape["n"]) * {"m": 1, "h": 60, "d": 1440}[shape["unit"]]
            assert options["no_data_timeframe"] >= 2 * minutes, "Datadog: no-data timeframe >= 2x the window"
        return names


# Datadog functions a formula may apply to its queries (a group with no data as 0).
FORMULA_FUNCTIONS = {"default_zero"}


def metric_queries(node: Any) -> Iterator[dict[str, Any]]:
    """Every request (dict with `queries`) under `node`."""
    if isinstance(node, dict):
        if "queries" in node:
            yield node
        for value in node.values():
            yield from metric_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from metric_queries(item)


def checked_metrics(catalog: Catalog, widget: dict[str, Any]) -> set[str]:
    """Check every query and formula of `widget`; the metrics it shows."""
    names = set()
    for request in metric_queries(widget):
        defined = {q["name"] for q in request["queries"]}
        for q in request["queries"]:
            assert q["data_source"] == "metrics"
            names.add(catalog.check_query(q["query"]))
        for formula in request["formulas"]:
            used = {n.id for n in ast.walk(ast.parse(formula["formula"], mode="eval")) if isinstance(n, ast.Name)}
            assert used - FORMULA_FUNCTIONS <= defined, f"{formula} uses undefined queries"
    return names


@pytest.fixture
def fresh(make_metrics: Callable[..., SipMetrics]) -> Callable[..., SipMetrics]:
    """A SipMetrics instance of its own that sends nothing, closed when the test ends."""
    return lambda **options: make_metrics(backend="off", **options)


def own_families(metrics: SipMetrics) -> None:
    metrics.counter("acme_queue_rejects_total", {"queue": ("sales", "support")}, description="Queue rejects")
    metrics.distribution("acme_ivr_seconds", {"menu": ("main",)}, minimum=0)


# --- the models accept them ------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "tags"), [(None, DEFAULT_TAGS), ("acme.voice", ("env", "region")), (None, ())])
def test_dashboard_and_monitors_load_into_the_datadog_models_with_nothing_unparsed(prefix, tags, fresh):
    metrics = fresh()
    own_families(metrics)
    dashboard, monitors = build(metrics, prefix=prefix, tags=tags)
    model = to_model(dashboard, "dashboard")  # raises on an unparsed object or an unknown key
    assert model.title == dashboard["title"]
    assert len(model.widgets) == len(dashboard["widgets"])
    assert [t.name for t in model.template_variables] == list(tags)
    for monitor in monitors:
        assert to_model(monitor, "monitor").query == monitor["query"]
        to_model(monitor, "monitor_update")


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


GROUP0 = ("widgets", 0, "definition", "widgets")  # the call-setup group's widgets
SETUP = (*GROUP0, 1, "definition")  # its first timeseries
BROKEN_DASHBOARDS = {
    "enum": (("layout_type",), "orderd"),
    "widget type": ((*SETUP, "type"), "timeserie"),
    "display type": ((*SETUP, "requests", 0, "display_type"), "barz"),
    "unknown key in a request": ((*SETUP, "requests", 0, "colour"), "red"),
    "unknown key at the top": (("widgetz",), []),
    "wrong type": (("title",), 42),
    "aggregator enum": ((*GROUP0, 2, "definition", "requests", 0, "queries", 0, "aggregator"), "total"),
}
BROKEN_MONITORS = {
    "type": (("type",), "query alrt"),
    "threshold type": (("options", "thresholds", "critical"), "high"),
    "unknown option": (("options", "notify_nodata"), True),
}


@pytest.mark.parametrize("case", BROKEN_DASHBOARDS)
def test_the_model_check_fails_on_a_broken_dashboard(case, fresh):
    """The validator can fail: each of these would otherwise pass the models unnoticed or raise."""
    dashboard, _ = build(fresh())
    path, value = BROKEN_DASHBOARDS[case]
    with pytest.raises(InvalidDocumentError) as info:
        to_model(_set(dashboard, path, value), "dashboard")
    assert info.value.problems


def test_a_bad_value_deep_in_a_widget_is_reported_where_it_is(fresh):
    """Not as 'the group matches no schema': the value, its path and what is allowed."""
    dashboard, _ = build(fresh())
    broken = _set(dashboard, (*SETUP, "requests", 0, "display_type"), "barz")
    with pytest.raises(InvalidDocumentError) as info:
        to_model(broken, "dashboard")
    assert info.value.problems == [
        "widgets[0].definition.widgets[1].definition.requests[0].display_type: "
        "'barz' is not one of ['area', 'bars', 'line', 'overlay']"
    ]


@pytest.mark.parametrize("case", BROKEN_MONITORS)
def test_the_model_check_fails_on_a_broken_monitor(case, fresh):
    _, monitors = build(fresh())
    path, value = BROKEN_MONITORS[case]
    with pytest.raises(InvalidDocumentError):
        to_model(_set(monitors[0], path, value), "monitor")


# --- the queries name what the service sends --------------------------------------------------


@pytest.mark.parametrize(("prefix", "tags"), [(None, DEFAULT_TAGS), ("acme.voice", ("env", "region"))])
def test_every_query_names_a_declared_metric_label_and_value(prefix, tags, fresh):
    metrics = fresh()
    own_families(metrics)
    dashboard, monitors = build(metrics, prefix=prefix, tags=tags)
    catalog = Catalog(metrics, prefix, tags)
    shown = checked_metrics(catalog, dashboard)
    assert shown == {f.name for f in metrics.families}
    for monitor in monitors:
        catalog.check_monitor(monitor)


def test_the_query_check_fails_on_an_undeclared_value_a_wrong_prefix_or_a_missing_as_count(fresh):
    catalog = Catalog(fresh(), "acme", DEFAULT_TAGS)
    catalog.check_query("sum:acme.sip_invite_result_total{code_class:2xx,$env}.as_count()")
    for bad in (
        "sum:acme.sip_invite_result_total{code_class:7xx}.as_count()",
        "sum:sip_invite_result_total{*}.as_count()",
        "sum:acme.sip_invite_result_total{*}",
        "sum:acme.sip_invite_result_total{*} by {host}.as_count()",
        "p95:acme.sip_invite_result_total{*}.as_count()",
        "sum:acme.sip_call_mos_estimate{*}.as_count()",
        "sum:acme.sip_invite_result_total{$team}.as_count()",
    ):
        with pytest.raises(AssertionError):
            catalog.check_query(bad)


def test_monitors_group_by_env_and_service_but_not_version(fresh):
    _, monitors = build(fresh())
    for monitor in monitors:
        assert " by {env,service" in monitor["query"], monitor["query"]
        assert "version" not in monitor["query"]


def test_the_prefix_defaults_to_the_instances_own(fresh):
    dashboard, monitors = build(fresh(prefix="edge"))
    assert "sum:edge.sip_invite_result_total{" in json.dumps(dashboard)
    assert all(".sip_" not in m["query"] or "edge.sip_" in m["query"] for m in monitors)


# --- every family has its place ---------------------------------------------------------------


def test_every_family_of_the_catalog_has_its_own_widgets(fresh):
    """A family the table does not know gets only the generic widget: add its line to VIEWS."""
    metrics = fresh()
    dashboard, _ = build(metrics)
    catalog = Catalog(metrics, None, DEFAULT_TAGS)
    placed: dict[str, set[str]] = {}
    for group in dashboard["widgets"]:
        for name in checked_metrics(catalog, group):
            placed.setdefault(name, set()).add(group["definition"]["title"])
    for family in metrics.families:
        assert family.name in VIEWS, f"{family.name}: no line in sip_statsd._assets.datadog.families.VIEWS"
        assert placed.get(family.name), f"{family.name} is not on the dashboard"
        assert GROUPS["custom"][0] not in placed[family.name], f"{family.name} has only the generic widget"
    assert {f.name for f in sm.catalog.families} | {sm.METRIC_DROPPED_INPUTS_TOTAL, sm.METRIC_SEND_ERRORS_TOTAL} <= (
        set(placed)
    )


def test_every_group_starts_with_a_note(fresh):
    dashboard, _ = build(fresh())
    for group in dashboard["widgets"]:
        definition = group["definition"]
        assert definition["type"] == "group"
        assert definition["widgets"][0]["definition"]["type"] == "note"
        assert len(definition["widgets"]) > 1


def test_a_users_own_families_get_a_generic_widget_each_in_their_group(fresh):
    metrics = fresh()
    own_families(metrics)
    dashboard, _ = build(metrics)
    custom = [g for g in dashboard["widgets"] if g["definition"]["title"] == GROUPS["custom"][0]]
    assert len(custom) == 1
    catalog = Catalog(metrics, None, DEFAULT_TAGS)
    assert checked_metrics(catalog, custom[0]) == {"acme_queue_rejects_total", "acme_ivr_seconds"}
    text = json.dumps(custom[0])
    assert "sum:acme_queue_rejects_total{$env,$service,$version} by {queue}.as_rate()" in text
    assert "p99:acme_ivr_seconds{$env,$service,$version} by {menu}" in text


def test_without_families_of_its_own_there_is_no_your_metrics_group(fresh):
    dashboard, _ = build(fresh())
    assert GROUPS["custom"][0] not in [g["definition"]["title"] for g in dashboard["widgets"]]


def test_the_monitors_the_issue_asks_for_are_there(fresh):
    _, monitors = build(fresh())
    keys = [t.split(":", 1)[1] for m in monitors for t in m["tags"] if t.startswith("sip-statsd-monitor:")]
    assert keys == [
        "no_invite_outcomes",
        "asr",
        "error_share",
        "peer_asr",
        "isa",
        "transaction_timeouts",
        "dtls_failures",
        "stir_failures",
        "poor_mos",
        "poor_calls",
        "dropped_inputs",
        "send_errors",
    ]
    no_data = monitors[0]
    assert no_data["options"]["notify_no_data"] is True
    assert all(m["options"]["notify_no_data"] is False for m in monitors[1:])
    assert len({m["name"] for m in monitors}) == len(monitors)


def test_thresholds_and_notify_handles_reach_the_monitors(fresh):
    thresholds = Thresholds(asr_percent=42.5, no_data_minutes=60, send_errors=10)
    _, monitors = build(fresh(), thresholds=thresholds, notify=["@pagerduty-sip", "@ops"])
    by_key = {m["tags"][1].split(":")[1]: m for m in monitors}
    assert by_key["asr"]["query"].endswith("< 42.5")
    assert by_key["asr"]["options"]["thresholds"]["critical"] == 42.5
    assert by_key["no_invite_outcomes"]["options"]["no_data_timeframe"] == 60
    assert by_key["send_errors"]["query"].endswith("> 10")
    assert all(m["message"].endswith("\n\n@pagerduty-sip @ops") for m in monitors)


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"asr_percent": 120}, "asr_percent=120"),
        ({"mos_p50": 0.5}, "mos_p50=0.5"),
        ({"no_data_minutes": 5}, "no_data_minutes=5"),
        ({"send_errors": float("nan")}, "send_errors=nan"),
    ],
)
def test_a_bad_threshold_raises_quoting_it(kwargs, quoted):
    with pytest.raises(ValueError, match=re.escape(quoted)):
        Thresholds(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [({"tags": ("Env",)}, "'Env'"), ({"prefix": "a b"}, "'a b'"), ({"title": ""}, "''"), ({"tags": "env"}, "'env'")],
)
def test_bad_build_options_raise_quoting_the_value(kwargs, quoted, fresh):
    with pytest.raises(ValueError, match=re.escape(quoted)):
        build(fresh(), **kwargs)


# --- the command -----------------------------------------------------------------------------


def test_dashboard_out_writes_both_files_as_built(tmp_path, capsys):
    assert main(["dashboard", "--out", str(tmp_path / "dd"), "--prefix", "acme", "--tag", "env"]) == 0
    dashboard, monitors = build(prefix="acme", tags=("env",))
    written = json.loads((tmp_path / "dd" / "dashboard.json").read_text())
    written_monitors = json.loads((tmp_path / "dd" / "monitors.json").read_text())
    assert written == dashboard
    assert written_monitors == monitors
    to_model(written, "dashboard")
    for monitor in written_monitors:
        to_model(monitor, "monitor")
    assert sorted(p.name for p in (tmp_path / "dd").iterdir()) == ["dashboard.json", "monitors.json"]
    assert f"({len(monitors)} monitors)" in capsys.readouterr().out


def test_dashboard_prints_the_dashboard_or_the_monitors(capsys):
    assert main(["dashboard", "--title", "Edge SIP"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Edge SIP"
    assert main(["dashboard", "--monitors", "--threshold", "mos_p50=3.2", "--notify", "@oncall"]) == 0
    monitors = json.loads(capsys.readouterr().out)
    assert any(m["query"].endswith("< 3.2") for m in monitors)
    assert all("@oncall" in m["message"] for m in monitors)


def test_dashboard_import_puts_a_modules_own_families_on_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "acme_metrics.py").write_text(
        "import sip_statsd\nsip_statsd.Counter('acme_transfers_total', labels={'kind': ('blind', 'attended')})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["dashboard", "--import", "acme_metrics"]) == 0
    assert "sum:acme_transfers_total{$env,$service,$version} by {kind}.as_rate()" in capsys.readouterr().out


def test_dashboard_import_module_name_builds_from_that_instance(tmp_path, monkeypatch, capsys):
    (tmp_path / "acme_service.py").write_text(
        "import sip_statsd\n"
        "METRICS = sip_statsd.SipMetrics(backend='off', prefix='acme')\n"
        "METRICS.distribution('acme_ivr_seconds', minimum=0)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["dashboard", "--import", "acme_service:METRICS"]) == 0
    finally:
        sys.modules["acme_service"].METRICS.close(timeout=2)
    out = capsys.readouterr().out
    assert "p95:acme.acme_ivr_seconds{$env,$service,$version}" in out
    assert "sum:acme.sip_invite_result_total{" in out
    assert main(["dashboard", "--import", "acme_service:sip_statsd"]) == 1
    assert "'acme_service:sip_statsd' is module, not a SipMetrics instance" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "asr=3"], "'asr=3' is not NAME=VALUE"),
        (["--threshold", "asr_percent=lots"], "'lots' is not a number"),
        (["--threshold", "asr_percent=300"], "asr_percent=300.0 must be a percentage"),
        (["--threshold", "asr_percent=-5"], "asr_percent=-5.0 must be"),
        (["--notify", "pagerduty"], "'pagerduty' is not a Datadog handle"),
    ],
)
def test_dashboard_bad_arguments_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["dashboard", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", "Env"], "invalid label key 'Env'"),
        (["--import", "no_such_module_here"], "cannot import 'no_such_module_here'"),
    ],
)
def test_dashboard_bad_values_give_one_line_and_exit_1(args, message, capsys):
    assert main(["dashboard", *args]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_dashboard_runs_as_a_command_and_counts_what_it_made():
    result = subprocess.run(
        [sys.executable, "-m", "sip_statsd", "dashboard"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    dashboard = json.loads(result.stdout)
    assert count_widgets(dashboard["widgets"]) >= 40
    to_model(dashboard, "dashboard")


def test_docs_widget_counts_are_the_built_dashboards(fresh):
    """docs/dashboards.md's numbers, as `build()` makes the dashboard (no family of the user's)."""
    text = " ".join((ROOT / "docs" / "dashboards.md").read_text().split())
    found = re.search(r"(\d+) widgets: (\d+) groups, their (\d+) notes, (\d+) charts", text)
    assert found, "docs/dashboards.md lacks 'N widgets: G groups, their N notes, C charts'"
    dashboard, _ = build(fresh())
    groups = [w["definition"] for w in dashboard["widgets"]]
    assert all(g["type"] == "group" for g in groups)
    inner = [w["definition"]["type"] for g in groups for w in g["widgets"]]
    notes = inner.count("note")
    built = (len(groups) + len(inner), len(groups), notes, len(inner) - notes)
    assert tuple(int(n) for n in found.groups()) == built
    for group in groups:
        assert f"**{group['title']}**" in text, f"docs/dashboards.md does not describe the group {group['title']!r}"


def test_docs_monitor_table_lists_every_monitor_with_its_default(fresh):
    readme = (ROOT / "docs" / "dashboards.md").read_text()
    _, monitors = build(fresh())
    defaults = Thresholds()
    for name in Thresholds.names():
        assert f"`{name}={getattr(defaults, name):g}`" in readme, f"README's monitor table lacks {name}'s default"
    for monitor in monitors:
        assert monitor["name"].split("] ", 1)[1] in readme


@pytest.mark.parametrize(
    ("x", "text"), [(30, "30"), (30.0, "30"), (42.5, "42.5"), (1e-4, "0.0001"), (1e20, "100000000000000000000")]
)
def test_monitor_thresholds_are_written_as_plain_decimals(x, text):
    assert number(x) == text
    assert float(text) == x


def _asr_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every widget definition whose title names ASR or NER."""
    if isinstance(node, dict):
        if re.search(r"\bASR\b|\bNER\b|Answer-seizure|INVITE attempts", str(node.get("title", ""))):
            yield node
        for value in node.values():
            yield from _asr_nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _asr_nodes(item)


def test_asr_and_ner_count_invite_timeouts_as_attempts_in_every_widget_and_monitor(fresh):
    """A timed-out INVITE (only in sip_transaction_timeout_total{method:INVITE}) is an attempt (issue 27 probe)."""
    dashboard, monitors = build(fresh())
    widgets = list(_asr_nodes(dashboard["widgets"]))
    assert len(widgets) >= 8
    for widget in widgets:
        text = json.dumps(widget)
        assert "sip_transaction_timeout_total{method:INVITE" in text, widget["title"]
        formulas = [f["formula"] for r in metric_queries(widget) for f in r["formulas"]]
        assert any("timeouts" in f for f in formulas), (widget["title"], formulas)
    by_key = {t.split(":", 1)[1]: m for m in monitors for t in m["tags"] if t.startswith("sip-statsd-monitor:")}
    for key in ("asr", "peer_asr"):
        query = by_key[key]["query"]
        assert "sip_transaction_timeout_total{method:INVITE" in query, query
    # the per-peer minimum counts timeouts too: a peer that only times out is judged
    assert "cutoff_min(moving_rollup(" in by_key["peer_asr"]["query"]
    assert re.search(r"cutoff_min\([^<]*sip_transaction_timeout_total", by_key["peer_asr"]["query"])
