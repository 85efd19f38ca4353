"""configure(): every bad value raises ValueError quoting it, and the old configuration stays."""

from __future__ import annotations

import pytest

import sip_statsd as sm


@pytest.mark.parametrize(
    ("options", "quoted"),
    [
        ({"backend": "prometheus"}, "'prometheus'"),
        ({"backend": "statsd", "flavor": "opentsdb"}, "'opentsdb'"),
        ({"port": 0}, "port 0"),
        ({"port": 70000}, "port 70000"),
        ({"port": "8125"}, "'8125'"),
        ({"host": ""}, "host ''"),
        ({"host": "agent host"}, "'agent host'"),
        ({"socket_path": ""}, "socket_path ''"),
        ({"socket_path": "/run/dsd.sock", "host": "localhost"}, "not both"),
        ({"prefix": "edge|x"}, "'edge|x'"),
        ({"prefix": "edge."}, "'edge.'"),
        ({"constant_tags": "pop:fra1"}, "not the string 'pop:fra1'"),
        ({"constant_tags": ["pop"]}, "'pop' is not of the form"),
        ({"constant_tags": ["pop:fra:1"]}, "'pop:fra:1' is not of the form"),
        ({"constant_tags": {"pop": "fra 1"}}, "'fra 1'"),
        ({"constant_tags": {"pop": "fra|1"}}, "'fra|1'"),
        ({"constant_tags": {"pop": "fra,1"}}, "'fra,1'"),
        ({"constant_tags": {"pop": "fra=1"}}, "'fra=1'"),
        ({"packed": "no"}, "packed 'no'"),
        ({"constant_tags": {f"k{i}": "v" * 190 for i in range(3)}}, "at most 512"),
        ({"constant_tags": {"Pop": "fra1"}}, "'Pop'"),
        ({"backend": "statsd", "flavor": "plain", "constant_tags": {"pop": "fra1"}}, "plain flavor"),
        ({"flush_interval": 0}, "flush_interval 0"),
        ({"flush_interval": float("nan")}, "flush_interval nan"),
        ({"flush_interval": True}, "flush_interval True"),
        ({"flush_interval": "1"}, "flush_interval '1'"),
        ({"strict": "yes"}, "strict 'yes'"),
    ],
)
def test_bad_configuration_raises_quoting_the_value_and_keeps_the_old_one(options, quoted):
    metrics = sm.SipMetrics(backend="memory", flush_interval=2.0)
    try:
        with pytest.raises(ValueError) as err:
            metrics.configure(**options)
        assert quoted in str(err.value)
        assert metrics.config.backend == "memory"
        assert metrics.config.flush_interval == 2.0
    finally:
        metrics.close()


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="colour"):
        sm.SipMetrics(colour="blue")


def test_constant_tags_as_mapping_or_list_are_the_same():
    a = sm.Config(constant_tags=("pop:fra1", "tier:edge"))
    b = sm.SipMetrics(backend="off", constant_tags={"pop": "fra1", "tier": "edge"})
    try:
        assert b.config.constant_tags == a.constant_tags == ("pop:fra1", "tier:edge")
    finally:
        b.close()


def test_configure_replaces_the_whole_configuration():
    metrics = sm.SipMetrics(backend="memory", prefix="edge", strict=True)
    try:
        metrics.configure(backend="off")
        assert metrics.config == sm.Config(backend="off")
        metrics.invite_result("sideways", 200)  # strict went with the rest: no exception
    finally:
        metrics.close()


@pytest.mark.parametrize("value", ["1.2.3", "fra1.eu", "team/voice", "v2-rc_1"])
def test_constant_tag_values_may_carry_dots_and_slashes(value, receiver):
    """What DD_VERSION=1.2.3 carries through the datadog client, configure() takes too."""
    metrics = sm.SipMetrics(host=receiver.host, port=receiver.port, constant_tags={"version": value})
    try:
        metrics.stir_verify("verified")
        assert metrics.flush()
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_STIR_VERIFY_TOTAL) >= 1)
        assert totals.count(sm.METRIC_STIR_VERIFY_TOTAL, version=value) == 1
        assert not totals.malformed
    finally:
        metrics.close()


def test_environment_fills_what_configure_does_not_name(monkeypatch):
    monkeypatch.setenv("SIP_STATSD_BACKEND", "statsd")
    monkeypatch.setenv("SIP_STATSD_HOST", "agent.example")
    monkeypatch.setenv("SIP_STATSD_PORT", "9125")
    monkeypatch.setenv("SIP_STATSD_FLAVOR", "graphite")
    monkeypatch.setenv("SIP_STATSD_PREFIX", "edge")
    monkeypatch.setenv("SIP_STATSD_FLUSH_INTERVAL", "2.5")
    metrics = sm.SipMetrics(backend="off", flush_interval=1.0)
    try:
        config = metrics.config
        assert (config.backend, config.flush_interval) == ("off", 1.0)  # named: the argument wins
        assert (config.host, config.port, config.flavor, config.prefix) == ("agent.example", 9125, "graphite", "edge")
        metrics.configure(backend="off", socket_path="/run/agent.sock")  # host/port/socket_path go together
        assert (metrics.config.host, metrics.config.port) == (None, None)
        assert metrics.config.socket_path == "/run/agent.sock"
    finally:
        metrics.close()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SIP_STATSD_BACKEND", "prometheus"),
        ("SIP_STATSD_PORT", "eighty"),
        ("SIP_STATSD_PORT", "0"),
        ("SIP_STATSD_FLAVOR", "opentsdb"),
        ("SIP_STATSD_FLUSH_INTERVAL", "never"),
        ("SIP_STATSD_PREFIX", "a|b"),
    ],
)
def test_a_bad_environment_value_is_logged_once_and_its_default_kept(variable, value, monkeypatch, caplog):
    monkeypatch.setenv(variable, value)
    made = [sm.SipMetrics(strict=False) for _ in range(2)]
    try:
        assert all(m.config == sm.Config() for m in made)
        logged = [r for r in caplog.records if variable in r.getMessage()]
        assert len(logged) == 1
        assert repr(value) in logged[0].getMessage()
    finally:
        for m in made:
            m.close()


def test_importing_with_a_bad_environment_never_raises(receiver):
    import subprocess
    import sys

    env = {"SIP_STATSD_BACKEND": "nope", "SIP_STATSD_PORT": "-1", "SIP_STATSD_FLUSH_INTERVAL": "0", "PATH": ""}
    # The defaults it falls back to send to the agent DD_* names: here a receiver of the test's own.
    env.update(DD_AGENT_HOST=receiver.host, DD_DOGSTATSD_PORT=str(receiver.port))
    script = "import sip_statsd; sip_statsd.invite_result('inbound', 200); print(sip_statsd.default().config.backend)"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "datadog"
    assert "SIP_STATSD_BACKEND" in done.stderr
    assert receiver.wait_for(lambda t: t.lines >= 2).count("sip_invite_result_total", code_class="2xx") == 1


def test_the_environment_can_turn_the_library_off(receiver):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SIP_STATSD_BACKEND": "off", "DD_AGENT_HOST": receiver.host}
    env["DD_DOGSTATSD_PORT"] = str(receiver.port)
    script = "import sip_statsd; sip_statsd.invite_result('inbound', 200); sip_statsd.flush()"
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    sentinel = sm.SipMetrics(host=receiver.host, port=receiver.port)
    try:
        sentinel.stir_verify("failed")
        sentinel.flush()
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_STIR_VERIFY_TOTAL) >= 1)
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 0
    finally:
        sentinel.close()


def test_an_unknown_option_is_named_with_the_call_that_got_it():
    with pytest.raises(TypeError, match=r"^configure\(\) got an unexpected option 'response_codes'; .*SipMetrics\("):
        sm.configure(response_codes=[200, 486])
    with pytest.raises(TypeError, match=r"^SipMetrics\(\) got an unexpected option 'hots' \(options: backend, host"):
        sm.SipMetrics(hots="agent")


def _run_with_env(script: str, env: dict[str, str]) -> str:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr


@pytest.mark.parametrize(
    ("env", "logged"),
    [
        ({"DD_DOGSTATSD_PORT": "70000"}, "ignoring DD_DOGSTATSD_PORT='70000' (not a port from 1 to 65535; using 8125)"),
        ({"DD_DOGSTATSD_PORT": "eighty"}, "ignoring DD_DOGSTATSD_PORT='eighty' (not a port"),
        ({"DD_DOGSTATSD_URL": "tcp://agent:8125"}, "ignoring DD_DOGSTATSD_URL='tcp://agent:8125' (not udp://HOST:PORT"),
        ({"DD_DOGSTATSD_URL": "udp://agent:x"}, "ignoring the port of DD_DOGSTATSD_URL='udp://agent:x'"),
    ],
)
def test_a_malformed_dd_address_is_logged_as_ignored_with_its_value(env, logged):
    """The backend is made (nothing is sent: no emit) and says what it ignored."""
    stderr = _run_with_env("import sip_statsd; sip_statsd.configure(); sip_statsd.flush()", env)
    assert logged in stderr


def test_a_send_failure_names_the_address_the_dd_environment_gave():
    from conftest import free_port

    port = free_port()  # nothing listens: the datagram is refused
    env = {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(port)}
    stderr = _run_with_env("import sip_statsd; sip_statsd.stir_verify('failed'); sip_statsd.flush()", env)
    assert f"cannot send to datadog udp://127.0.0.1:{port} (from DD_AGENT_HOST and DD_DOGSTATSD_PORT)" in stderr


@pytest.mark.parametrize(
    ("environment", "accepted"),
    [
        ({"DD_AGENT_HOST": "10.0.0.7"}, True),  # Kubernetes: status.hostIP
        ({"DD_AGENT_HOST": "fd00::7"}, True),
        ({"DD_DOGSTATSD_URL": "udp://[fd00::7]:8125"}, True),
        ({"DD_DOGSTATSD_URL": "unix:///var/run/datadog/dsd.socket"}, True),
        ({"DD_AGENT_HOST": "datadog-agent.monitoring"}, False),
        ({}, False),  # localhost: a name
    ],
)
def test_host_delivery_takes_an_agent_address_literal_from_the_environment(monkeypatch, environment, accepted):
    """Issue 24: DD_AGENT_HOST set to an IP address is an address; only a name is refused."""
    for name in ("DD_AGENT_HOST", "DD_DOGSTATSD_URL", "DD_DOGSTATSD_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if accepted:
        sm.SipMetrics(delivery="host", backend="datadog").close()
    else:
        with pytest.raises(ValueError, match="never resolves a name"):
            sm.SipMetrics(delivery="host", backend="datadog")


def test_host_delivery_sends_to_the_agent_at_dd_agent_host(monkeypatch, receiver):
    monkeypatch.setenv("DD_AGENT_HOST", receiver.host)
    monkeypatch.setenv("DD_DOGSTATSD_PORT", str(receiver.port))
    metrics = sm.SipMetrics(delivery="host", flush_interval=3600)
    try:
        metrics.bye("inbound", "remote", "user-hangup")
        metrics.host_tick(True)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1
        assert metrics.recorder.flusher.schedule.thread is None  # sent on this thread: no fallback to ours
    finally:
        metrics.close()


BAD_ENVIRONMENT = """
import logging, sys
logging.basicConfig(stream=sys.stderr, format="%(message)s")
import sip_statsd
sip_statsd.configure(backend="off")
sip_statsd.configure()  # the datadog backend, from the environment: made again
assert sip_statsd.flush()
other = sip_statsd.SipMetrics()
assert other.flush()
other.close()
"""


def test_a_bad_environment_value_is_logged_once_in_one_wording():
    """Issue 25 item 10: DD_DOGSTATSD_PORT=abc was logged three times in three wordings; int()'s words too."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))}
    env |= {"DD_DOGSTATSD_PORT": "abc", "SIP_STATSD_PORT": "abc", "SIP_STATSD_FLUSH_INTERVAL": "soon"}
    done = subprocess.run(
        [sys.executable, "-c", BAD_ENVIRONMENT], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line for line in lines if "DD_DOGSTATSD_PORT" in line] == [
        "sip-statsd: ignoring DD_DOGSTATSD_PORT='abc' (not a port from 1 to 65535; using 8125)"
    ]
    assert "sip-statsd: ignoring SIP_STATSD_PORT='abc' (not a port from 1 to 65535); using the default" in lines
    assert "sip-statsd: ignoring SIP_STATSD_FLUSH_INTERVAL='soon' (not a number of seconds); using the default" in lines
    assert "invalid literal" not in done.stderr
    assert "could not convert" not in done.stderr
