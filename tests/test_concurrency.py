"""Threads, fork and interpreter exit: totals stay exact, nothing is lost or sent twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

import sip_statsd as sm
from sip_statsd.testing import capture_metrics

THREADS = 8
PER_THREAD = 50_000


def test_eight_threads_give_exact_totals(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=0.01)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    barrier = threading.Barrier(THREADS)

    def work(i: int) -> None:
        barrier.wait()
        direction = sm.DIRECTIONS[i % 2]
        for n in range(PER_THREAD):
            metrics.invite_result(direction, 200)
            if n % 100 == 0:
                metrics.observe_call_qos(rtt_ms=float(n + 1))

    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    metrics.flush()
    total = THREADS * PER_THREAD
    totals = receiver.wait_for(
        lambda t: (
            t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= total
            and len(t.sample_list(sm.METRIC_CALL_RTT_MS)) >= THREADS * PER_THREAD // 100
        )
    )
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="inbound") == total // 2
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="outbound") == total // 2
    assert len(totals.sample_list(sm.METRIC_CALL_RTT_MS)) == THREADS * PER_THREAD // 100
    assert totals.datagrams > 1  # the flusher ran while the threads emitted


def test_series_inc_n_from_threads_is_exact(make_metrics):

    metrics = make_metrics(backend="memory", flush_interval=0.01)
    fam = metrics.counter("threaded_total")
    series = fam.series()

    def work() -> None:
        for _ in range(20_000):
            series.inc(3)
            series.inc()

    with capture_metrics(metrics=metrics) as cap:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cap.count("threaded_total") == 4 * 20_000 * 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_parent_and_child_counts_are_exact(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    for _ in range(7):
        metrics.invite_result("inbound", 200)  # recorded before the fork: the parent's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads running
        pid = os.fork()
    if pid == 0:  # child: its own counts, its own flusher
        code = 0
        try:
            for _ in range(3):
                metrics.invite_result("outbound", 486)
            ok = metrics.flush(timeout=5) and metrics.recorder.flusher.schedule.thread is not None
            code = 0 if ok and metrics.recorder.flusher.schedule.thread.is_alive() else 3
        except BaseException:
            code = 4
        finally:
            os._exit(code)
    for _ in range(2):
        metrics.invite_result("inbound", 200)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    metrics.flush()
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 12)
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="inbound") == 9
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="outbound") == 3


@pytest.mark.parametrize("ending", ["return", "sys.exit(0)"])
def test_exit_without_flush_still_sends(receiver, ending):
    script = textwrap.dedent(f"""
        import sys
        import sip_statsd
        sip_statsd.configure(host="{receiver.host}", port={receiver.port}, flush_interval=3600)
        def main():
            for _ in range(41):
                sip_statsd.bye("inbound", "remote", "normal")
            sip_statsd.observe_call_qos(mos_estimate=3.9)
            {ending}
        main()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    totals = receiver.wait_for(lambda t: t.lines >= 2)
    assert totals.count(sm.METRIC_BYE_TOTAL, direction="inbound", by="remote", reason_class="normal") == 41
    assert totals.sample_list(sm.METRIC_CALL_MOS_ESTIMATE) == [3.9]


def test_default_instance_with_no_configure_sends_to_dd_environment(receiver):
    script = "import sip_statsd; sip_statsd.dtls_handshake('ok')"
    env = {**os.environ, "DD_AGENT_HOST": receiver.host, "DD_DOGSTATSD_PORT": str(receiver.port)}
    env.pop("DD_DOGSTATSD_URL", None)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, env=env)
    totals = receiver.wait_for(lambda t: t.lines >= 1)
    assert totals.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="ok") == 1
