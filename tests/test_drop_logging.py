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


FIRST_VALUE = """
import logging, sys
import sip_statsd

logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
host, port = sys.argv[1], int(sys.argv[2])
metrics = sip_statsd.SipMetrics(host=host, port=port)
metrics.invite_result("inbund", 200)   # a misspelt direction, through the helpers' fast path
metrics.invite_result("inbund", 486)
metrics.bye("inbound", "remote", "hangup")
metrics.session_timer_refresh("okay")
metrics.call_started("sideways")
metrics.request_result("inbound", "REGISTER", 200)
assert metrics.flush()
metrics.invite_result("outbund", 200)  # after the first was logged: counted, not logged again
assert metrics.close()
"""


def test_the_drop_log_names_the_first_bad_value_of_the_sip_helpers(tmp_path):
    """Issue 25 item 6: the fast path used to count the drop and lose the value the docs promise."""
    import subprocess
    import sys

    from sip_statsd._wire.receiver import Receiver

    with Receiver() as receiver:
        done = subprocess.run(
            [sys.executable, "-c", FIRST_VALUE, receiver.host, str(receiver.port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        totals = receiver.wait_for(lambda t: t.count("sip_statsd_dropped_inputs_total") >= 6)
    log = done.stderr
    assert "dropped 2 input(s) to sip_invite_result_total (unknown_value), the first direction='inbund'" in log
    assert "dropped 1 input(s) to sip_bye_total (unknown_value), the first reason_class='hangup'" in log
    assert "dropped 1 input(s) to sip_session_timer_refresh_total (unknown_value), the first result='okay'" in log
    assert "dropped 1 input(s) to sip_active_calls (unknown_value), the first direction='sideways'" in log
    assert log.count("sip_invite_result_total (unknown_value)") == 1, log
    dropped = "sip_statsd_dropped_inputs_total"
    assert totals.count(dropped, metric="sip_invite_result_total", reason="unknown_value") == 3
    assert totals.count(dropped, metric="sip_bye_total") == 1
    assert totals.count("sip_request_result_total", method="REGISTER") == 1
