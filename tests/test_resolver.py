"""A resolver that hangs: the caller's thread never waits for it, and every timeout holds."""

from __future__ import annotations

import socket
import threading

import pytest

import sip_statsd as sm

SLOW = "slow-dns.example"


class SlowResolver:
    """getaddrinfo that blocks for SLOW until released, recording which threads asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = socket.getaddrinfo
        self.entered = threading.Event()
        self.release = threading.Event()
        self.callers: list[str] = []
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, *args, **kwargs):
        if host == SLOW:
            self.callers.append(threading.current_thread().name)
            self.entered.set()
            self.release.wait(30)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.real(host, *args, **kwargs)


@pytest.fixture
def resolver(monkeypatch):
    slow = SlowResolver(monkeypatch)
    yield slow
    slow.release.set()


@pytest.mark.parametrize("backend", ["datadog", "statsd"])
def test_after_close_flush_and_stats_keep_their_timeout_and_the_network_off_the_caller(backend, resolver, make_metrics):
    """Item 5: after close(), a flush still happens on a thread of ours, and the caller waits at most its timeout."""
    metrics = make_metrics(backend=backend, host=SLOW, port=8125, flush_interval=3600)
    assert resolver.entered.wait(10)  # the flusher makes its backend at once: it is in the resolver
    assert metrics.close(timeout=0.2) is False
    metrics.invite_result("outbound", 180)
    assert metrics.flush(timeout=0.2) is False
    assert not resolver.release.is_set()  # returned while the resolver still hangs
    metrics.stats(timeout=0.2)
    assert not resolver.release.is_set()
    resolver.release.set()
    assert metrics.flush(timeout=10)
    assert metrics.stats().send_errors.get("resolve", 0) >= 1
    assert resolver.callers
    assert threading.current_thread().name not in resolver.callers
    assert set(resolver.callers) == {"sip-statsd-flusher"}


def test_configure_returns_while_the_flusher_waits_for_the_resolver(resolver, make_metrics, receiver):
    """Item 6: configure() hands the switch to the flusher instead of waiting for the network."""
    metrics = make_metrics(host=SLOW, port=8125, flush_interval=3600)
    assert resolver.entered.wait(10)
    for _ in range(3):
        metrics.invite_result("inbound", 503)  # recorded before: for the old (unresolvable) agent
    metrics.configure(host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.configure(host=receiver.host, port=receiver.port, flush_interval=3600, strict=True)
    assert not resolver.release.is_set()  # both returned while the resolver hangs
    assert metrics.config.strict  # the new configuration holds at once for the caller
    with pytest.raises(ValueError, match="sip_invite_result_total"):
        metrics.invite_result("sideways", 200)
    metrics.invite_result("inbound", 200)  # recorded after: for the new agent
    resolver.release.set()
    assert metrics.flush(timeout=10)
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 1)
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx") == 1
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="5xx") == 0
    # two values, each a total of 3: the 5xx class and the exact 503 code
    assert metrics.stats().send_errors.get("resolve", 0) == 2


def test_an_unresolvable_host_counts_every_value_it_could_not_send(make_metrics, monkeypatch):
    """One unit for every kind of fault: metric values (a counter's total, or one sample)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "agent.invalid":
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    metrics = make_metrics(host="agent.invalid", port=8125, flush_interval=3600)
    values = 0
    samples, count = metrics.distribution("unsent_ms"), metrics.counter("unsent_total")
    for _ in range(10):
        for _ in range(60):
            samples.observe(12.5)
        count.inc(5)
        values += 61
        assert metrics.flush(timeout=10)
    errors = metrics.stats().send_errors
    # every value sent, plus the error counter's own line from the second flush on
    assert errors["resolve"] == values + 9
    assert len(asked) == 1  # one question per back-off, not per packet or flush


def test_exit_with_a_hung_resolver_keeps_to_one_budget(tmp_path):
    """At exit: one 5 s budget for every recorder, and no name resolved on the exiting thread."""
    import subprocess
    import sys
    import time

    script = tmp_path / "exit.py"
    script.write_text(
        "import socket, threading, sip_statsd\n"
        "real = socket.getaddrinfo\n"
        "answered = []\n"
        "def hung(host, *args, **kwargs):\n"
        "    if host == 'agent.hang' and answered:\n"
        "        threading.Event().wait()  # answers once, then never again\n"
        "    answered.append(host)\n"
        "    return real('127.0.0.1', *args, **kwargs)\n"
        "socket.getaddrinfo = hung\n"
        "closed = sip_statsd.SipMetrics(host='agent.hang', port=8125)\n"
        "assert closed.flush(timeout=10) and closed.close(timeout=10)\n"
        "closed.invite_result('inbound', 200)  # after close(): the exit must not resolve for it\n"
        "stuck = [sip_statsd.SipMetrics(host='agent.hang', port=8125) for _ in range(3)]\n"
        "for m in stuck:\n"
        "    m.invite_result('inbound', 200)\n"
    )
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert took < 2 * 5.0, took  # was 20 s and more (5 s per recorder, twice); never ended on 3.12
