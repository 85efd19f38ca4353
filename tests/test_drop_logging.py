"""Every dropped input is logged from the flusher, never on the thread that made the call.

A logging handler may be an HTTP call (logging is I/O): the handler here records the
thread it runs on, and would block for good on a caller's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sip_statsd import SipMetrics


class ThreadRecorder(logging.Handler):
    """Notes the thread of every record; on a thread other than the flusher it would block."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.messages: list[str] = []
        self.gate = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        name = threading.current_thread().name
        self.threads.append(name)
        self.messages.append(record.getMessage())
        if name != "sip-statsd-flusher":
            self.gate.wait(0)  # a real HTTPHandler would hold the caller here


@pytest.fixture
def handler() -> Iterator[ThreadRecorder]:
    recorder = ThreadRecorder()
    logger = logging.getLogger("sip_statsd")
    logger.addHandler(recorder)
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)
        recorder.gate.set()


def test_every_kind_of_drop_is_logged_on_the_flusher(handler):
    metrics = SipMetrics(backend="memory", flush_interval=3600)
    try:
        small = metrics.distribution("drops_small_ms", max_samples=1)
        level = metrics.gauge("drops_level")
        count = metrics.counter("drops_total", {"side": ("a", "b")})
        metrics.observe_call_qos(loss_fraction=7)  # invalid number
        small.observe(1.0)
        small.observe(2.0)  # past the cap: sampled (a reservoir), not dropped
        level.set(float("nan"))
        count.inc(side="c")  # unknown value
        count.inc(-1, side="a")
        metrics.invite_result("sideways", 200)
        metrics.request_result("inbound", "INVITE", 200)
        assert handler.threads == []  # nothing logged yet: the calls returned without logging
        assert metrics.flush(timeout=10)
        assert handler.threads
        assert set(handler.threads) == {"sip-statsd-flusher"}
        text = "\n".join(handler.messages)
        for shown in ("value=7", "value=nan", "side='c'", "n=-1"):
            assert shown in text
        assert ("drops_small_ms", "sample_overflow") not in metrics.stats().dropped_inputs
    finally:
        metrics.close(timeout=10)


def test_decimal_samples_are_taken(handler):
    metrics = SipMetrics(backend="memory", flush_interval=3600)
    try:
        from sip_statsd.testing import capture_metrics

        with capture_metrics(metrics=metrics) as captured:
            metrics.observe_call_qos(rtt_ms=Decimal("20.5"), mos_estimate=Decimal("4.1"))
            assert captured.samples("sip_call_rtt_ms") == [20.5]
            assert captured.samples("sip_call_mos_estimate") == [4.1]
    finally:
        metrics.close(timeout=10)
