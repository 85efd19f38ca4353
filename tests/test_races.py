"""Races: flush, close, configure and stats from many threads, and a logging handler that calls back in."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver


def start(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # a hang fails the test, not the run
    thread.start()
    return thread


@pytest.mark.parametrize("racer", ["close", "configure"])
def test_flush_returns_while_other_threads_close_or_configure(racer, receiver, make_metrics):
    """Item 4: flush(timeout=None) returns once its data is sent, whatever races it."""
    options = {"host": receiver.host, "port": receiver.port, "flush_interval": 0.01}
    metrics = make_metrics(**options)
    racing = threading.Event()
    racing.set()
    results: list[bool] = []

    def flusher() -> None:
        while racing.is_set():
            metrics.invite_result("inbound", 200)
            results.append(metrics.flush(timeout=None))
        metrics.invite_result("inbound", 200)
        results.append(metrics.flush(timeout=None))

    def race() -> None:
        for _ in range(200):
            if racer == "close":
                metrics.close(timeout=None)
            else:
                metrics.configure(**options)

    flushers = [start(flusher) for _ in range(3)]
    racers = [start(race) for _ in range(2)]
    for thread in racers:
        thread.join(60)
    racing.clear()
    for thread in flushers:
        thread.join(30)
    assert not any(t.is_alive() for t in flushers + racers), "a flush or a racer is stuck"
    assert results
    assert all(results)  # none sat out a timeout
    metrics.flush()
    sent = len(results)
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= sent)
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == sent  # nothing lost, nothing twice


def test_stats_and_configure_race_without_loss(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=0.01)
    per_thread = 5000

    def emit() -> None:
        for i in range(per_thread):
            metrics.dtls_handshake("ok")
            if i % 500 == 0:
                metrics.stats()

    def reconfigure() -> None:
        for _ in range(50):
            metrics.configure(host=receiver.host, port=receiver.port, flush_interval=0.01)

    threads = [start(emit) for _ in range(4)] + [start(reconfigure)]
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL) >= 4 * per_thread)
    assert totals.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="ok") == 4 * per_thread


class CallsBackIn(logging.Handler):
    """A handler that asks the library for stats and a flush: it runs on our flusher thread."""

    def __init__(self, metrics: sm.SipMetrics) -> None:
        super().__init__()
        self.metrics = metrics
        self.calls = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.calls += 1
        self.metrics.stats(timeout=1)
        self.metrics.flush(timeout=1)


def test_a_logging_handler_that_calls_back_in_does_not_deadlock_the_flusher(make_metrics, tmp_path):
    """Item 13: our fault log runs the user's handler on the flusher; it may call flush() or stats()."""
    metrics = make_metrics(socket_path=str(tmp_path / "nobody.sock"), flush_interval=3600)
    handler = CallsBackIn(metrics)
    logger = logging.getLogger("sip_statsd")
    logger.addHandler(handler)
    try:
        metrics.invite_result("inbound", 200)
        assert metrics.flush(timeout=10)  # the fault is logged (on the flusher) during this flush
        metrics.invite_result("inbound", 200)
        assert metrics.flush(timeout=10)  # the flusher still serves
    finally:
        logger.removeHandler(handler)
    assert handler.calls >= 1
    assert metrics.stats().send_errors.get("no_socket", 0) >= 2


def test_configure_racing_flushes_leaves_no_socket_unclosed(tmp_path):
    """No ResourceWarning under -X dev when configure() races flushes."""
    with Receiver() as receiver:
        script = textwrap.dedent(f"""
            import threading, sip_statsd
            options = dict(host="{receiver.host}", port={receiver.port}, flush_interval=0.01)
            sip_statsd.configure(**options)
            def flush():
                for _ in range(300):
                    sip_statsd.invite_result("inbound", 200)
                    sip_statsd.flush()
            thread = threading.Thread(target=flush)
            thread.start()
            for i in range(300):
                sip_statsd.configure(**options, backend="statsd" if i % 2 else "datadog")
            thread.join()
            sip_statsd.close()
        """)
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"},
        )
        assert done.returncode == 0, done.stderr
        assert "ResourceWarning" not in done.stderr
        assert "unclosed" not in done.stderr


def test_close_with_no_timeout_returns_while_configure_races(make_metrics, receiver):
    """close(timeout=None) waited for a flusher that a concurrent configure() had kept running."""
    options = {"host": receiver.host, "port": receiver.port, "flush_interval": 0.01}
    metrics = make_metrics(**options)
    racing = threading.Event()
    racing.set()

    def reconfigure() -> None:
        while racing.is_set():
            metrics.configure(**options, backend="statsd")
            metrics.configure(**options)

    racer = start(reconfigure)
    closers = [start(metrics.close, None) for _ in range(50)]
    for closer in closers:
        closer.join(30)
    racing.clear()
    racer.join(30)
    assert not any(t.is_alive() for t in [*closers, racer])
