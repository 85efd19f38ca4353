"""Host delivery's partial take: `host_tick(True, metrics)` sends only the families named, at once.

Every case checks, at a real loopback receiver, that each series arrives exactly as often as
an independent count kept here says: nothing lost, nothing sent twice, whatever the order of
partial ticks, full flushes, configure() calls, forks and threads emitting meanwhile.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
from collections import Counter as Tally
from pathlib import Path

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver, Totals

INVITE = (sm.METRIC_INVITE_RESPONSE_TOTAL, sm.METRIC_INVITE_RESULT_TOTAL, sm.METRIC_SESSION_REQUEST_DELAY_MS)
BYE = (sm.METRIC_BYE_TOTAL,)
REQUEST = (sm.METRIC_REQUEST_RESULT_TOTAL,)
DIALOG = (sm.METRIC_ACTIVE_CALLS, sm.METRIC_CALL_DURATION_S)
CODES = (200, 404, 486, 503, 603)


def host_metrics(receiver: Receiver, **options: object) -> sm.SipMetrics:
    options.setdefault("flush_interval", 3600)  # only ticks, flush() and close() send
    return sm.SipMetrics(delivery="host", host=receiver.host, port=receiver.port, **options)  # type: ignore[arg-type]


def settled(receiver: Receiver, want: Tally[str]) -> Totals:
    """The receiver's totals once every count in `want` has arrived (or 10 s)."""
    return receiver.wait_for(lambda t: all(t.count(k) >= n for k, n in want.items()), timeout=10)


def test_a_partial_tick_sends_the_named_families_at_once_and_the_rest_at_the_next_full_flush(receiver):
    metrics = host_metrics(receiver)
    try:
        metrics.host_tick(True)
        before = receiver.totals().datagrams
        metrics.invite_result("inbound", 486)
        metrics.bye("inbound", "remote", "user-hangup")
        metrics.request_result("inbound", "OPTIONS", 200)
        metrics.invite_result("inbound", 42)  # dropped: counted with the invite families
        metrics.host_tick(True, INVITE)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 1, timeout=10)
        assert totals.datagrams == before + 1
        assert totals.count(sm.METRIC_INVITE_RESPONSE_TOTAL, code="486") == 1
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="4xx") == 1
        assert totals.count(sm.METRIC_DROPPED_INPUTS_TOTAL, metric=sm.METRIC_INVITE_RESULT_TOTAL) == 1
        assert totals.count(sm.METRIC_BYE_TOTAL) == 0  # not named: waits for a full flush
        assert totals.count(sm.METRIC_REQUEST_RESULT_TOTAL) == 0
        assert metrics.flush(timeout=10)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_REQUEST_RESULT_TOTAL) >= 1, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1  # not sent again
        assert totals.count(sm.METRIC_DROPPED_INPUTS_TOTAL) == 1
    finally:
        metrics.close()


def test_a_partial_tick_naming_an_unknown_metric_flushes_everything(receiver):
    metrics = host_metrics(receiver)
    try:
        metrics.host_tick(True)
        metrics.bye("inbound", "remote", "user-hangup")
        metrics.host_tick(True, ("no_such_metric",))
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1
    finally:
        metrics.close()


def test_a_partial_tick_once_flush_interval_has_passed_flushes_everything(receiver):
    metrics = host_metrics(receiver)
    try:
        metrics.bye("inbound", "remote", "user-hangup")
        metrics.recorder.host.make_due()  # flush_interval has passed (no wall clock in the test)
        metrics.invite_result("inbound", 200)
        metrics.host_tick(True, INVITE)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1
    finally:
        metrics.close()


def test_partial_ticks_full_flushes_and_configure_interleaved_lose_and_double_nothing(receiver):
    """Seeded random order of emits, partial ticks, full flushes and configure(); one emitter thread too."""
    rng = random.Random(16)
    want: Tally[str] = Tally()
    metrics = host_metrics(receiver)
    stop = threading.Event()
    background = [0]

    def emit_meanwhile() -> None:
        while not stop.is_set() and background[0] < 50_000:
            metrics.invite_result("outbound", 200)
            background[0] += 1

    thread = threading.Thread(target=emit_meanwhile)
    thread.start()
    try:
        for step in range(3000):
            roll = rng.random()
            if roll < 0.3:
                code = rng.choice(CODES)
                metrics.invite_result("inbound", code)
                want[f"{sm.METRIC_INVITE_RESPONSE_TOTAL}{{direction:inbound,code:{code}}}"] += 1
            elif roll < 0.4:
                metrics.bye("inbound", "remote", "user-hangup")
                want[sm.METRIC_BYE_TOTAL] += 1
            elif roll < 0.5:
                metrics.request_result("inbound", "OPTIONS", rng.choice(CODES))
                want[sm.METRIC_REQUEST_RESULT_TOTAL] += 1
            elif roll < 0.55:
                metrics.invite_result("inbound", 1000)  # dropped
                want[sm.METRIC_DROPPED_INPUTS_TOTAL] += 1
            elif roll < 0.6:
                metrics.call_started("inbound")
                metrics.call_ended("inbound", 1.5)
                want["duration"] += 1
            elif roll < 0.9:
                metrics.host_tick(True, rng.choice((INVITE, BYE, REQUEST, DIALOG, INVITE + BYE)))
            elif roll < 0.97:
                assert metrics.flush(timeout=10)
            else:
                metrics.configure(
                    delivery="host", host=receiver.host, port=receiver.port, flush_interval=3000 + step % 500
                )
        stop.set()
        thread.join()
        assert metrics.flush(timeout=10)
        totals = receiver.wait_for(
            lambda t: (
                t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= want_invites(want) + background[0]
                and t.count(sm.METRIC_BYE_TOTAL) >= want[sm.METRIC_BYE_TOTAL]
                and t.count(sm.METRIC_REQUEST_RESULT_TOTAL) >= want[sm.METRIC_REQUEST_RESULT_TOTAL]
            ),
            timeout=10,
        )
    finally:
        stop.set()
        thread.join()
        metrics.close()
    for code in CODES:
        key = f"{sm.METRIC_INVITE_RESPONSE_TOTAL}{{direction:inbound,code:{code}}}"
        assert totals.count(sm.METRIC_INVITE_RESPONSE_TOTAL, direction="inbound", code=str(code)) == want[key]
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="inbound") == want_invites(want)
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="outbound") == background[0]
    assert totals.count(sm.METRIC_INVITE_RESPONSE_TOTAL, direction="outbound") == background[0]
    assert totals.count(sm.METRIC_BYE_TOTAL) == want[sm.METRIC_BYE_TOTAL]
    assert totals.count(sm.METRIC_REQUEST_RESULT_TOTAL) == want[sm.METRIC_REQUEST_RESULT_TOTAL]
    assert totals.count(sm.METRIC_DROPPED_INPUTS_TOTAL) == want[sm.METRIC_DROPPED_INPUTS_TOTAL]
    assert len(totals.sample_list(sm.METRIC_CALL_DURATION_S)) == want["duration"]
    assert totals.gauge(sm.METRIC_ACTIVE_CALLS, direction="inbound") == 0


def want_invites(want: Tally[str]) -> int:
    return sum(n for key, n in want.items() if key.startswith(sm.METRIC_INVITE_RESPONSE_TOTAL))


def test_inc_n_is_taken_by_a_partial_tick_once(receiver):
    metrics = host_metrics(receiver)
    calls = metrics.counter("myapp_calls_total", labels={"outcome": ("ok", "failed")})
    try:
        ok = calls.series(outcome="ok")
        for _ in range(3000):  # past the queue's fold point
            ok.inc(5)
        metrics.host_tick(True, ("myapp_calls_total",))
        metrics.host_tick(True, ("myapp_calls_total",))
        assert metrics.flush(timeout=10)
        totals = receiver.wait_for(lambda t: t.count("myapp_calls_total") >= 15000, timeout=10)
        assert totals.count("myapp_calls_total", outcome="ok") == 15000
    finally:
        metrics.close()


FORK_SCRIPT = """
    import ctypes, os, sys
    import sip_statsd as sm
    _libc = ctypes.PyDLL(None)
    INVITE = (sm.METRIC_INVITE_RESPONSE_TOTAL, sm.METRIC_INVITE_RESULT_TOTAL)
    sm.configure(delivery="host", host=sys.argv[1], port=int(sys.argv[2]), flush_interval=3600)
    for _ in range(100):
        sm.invite_result("inbound", 200)
    sm.host_tick(True, INVITE)
    pids = []
    for python_fork in (True, False):
        sm.invite_result("inbound", 200)  # not yet sent at the fork: the parent's alone
        if not python_fork:
            # A child forked from C without the hooks cannot tell the parent's unsent counts from
            # its own (documented): the parent sends them first.
            sm.host_tick(True)
        pid = os.fork() if python_fork else _libc.fork()  # with Python's fork hooks, and from C without
        if pid == 0:
            for _ in range(10):
                sm.invite_result("inbound", 486)
                sm.host_tick(True, INVITE)
            sm.close()
            os._exit(0)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0, 0], codes
    sm.host_tick(True, INVITE)
    sm.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_partial_ticks_across_forks_send_the_parents_counts_once_and_each_childs_own(tmp_path: Path):
    """A child forked with or without Python's hooks: it sends what it recorded, never the parent's."""
    script = tmp_path / "fork.py"
    script.write_text(textwrap.dedent(FORK_SCRIPT))
    with Receiver() as receiver:
        env = {**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"}
        done = subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", str(script), receiver.host, str(receiver.port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 122, timeout=10)
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx") == 102
    assert totals.count(sm.METRIC_INVITE_RESPONSE_TOTAL, code="486") == 20
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="4xx") == 20
