"""The sip-statsd command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port

import sip_statsd as sm

ROOT = Path(__file__).parent.parent


def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command with no DD_* agent in its environment (the stray guard may name itself there)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    return subprocess.run(
        [sys.executable, "-m", "sip_statsd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**clean, **(env or {})},
    )


def test_catalog_json_lists_the_24_sip_metrics_and_the_librarys_own():
    result = run("catalog", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    sip = [m for m in doc["metrics"] if m["origin"] == "sip"]
    own = [m for m in doc["metrics"] if m["origin"] == "library"]
    assert {m["name"] for m in sip} == {f.name for f in sm.catalog.families}
    assert len(sip) == 24  # the origin's 13, the five KPIs, two call-quality, three registration, STIR attestation
    assert {m["name"] for m in own} == {
        sm.METRIC_DROPPED_INPUTS_TOTAL,
        sm.METRIC_SEND_ERRORS_TOTAL,
        sm.METRIC_SAMPLED_AWAY_TOTAL,
    }
    invite = next(m for m in sip if m["name"] == sm.METRIC_INVITE_RESULT_TOTAL)
    assert invite["labels"] == {
        "direction": ["inbound", "outbound"],
        "code_class": ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"],
    }
    assert invite["series"] == 12
    assert doc["sip_series"] == 323  # 67 of the origin, 220 of the KPIs, 11 of call quality, 25 registration+STIR
    assert doc["series_total"] == sum(m["series"] for m in doc["metrics"])


def test_catalog_table_names_every_metric_and_the_budget():
    result = run("catalog")
    assert result.returncode == 0
    for family in sm.catalog.families:
        assert family.name in result.stdout
    assert re.search(r"series budget: \d+ \(323 SIP, \d+ the library's own\)", result.stdout)


def test_docs_catalog_table_is_the_generated_one():
    readme = (ROOT / "docs" / "metrics.md").read_text()
    block = re.search(r"<!-- catalog:start -->\n(.*?)<!-- catalog:end -->", readme, re.S)
    assert block, "docs/metrics.md lacks the generated catalog block"
    assert block.group(1) == run("catalog", "--markdown").stdout, "regenerate: sip-statsd catalog --markdown"


def test_demo_reports_that_what_arrived_matches_what_was_sent():
    result = run("demo", "--calls", "3000", "--seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "every series arrived as sent" in out
    assert "MISMATCH" not in out
    row = re.search(r"sip_invite_result_total\{direction:inbound,code_class:2xx\}\s+([\d,]+)\s+([\d,]+)", out)
    assert row
    assert row.group(1) == row.group(2)
    assert int(row.group(1).replace(",", "")) > 1000
    for grade in sm.QUALITY_GRADES:  # the E-model's MOS of the simulated calls, graded, all arrived
        graded = re.search(rf"sip_call_quality_total\{{grade:{grade}\}}\s+([\d,]+)\s+([\d,]+)", out)
        assert graded, grade
        assert graded.group(1) == graded.group(2)
    assert re.search(r"call quality of [\d,]+ calls: best \d+\.\d %", out)


@pytest.mark.parametrize(
    "env",
    [
        {"SIP_STATSD_BACKEND": "off"},
        {"SIP_STATSD_BACKEND": "memory", "SIP_STATSD_FLUSH_INTERVAL": "60"},
        {"SIP_STATSD_PREFIX": "acme", "SIP_STATSD_BACKEND": "statsd", "SIP_STATSD_FLAVOR": "graphite"},
        {"SIP_STATSD_HOST": "192.0.2.1", "SIP_STATSD_PORT": "9"},
    ],
    ids=["off", "memory", "prefix-statsd", "host"],
)
def test_demo_names_the_sip_statsd_variables_it_ignores_and_still_checks_arrival(env):
    result = run("demo", "--calls", "300", "--seed", "5", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("sip-statsd demo: ignoring ")
    assert first.endswith("(the demo sets up its own sending)")
    for name, value in env.items():
        assert f"{name}={value!r}" in first
    assert "every series arrived as sent" in result.stdout


def test_demo_checks_every_new_helper_and_the_rfc_6076_ratios():
    result = run("demo", "--calls", "1500", "--seed", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for name in (
        sm.METRIC_INVITE_RESPONSE_TOTAL,
        sm.METRIC_REQUEST_RESULT_TOTAL,
        sm.METRIC_CALL_DURATION_S,
        sm.METRIC_SESSION_REQUEST_DELAY_MS,
    ):
        assert name in out, name
    levels = re.findall(r"sip_active_calls\{direction:\w+\}\s+([\d,]+)\s+([\d,]+)", out)
    assert len(levels) == 2
    assert all(sent == arrived for sent, arrived in levels)
    assert 24 <= sum(int(sent) for sent, _ in levels) <= 25  # the calls the demo keeps in progress
    ratios = re.findall(r"^(SER|SEER|ISA) .*?\s+([\d.]+)%\s+([\d.]+)%$", out, re.M)
    assert [r[0] for r in ratios] == ["SER", "SEER", "ISA"]
    assert all(sent == arrived for _, sent, arrived in ratios)
    assert 50 < float(ratios[0][1]) < 95


def test_listen_shows_the_last_level_of_each_gauge():
    from sip_statsd._cli.main import render_window
    from sip_statsd._wire.lines import parse_line
    from sip_statsd._wire.receiver import Totals

    total = Totals()
    for raw in ("sip_active_calls:4|g|#direction:inbound", "sip_active_calls:3|g|#direction:inbound"):
        total.add(parse_line(raw))
    out = io.StringIO()
    render_window(total, Totals(), 1.0, "127.0.0.1:8125", out)
    assert re.search(r"sip_active_calls\{direction:inbound\}\s+3$", out.getvalue(), re.M)


def test_demo_to_an_agent_address_says_it_is_a_demo(receiver):
    production = {"DD_ENV": "prod", "DD_SERVICE": "sbc"}
    result = run("demo", "--calls", "200", "--agent", f"{receiver.host}:{receiver.port}", env=production)
    assert result.returncode == 0, result.stderr
    assert "arrival is not checked" in result.stdout
    assert "tagging env:sip-statsd-demo, not DD_ENV='prod'" in result.stdout
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 200)
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, env="sip-statsd-demo", sip_statsd_demo="true") == 200
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, env="prod") == 0


@pytest.mark.parametrize("how", ["host", "url"])
def test_demo_never_sends_to_the_agent_the_environment_names(receiver, how):
    """With DD_AGENT_HOST (or DD_DOGSTATSD_URL) set, as on any host with an Agent, the demo stays local."""
    agent = (
        {"DD_AGENT_HOST": receiver.host, "DD_DOGSTATSD_PORT": str(receiver.port)}
        if how == "host"
        else {"DD_DOGSTATSD_URL": f"udp://{receiver.host}:{receiver.port}"}
    )
    result = run("demo", "--calls", "300", "--seed", "2", env={**agent, "DD_ENV": "prod", "DD_SERVICE": "sbc"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every series arrived as sent" in result.stdout
    assert "sip-statsd demo: not sending to the agent of DD_" in result.stdout
    # A marker after the run: the socket's queue is FIFO, so whatever the demo sent is read first.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
        marker.sendto(b"marker:1|c", (receiver.host, receiver.port))
    arrived = receiver.wait_for(lambda t: t.count("marker") >= 1)
    assert arrived.counts == {"marker": 1}, arrived.counts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--calls", "0"], "must be > 0"),
        (["demo", "--agent", "nohostport"], "is not HOST:PORT"),
        (["demo", "--rate", "fast"], "is not a number"),
        (["frobnicate"], "invalid choice"),
        (["listen", "--port", "70000"], "'70000' is not a UDP port (1 to 65535)"),
        (["listen", "--port", "-1"], "is not a UDP port"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_listen_on_ipv6_loopback():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "sip_statsd", "listen", "--host", "::1", "--port", str(port), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"listening on udp://[::1]:{port}" in proc.stdout.readline()
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.sendto(b"sip_dtls_handshake_total:3|c|#result:ok", ("::1", port))
        for line in proc.stdout:
            if "sip_dtls_handshake_total" in line:
                assert re.search(r"sip_dtls_handshake_total\{result:ok\}\s+3\b", line)
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_dashboard_imports_a_module_from_the_current_directory(tmp_path):
    """The installed command, not `python -m` (which puts the current directory on sys.path itself)."""
    script = Path(sys.executable).parent / "sip-statsd"
    if not script.exists():
        pytest.skip(f"no sip-statsd script beside {sys.executable}")
    (tmp_path / "mymetrics.py").write_text(
        "import sip_statsd\nsip_statsd.Counter('acme_transfers_total', labels={'kind': ('blind', 'attended')})\n"
    )
    result = subprocess.run(
        [str(script), "dashboard", "--import", "mymetrics"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "acme_transfers_total" in result.stdout


def test_listen_on_a_busy_port_fails_with_a_message():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        result = run("listen", "--port", str(s.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr


def test_listen_prints_parsed_aggregated_datagrams_and_stops_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "sip_statsd", "listen", "--port", str(port), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"listening on udp://127.0.0.1:{port}" in first
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            payload = b"sip_invite_result_total:5|c|#direction:inbound,code_class:2xx\nsip_call_rtt_ms:12|d\nbad line"
            s.sendto(payload, ("127.0.0.1", port))
            s.sendto(b"sip_bye_total;direction=inbound:2|c", ("127.0.0.1", port))
        seen: list[str] = []
        for line in proc.stdout:  # the table refreshes every 0.2 s; read until ours shows
            seen.append(line)
            if "sip_call_rtt_ms" in line:  # the last row of the first table with all three
                break
        text = "".join(seen)
        assert re.search(r"sip_invite_result_total\{direction:inbound,code_class:2xx\}\s+5\b", text)
        assert "malformed 1" in text
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "stopped" in out
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_demo_sends_only_bye_combinations_the_event_table_allows():
    """A BYE we receive is user-hangup (README's event table); ours may be any reason."""
    result = run("demo", "--calls", "1000", "--seed", "11")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"sip_bye_total\{direction:\w+,by:(\w+),reason_class:([\w-]+)\}", result.stdout)
    assert {reason for by, reason in rows if by == "remote"} == {"user-hangup"}
    assert {reason for by, reason in rows if by == "local"} == {"normal", "user-hangup", "timer-expired", "error"}


def _listen(port: int, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "sip_statsd", "listen", "--port", str(port), "--interval", "0.2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert "listening on" in proc.stdout.readline()
    return proc


def _table_with(proc: subprocess.Popen[str], marker: str) -> str:
    """The first whole table (they end with a blank line) that shows `marker`."""
    assert proc.stdout is not None
    table: list[str] = []
    for line in proc.stdout:
        table = [] if line.startswith("-- ") else table
        table.append(line)
        if line == "\n" and marker in "".join(table):
            return "".join(table)
    raise AssertionError(f"listen ended without showing {marker}: {proc.communicate()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_listen_reads_what_the_library_and_the_datadog_client_send_as_the_agent_would():
    """Sampled distributions count 1/rate each; sets, service checks and events are read, not malformed."""
    from datadog.dogstatsd.base import DogStatsd

    port = free_port()
    proc = _listen(port)
    try:
        metrics = sm.SipMetrics(host="127.0.0.1", port=port)
        family = sm.Distribution("acme_hold_ms", recorder=metrics.recorder, max_samples=10)
        for n in range(40):  # past the reservoir's 10: the 10 kept go out `|@0.25`
            family.observe(float(n + 1))
        assert metrics.flush()
        metrics.close()
        client = DogStatsd(host="127.0.0.1", port=port, disable_telemetry=True, origin_detection_enabled=False)
        for user in ("alice", "bob", "alice"):
            client.set("acme.users", user, tags=["env:lab"])
        client.service_check("acme.trunk_up", DogStatsd.CRITICAL, tags=["trunk:b"], message="no OPTIONS answer")
        client.event("Deploy | v2", "rolled out\nto 3 hosts", alert_type="info", tags=["env:lab"])
        client.increment("zz.marker")
        client.flush()
        client.close_socket()
        table = _table_with(proc, "zz.marker")
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "malformed 0" in table, table
    assert re.search(r"^acme_hold_ms\s+40\s+10\s", table, re.M), table
    assert re.search(r"^acme\.users\{env:lab\}\s+2$", table, re.M), table
    assert re.search(r"^acme\.trunk_up\{trunk:b\}\s+CRITICAL\s+no OPTIONS answer$", table, re.M), table
    assert re.search(r"^Deploy \| v2\{env:lab\}\s+1\s+rolled out\\nto 3 hosts$", table, re.M), table


def test_listen_keeps_at_most_max_series_and_says_what_it_evicted():
    port = free_port()
    proc = _listen(port, "--max-series", "50")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for n in range(200):
                s.sendto(f"acme.series_{n:03d}:1|c".encode(), ("127.0.0.1", port))
            s.sendto(b"zz.marker:1|c", ("127.0.0.1", port))
        table = _table_with(proc, "zz.marker")
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    rows = re.findall(r"^acme\.series_\d+", table, re.M)
    assert len(rows) == 49, table  # 50 kept: the marker and the newest 49
    assert "evicted 151 series, oldest first (the latest: acme.series_150)" in table, table


def test_docs_billing_block_is_the_commands_output():
    text = (ROOT / "docs" / "metrics.md").read_text()
    block = re.search(r"<!-- billing:start -->\n```\n(.*?)```\n<!-- billing:end -->", text, re.S)
    assert block, "docs/metrics.md lacks the generated billing block"
    assert block.group(1) == run("catalog", "--billing").stdout, "regenerate: sip-statsd catalog --billing"


def test_billing_counts_each_series_once_and_a_distribution_five_times_from_the_catalog(tmp_path):
    (tmp_path / "mymetrics.py").write_text(
        "import sip_statsd\n"
        "sip_statsd.Counter('acme_transfers_total', labels={'kind': ('blind', 'attended')})\n"
        "sip_statsd.Distribution('acme_hold_ms', labels={'queue': ('a', 'b', 'c')})\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    plain = json.loads(run("catalog", "--billing", "--json").stdout)
    mine = json.loads(
        run(
            "catalog",
            "--billing",
            "--json",
            "--percentiles",
            "--import",
            "mymetrics",
            "--response-codes",
            "200,486",
            env=env,
        ).stdout
    )
    # This process's catalog is the subprocess's (its default instance may hold other tests' families).
    catalog = {f.name: len(f.all_series) for f in sm.catalog.families}
    rows = plain["metrics"]
    assert {m["name"]: m["series"] for m in rows if m["origin"] == "sip"} == catalog
    assert all(m["custom"] == m["series"] * (5 if m["kind"] == "distribution" else 1) for m in rows)
    assert plain["total"] == sum(m["custom"] for m in rows)
    assert plain["custom_metrics"]["library"] == sum(m["series"] for m in rows if m["origin"] == "library")
    by_name = {m["name"]: m for m in mine["metrics"]}
    assert by_name["acme_transfers_total"]["custom"] == 2
    assert (by_name["acme_hold_ms"]["custom"], by_name["acme_hold_ms"]["percentiles"]) == (15, 20)
    assert by_name["sip_invite_response_total"]["series"] == 2 * (2 + 6)
    assert by_name["sip_session_request_delay_ms"]["percentiles"] == 5 * 3 * 3
    # the library's own grow with the two families: three drop reasons each, one sampled_away for the distribution
    assert mine["custom_metrics"]["library"] == plain["custom_metrics"]["library"] + 3 * 2 + 1
    assert mine["total"] == sum(m["custom"] + m["percentiles"] for m in mine["metrics"])
