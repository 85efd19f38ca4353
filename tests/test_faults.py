"""Transport faults: never an exception, never a blocked caller, one log line per kind."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from conftest import WIRE_BACKENDS, free_port

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver


def emit_and_flush(metrics: sm.SipMetrics, rounds: int = 20) -> None:
    for _ in range(rounds):
        for _ in range(50):
            metrics.invite_result("inbound", 200)
            metrics.observe_call_qos(rtt_ms=10.0)
        assert metrics.flush(timeout=10)


def sip_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


FAULTS = [
    pytest.param(b.values[0], where, kind, id=f"{b.id}-{where}")
    for b in WIRE_BACKENDS
    for where, kind in (("closed-port", "refused"), ("unresolvable-host", "resolve"), ("missing-socket", "no_socket"))
    # pystatsd sends with sendto() on an unconnected socket: no ICMP error ever reaches it
    if not (where == "closed-port" and b.values[0][0] == "statsd")
]


@pytest.fixture
def no_dns_wait(monkeypatch):
    """Answer `.invalid` names at once (this sandbox's resolver may take 5 s to say no); count the asks."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("backend", ["datadog", "statsd"])
def test_an_unresolvable_host_is_asked_once_per_back_off_not_per_packet(backend, make_metrics, no_dns_wait):
    metrics = make_metrics(backend=backend, host="agent.invalid", port=8125, flush_interval=3600)
    for _ in range(20):  # 20 flushes of several datagrams each, well inside one back-off
        for _ in range(200):
            metrics.observe_call_qos(rtt_ms=12.5, jitter_ms=1.5)
        assert metrics.flush(timeout=10)
    assert len(no_dns_wait) == 1
    assert metrics.stats().send_errors["resolve"] >= 20


@pytest.mark.parametrize(("backend", "where", "kind"), FAULTS)
@pytest.mark.usefixtures("no_dns_wait")
def test_fault_is_counted_and_logged_once(backend, where, kind, make_metrics, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    name, flavor = backend
    target: dict[str, object] = {
        "closed-port": {"host": "127.0.0.1", "port": free_port()},
        "unresolvable-host": {"host": "no-such-agent.invalid", "port": 8125},
        "missing-socket": {"socket_path": str(tmp_path / "nobody-here.sock")},
    }[where]
    options = {"backend": name, **target, "flush_interval": 3600}
    if flavor:
        options["flavor"] = flavor
    metrics = make_metrics(**options)
    emit_and_flush(metrics)
    stats = metrics.stats()
    assert stats.send_errors.get(kind, 0) >= 10, stats
    assert set(stats.send_errors) == {kind}
    warnings = sip_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "sip_statsd"
    assert f"({kind}:" in warnings[0].getMessage()
    # the datadog client's own per-packet warnings never reach the user's log
    assert not [r for r in caplog.records if r.name.startswith("datadog") and r.levelno >= logging.WARNING]


def test_recovery_after_the_agent_comes_back(make_metrics, caplog):

    port = free_port()
    metrics = make_metrics(host="127.0.0.1", port=port, flush_interval=3600)
    emit_and_flush(metrics, rounds=4)
    with Receiver(port=port) as receiver:
        metrics.stir_verify("verified")
        metrics.flush()
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_STIR_VERIFY_TOTAL) >= 1)
        assert totals.count(sm.METRIC_STIR_VERIFY_TOTAL, result="verified") == 1
        # the errors counted while the agent was away arrive once it is back
        metrics.stir_verify("verified")
        metrics.flush()
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_SEND_ERRORS_TOTAL) >= 1)
        assert totals.count(sm.METRIC_SEND_ERRORS_TOTAL, kind="refused") >= 1


def test_dns_is_resolved_only_on_the_flusher_thread(make_metrics, monkeypatch):
    """A hung resolver holds up the flusher, never the emitting thread or flush(timeout)."""
    real = socket.getaddrinfo
    callers: list[str] = []
    release = threading.Event()

    def slow_getaddrinfo(host, *args, **kwargs):
        if host == "slow-dns.example":
            callers.append(threading.current_thread().name)
            release.wait(30)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    for backend in ("datadog", "statsd"):
        callers.clear()
        release.clear()
        metrics = make_metrics(backend=backend, host="slow-dns.example", port=8125, flush_interval=3600)
        for _ in range(1000):
            metrics.invite_result("outbound", 180)
        assert metrics.flush(timeout=0.2) is False  # gave up waiting; did not hang
        metrics.invite_result("outbound", 180)  # emits still go through
        release.set()
        assert metrics.flush(timeout=10)
        assert callers
        assert set(callers) == {"sip-statsd-flusher"}


def test_emits_never_raise_whatever_the_backend_state(make_metrics, tmp_path):
    metrics = make_metrics(socket_path=str(tmp_path / "gone.sock"), flush_interval=0.01)
    for _ in range(2000):
        metrics.invite_result("inbound", 200)
        metrics.bye("inbound", "local", "error")
    metrics.close()
    metrics.invite_result("inbound", 200)  # after close: still no exception
    assert metrics.flush()
