"""Switching delivery at run time: one sender at a time, and no flush() says True for what has not left."""

from __future__ import annotations

import logging
import threading

import sip_statsd as sm

DEADLINE = 30.0


class _BlockOnce(logging.Handler):
    """A logging handler that blocks the first record (the flusher's) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(DEADLINE)


def test_a_switch_to_host_delivery_waits_for_the_flushers_send_before_saying_true(receiver):
    """The flusher is held mid-flush (a blocking handler) when delivery becomes "host": the host's
    flush() must not report success for the values that flusher still holds, nor send beside it."""
    handler = _BlockOnce()
    logger = logging.getLogger("sip_statsd")
    logger.addHandler(handler)
    metrics = sm.SipMetrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    try:
        for _ in range(10):
            metrics.invite_result("inbound", 200)
        metrics.invite_result("sideways", 200)  # a dropped input: the flusher logs it, and blocks there
        metrics.flush(0)  # asked, not awaited
        assert handler.entered.wait(DEADLINE)
        metrics.configure(host=receiver.host, port=receiver.port, flush_interval=3600, delivery="host")
        metrics.invite_result("inbound", 200)
        if metrics.flush(0.2):  # True only if the 10 the held flusher took have left too
            totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 11, timeout=2)
            assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 11
        handler.release.set()
        assert metrics.flush(DEADLINE)  # waits for the flusher to end its send, then sends here
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 11, timeout=DEADLINE)
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 11
    finally:
        handler.release.set()
        logger.removeHandler(handler)
        metrics.close()
