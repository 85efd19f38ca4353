"""`sip-statsd dashboard --apply` against a loopback Datadog API that validates every body."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import free_port
from datadog_api import DatadogAPI

import sip_statsd.dashboard as dashboard_module
from sip_statsd._cli.main import main
from sip_statsd.dashboard import InvalidDocumentError, apply, build

KEYS = {"DD_API_KEY": "test-api-key", "DD_APP_KEY": "test-app-key"}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[DatadogAPI]:
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DD_SITE", raising=False)
    with DatadogAPI() as server:
        yield server


def apply_cli(api: DatadogAPI, *args: str) -> int:
    return main(["dashboard", "--apply", "--api-url", api.url, *args])


def test_apply_creates_then_updates_with_no_duplicates(api, capsys):
    assert apply_cli(api) == 0
    out = capsys.readouterr().out
    _, monitors = build()
    n = len(monitors)
    assert len(api.dashboards) == 1
    assert len(api.monitors) == n >= 11  # one per family that deserves an alert
    assert out.count("created monitor") == n
    assert "created dashboard 'SIP signalling (sip-statsd)'" in out
    first = dict(api.monitors)

    assert apply_cli(api) == 0
    out = capsys.readouterr().out
    assert len(api.dashboards) == 1
    assert set(api.monitors) == set(first)
    assert out.count("updated monitor") == n
    assert api.calls("POST", "/api/v1/monitor") == n
    assert api.calls("PUT", r"/api/v1/monitor/\d+") == n
    assert api.calls("POST", "/api/v1/dashboard") == 1
    assert api.calls("PUT", r"/api/v1/dashboard/[\w-]+") == 1
    assert api.rejected == []
    assert all(status == 200 for _, _, status in api.requests)


def test_a_changed_threshold_updates_the_monitor_in_place(api):
    assert apply_cli(api) == 0
    assert apply_cli(api, "--threshold", "asr_percent=45") == 0
    asr = [m for m in api.monitors.values() if "sip-statsd-monitor:asr" in m["tags"]]
    assert len(asr) == 1
    assert asr[0]["query"].endswith("< 45")
    assert asr[0]["options"]["thresholds"]["critical"] == 45


def test_apply_leaves_other_dashboards_and_monitors_alone(api):
    api.monitors[7] = {"id": 7, "name": "disk full", "type": "metric alert", "query": "avg(last_5m):avg:disk{*} > 9"}
    apply(*build(title="Edge A"), api_url=api.url, report=lambda _: None)
    apply(*build(title="Edge B"), api_url=api.url, report=lambda _: None)
    assert sorted(d["title"] for d in api.dashboards.values()) == ["Edge A", "Edge B"]
    assert len(api.monitors) == 1 + 2 * len(build()[1])
    assert api.monitors[7]["name"] == "disk full"


def test_two_dashboards_with_the_title_the_first_is_updated_and_the_user_told(api, capsys):
    dashboard, _ = build()
    for key in ("aaa-bbb-ccc", "ddd-eee-fff"):
        api.dashboards[key] = {**dashboard, "id": key, "url": f"/dashboard/{key}/x"}
    assert apply_cli(api) == 0
    out = capsys.readouterr().out
    assert "updated dashboard 'SIP signalling (sip-statsd)'" in out
    assert "(2 dashboards have this title; the first was updated)" in out
    assert api.calls("PUT", "/api/v1/dashboard/aaa-bbb-ccc") == 1
    assert api.calls("PUT", "/api/v1/dashboard/ddd-eee-fff") == 0
    assert len(api.dashboards) == 2


def test_apply_a_users_own_widgets_and_monitors(api, make_metrics):
    metrics = make_metrics(backend="off")
    metrics.counter("acme_transfers_total", {"kind": ("blind", "attended")})
    dashboard, monitors = build(metrics)
    monitors.append(
        {
            **monitors[-1],
            "name": "[SIP signalling (sip-statsd)] Transfers",
            "query": "sum(last_5m):sum:acme_transfers_total{*}.as_count() > 100",
            "options": {"thresholds": {"critical": 100}},
        }
    )
    done = apply(dashboard, monitors, api_url=api.url, report=lambda _: None)
    assert done.dashboard[0] == "created"
    assert [a for a, _, _ in done.monitors] == ["created"] * len(monitors)
    assert "acme_transfers_total" in str(next(iter(api.dashboards.values()))["widgets"])


def test_an_invalid_document_is_refused_before_any_request(api):
    dashboard, monitors = build()
    dashboard["layout_type"] = "orderd"
    with pytest.raises(InvalidDocumentError, match="layout_type"):
        apply(dashboard, monitors, api_url=api.url)
    assert api.requests == []


def test_the_loopback_api_refuses_what_the_models_refuse(api):
    """The server validates too: a body the client would never send gets Datadog's 400."""
    import json
    import urllib.error
    import urllib.request

    body = json.dumps({"title": "x", "layout_type": "ordered", "widgets": [], "colour": "red"}).encode()
    request = urllib.request.Request(
        api.url + "/api/v1/dashboard",
        data=body,
        method="POST",
        headers={"DD-API-KEY": KEYS["DD_API_KEY"], "DD-APPLICATION-KEY": KEYS["DD_APP_KEY"]},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert "colour: unknown property of Dashboard" in info.value.read().decode()


@pytest.mark.parametrize("missing", ["DD_API_KEY", "DD_APP_KEY"])
def test_a_missing_key_is_one_line_and_exit_1(api, missing, monkeypatch, capsys):
    monkeypatch.delenv(missing)
    assert apply_cli(api) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{missing} is not set" in err
    assert api.requests == []


def test_a_403_is_one_line_and_exit_1(api, monkeypatch, capsys):
    monkeypatch.setenv("DD_APP_KEY", "revoked")
    assert apply_cli(api) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Datadog refused to list dashboards: HTTP 403" in err
    assert "DD_APP_KEY" in err
    assert "Traceback" not in err
    assert api.dashboards == {}


def test_an_unreachable_api_is_one_line_and_exit_1(api, capsys):
    port = free_port(socket.SOCK_STREAM)
    assert main(["dashboard", "--apply", "--api-url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot reach the Datadog API at http://127.0.0.1:{port}" in err
    assert "Connection refused" in err


def test_an_unknown_site_is_one_line(api, monkeypatch, capsys):
    monkeypatch.setenv("DD_SITE", "datadoghq.moon")
    assert main(["dashboard", "--apply"]) == 1
    assert "DD_SITE 'datadoghq.moon' is not a Datadog site" in capsys.readouterr().err


def test_apply_failing_after_the_files_were_written_keeps_them(api, tmp_path, monkeypatch):
    monkeypatch.setenv("DD_APP_KEY", "revoked")
    assert apply_cli(api, "--out", str(tmp_path)) == 1
    assert (tmp_path / "dashboard.json").exists()
    assert (tmp_path / "monitors.json").exists()


def _run(*args: str, env: dict[str, str], code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "sip_statsd", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


def test_the_command_applies_as_a_user_runs_it(api):
    env = {**os.environ, **KEYS}
    result = _run("dashboard", "--apply", "--api-url", api.url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(api.monitors) == len(build()[1])
    assert f"created dashboard 'SIP signalling (sip-statsd)': {api.url}/dashboard/sip-" in result.stdout


# Runs the command with datadog_api_client made unimportable, as without the extra.
WITHOUT_CLIENT = (
    "import sys; sys.modules['datadog_api_client'] = None; sys.argv[0] = 'sip-statsd'; "
    "from sip_statsd._cli.main import main; raise SystemExit(main(sys.argv[1:]))"
)


def test_without_the_extra_apply_says_how_to_install_it_and_files_are_still_written(tmp_path):
    env = {**os.environ, **KEYS}
    result = _run("dashboard", "--apply", "--out", str(tmp_path), env=env, code=WITHOUT_CLIENT)
    assert result.returncode == 1
    assert "python -m pip install '.[dashboard]'" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (tmp_path / "dashboard.json").exists()
    plain = _run("dashboard", "--monitors", env=env, code=WITHOUT_CLIENT)
    assert plain.returncode == 0, plain.stderr
    assert '"query alert"' in plain.stdout


def test_the_library_never_imports_the_client():
    code = (
        "import sys, sip_statsd, sip_statsd.dashboard, sip_statsd.testing\n"
        "sip_statsd.dashboard.build()\n"
        "assert not any(m.startswith('datadog_api_client') for m in sys.modules), 'imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_callers_catch_apply_errors_through_the_public_module(monkeypatch):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    with pytest.raises(dashboard_module.ApplyError, match="DD_API_KEY"):
        apply(*build(), report=lambda _: None)
    with pytest.raises(dashboard_module.InvalidDocumentError):
        apply({"title": "x"}, [], report=lambda _: None)


def test_an_api_url_without_a_scheme_is_one_line(api, capsys):
    assert main(["dashboard", "--apply", "--api-url", api.url.removeprefix("http://")]) == 1
    assert "must start with http:// or https://" in capsys.readouterr().err
    assert api.requests == []
