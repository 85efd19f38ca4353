"""A dead agent: every lost value counted by kind, no DNS storm, whatever the user did to logging."""

from __future__ import annotations

import contextlib
import logging
import socket
import time

import pytest
from conftest import WIRE_BACKENDS, free_port

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver


@pytest.fixture
def resolutions(monkeypatch):
    """Every name the library asks the resolver for."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        asked.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def flood(metrics: sm.SipMetrics, flushes: int = 100) -> int:
    """Flush `flushes` batches of many datagrams; return the metric values they carried."""
    families = {f.name: f for f in metrics.families}
    samples = families.get("flood_ms") or metrics.distribution("flood_ms")
    count = families.get("flood_total") or metrics.counter("flood_total")
    values = 0
    for _ in range(flushes):
        for i in range(80):
            samples.observe(10.0 + i)
        count.inc()
        values += 81
        assert metrics.flush(timeout=10)
    return values


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_a_dead_agent_behind_a_name_is_resolved_once_and_every_value_is_counted(backend, make_metrics, resolutions):
    """Items 7 and 9: no reconnect (and no resolve) per refused datagram; refusals counted exactly."""
    name, flavor = backend
    options = {"backend": name, "host": "localhost", "port": free_port(), "flush_interval": 3600, "packed": False}
    if flavor:
        options["flavor"] = flavor
    metrics = make_metrics(**options)
    values = flood(metrics)
    stats = metrics.stats()
    # every value sent, plus the error counter's own line from the second flush on
    assert stats.send_errors == {"refused": values + 99}
    assert stats.lines_sent == 0  # nothing was taken by the network
    assert resolutions.count("localhost") <= 2  # made once; again at most every 5 s while refused


@pytest.fixture(params=["datadog-level", "disable-warnings"])
def silenced_datadog_log(request):
    """A service that keeps the datadog client's log quiet, as many do."""
    logger = logging.getLogger("datadog")
    level = logger.level
    if request.param == "datadog-level":
        logger.setLevel(logging.ERROR)
    else:
        logging.disable(logging.WARNING)
    yield
    logger.setLevel(level)
    logging.disable(logging.NOTSET)


@pytest.mark.usefixtures("silenced_datadog_log")
def test_fault_kinds_do_not_depend_on_the_datadog_logger(make_metrics, tmp_path):
    """Item 8: a service that silences the `datadog` logger still gets refused and no_socket right."""
    refused = make_metrics(host="127.0.0.1", port=free_port(), flush_interval=3600)
    missing = make_metrics(socket_path=str(tmp_path / "nobody.sock"), flush_interval=3600)
    for metrics in (refused, missing):
        flood(metrics, flushes=5)
    assert set(refused.stats().send_errors) == {"refused"}
    assert set(missing.stats().send_errors) == {"no_socket"}


def test_statsd_backend_counts_a_dead_udp_agent_and_claims_nothing_sent(make_metrics):
    """Item 9: pystatsd's unconnected sendto() never learnt of a dead agent; ours is connected."""
    metrics = make_metrics(backend="statsd", host="127.0.0.1", port=free_port(), flush_interval=3600)
    values = flood(metrics, flushes=20)
    stats = metrics.stats()
    assert stats.send_errors.get("refused", 0) == values + 19
    assert stats.lines_sent == 0


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_lines_sent_counts_what_the_agent_received(backend, receiver, make_metrics):
    name, flavor = backend
    options = {"backend": name, "host": receiver.host, "port": receiver.port, "flush_interval": 3600}
    if flavor:
        options["flavor"] = flavor
    metrics = make_metrics(**options)
    flood(metrics, flushes=3)
    sent = metrics.stats().lines_sent
    totals = receiver.wait_for(lambda t: t.lines >= sent)
    assert totals.lines == sent
    assert not totals.malformed


def test_a_stream_agent_that_stops_reading_holds_a_flush_only_briefly(make_metrics, tmp_path):
    """A Unix stream peer that accepts and never reads: one timeout, then the rest is counted."""
    path = str(tmp_path / "stream.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    server.setblocking(False)
    try:
        metrics = make_metrics(socket_path=f"unixstream://{path}", flush_interval=3600)
        samples = metrics.distribution("stalled_ms")
        for i in range(200_000):
            samples.observe(float(i))
        assert metrics.flush(timeout=10)
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                server.accept()[0].close()
                connections += 1
        assert connections <= 2  # was a reconnect (and a timeout) per datagram within the flush
        errors = metrics.stats(timeout=10).send_errors
        assert sum(errors.values()) > 0
    finally:
        server.close()


def test_a_unix_agent_that_restarts_is_counted_as_refused_and_found_again(make_metrics, tmp_path):
    path = str(tmp_path / "agent.sock")
    with Receiver(socket_path=path) as first:
        metrics = make_metrics(socket_path=path, flush_interval=3600)
        metrics.stir_verify("verified")
        assert metrics.flush()
        first.wait_for(lambda t: t.count(sm.METRIC_STIR_VERIFY_TOTAL) >= 1)
    metrics.stir_verify("failed")
    assert metrics.flush()
    assert set(metrics.stats().send_errors) <= {"refused", "no_socket"}  # was `other` (ENOTCONN)
    with Receiver(socket_path=path) as second:
        deadline = time.monotonic() + 3  # no name to resolve: found again within 0.5 s (was 5 s)
        while time.monotonic() < deadline and not second.totals().count(sm.METRIC_STIR_VERIFY_TOTAL):
            metrics.stir_verify("soft-fail")
            metrics.flush()  # reconnects at most every 0.5 s; each flush waits for the flusher
        assert second.totals().count(sm.METRIC_STIR_VERIFY_TOTAL) >= 1
