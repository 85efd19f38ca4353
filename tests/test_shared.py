"""Shared delivery: prefork children count in one shared mapping, one sender reads them all.

Each case runs in its own interpreter that configures `delivery="shared"`, forks real
children and sends to a real loopback receiver started here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sip_statsd._wire.receiver import Receiver

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PRELUDE = """
import mmap, os, signal, sys, time
import sip_statsd
sip_statsd.configure(host="127.0.0.1", port=int(sys.argv[1]), delivery="shared", flush_interval=3600)

def wait_all(pids):
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert all(code in (0, -9) for code in codes), codes
"""


def run(script: str, receiver: Receiver, tmp_path: Path, *, prefix: list[str] | None = None) -> str:
    path = tmp_path / "script.py"
    path.write_text(PRELUDE + textwrap.dedent(script))
    env = {**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"}
    done = subprocess.run(
        [*(prefix or []), sys.executable, str(path), str(receiver.port)],
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def test_every_child_counts_arrive_once_from_one_sender(receiver, tmp_path):
    """Counters exact, a call started in one child and ended in another nets to 0, samples all there."""
    run(
        """
        sip_statsd.invite_result("inbound", 200)  # the parent's own, before the fork
        pids = []
        for child in range(6):
            pid = os.fork()
            if pid == 0:
                for _ in range(1000):
                    sip_statsd.invite_result("inbound", 486)
                if child % 2 == 0:
                    for _ in range(50):
                        sip_statsd.call_started("inbound")
                else:
                    for _ in range(50):
                        sip_statsd.call_ended("inbound", 2.5)
                sip_statsd.observe_setup_delay("inbound", 100.0 + child, True)
                os._exit(0)  # no flush: the parent's sender reads the child's slot
            pids.append(pid)
        wait_all(pids)
        assert sip_statsd.flush(10)
        assert sip_statsd.flush(10)  # a second read sends no count again
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total", code_class="4xx") >= 6000)
    assert totals.count("sip_invite_result_total", code_class="4xx") == 6000
    assert totals.count("sip_invite_response_total", code="486") == 6000
    assert totals.count("sip_invite_result_total", code_class="2xx") == 1
    assert [k for k in totals.gauges if k.startswith("sip_active_calls")] == [
        "sip_active_calls{direction:inbound}"
    ]  # one series for the host
    assert totals.gauge("sip_active_calls", direction="inbound") == 0
    assert sorted(totals.sample_list("sip_session_request_delay_ms")) == [100.0 + c for c in range(6)]
    assert len(totals.sample_list("sip_call_duration_s")) == 150


def test_a_worker_killed_mid_traffic_loses_nothing_it_wrote_while_the_sender_reads(receiver, tmp_path):
    """SIGKILL a writer while another process reads: what arrives is what it wrote, never twice."""
    out = run(
        """
        progress = mmap.mmap(-1, 8, flags=mmap.MAP_SHARED)  # the test's truth: the worker's count after each emit
        done = memoryview(progress).cast("q")
        pid = os.fork()
        if pid == 0:
            i = 0
            while True:
                sip_statsd.bye("inbound", "remote", "normal")
                i += 1
                done[0] = i
        sender = os.fork()
        if sender == 0:  # another process reads and sends while the worker writes
            while done[0] < 200_000:
                sip_statsd.flush(10)
            os._exit(0)
        wait_all([sender])
        os.kill(pid, signal.SIGKILL)
        wait_all([pid])
        assert sip_statsd.flush(10)
        print(done[0])
        """,
        receiver,
        tmp_path,
    )
    written = int(out.split()[-1])
    totals = receiver.wait_for(lambda t: t.count("sip_bye_total") >= written)
    sent = totals.count("sip_bye_total", direction="inbound", by="remote", reason_class="normal")
    assert written <= sent <= written + 1  # killed between the emit and the test's own count at most
    assert totals.malformed_count == 0


def test_a_sender_ten_times_late_sends_every_count_and_weighs_every_sample(receiver, tmp_path):
    """Rings overflow between two reads: kept samples plus those sampled away equal those observed."""
    run(
        """
        from sip_statsd._core.shared import RING
        pids = []
        for child in range(3):
            pid = os.fork()
            if pid == 0:
                for round in range(10):  # ten intervals' worth, nobody reading
                    for _ in range(RING):
                        sip_statsd.observe_setup_delay("outbound", 5.0, False)
                        sip_statsd.request_result("outbound", "OPTIONS", 200)
                os._exit(0)
            pids.append(pid)
        wait_all(pids)
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    from sip_statsd._core.shared import RING

    observed = 3 * 10 * RING
    totals = receiver.wait_for(lambda t: t.count("sip_request_result_total") >= observed)
    assert totals.count("sip_request_result_total", method="OPTIONS", code_class="2xx") == observed
    kept = len(totals.sample_list("sip_session_request_delay_ms", direction="outbound"))
    away = totals.count("sip_statsd_sampled_away_total", metric="sip_session_request_delay_ms")
    assert kept == 3 * RING
    assert kept + away == observed


def test_a_metric_defined_in_a_child_after_the_fork_is_refused(receiver, tmp_path):
    run(
        """
        pid = os.fork()
        if pid == 0:
            try:
                sip_statsd.Counter("late_total", labels={})
            except ValueError as error:
                os._exit(0 if "before the host forks" in str(error) else 2)
            os._exit(1)
        wait_all([pid])
        """,
        receiver,
        tmp_path,
    )


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_emit_path_of_a_forked_worker_makes_no_syscall(receiver, tmp_path):
    """strace -f: between two markers, a worker's 100,000 emits make no system call at all."""
    log = tmp_path / "strace.log"
    run(
        """
        pid = os.fork()
        if pid == 0:
            os.write(2, b"")  # claimed already (at the fork hook); warm every path once
            sip_statsd.invite_result("inbound", 200); sip_statsd.call_started("inbound")
            sip_statsd.call_ended("inbound", 1.0); sip_statsd.observe_setup_delay("inbound", 3.0, True)
            os.getppid()  # marker: start
            for _ in range(25_000):
                sip_statsd.invite_result("inbound", 200)
                sip_statsd.call_started("inbound")
                sip_statsd.call_ended("inbound", 1.0)
                sip_statsd.observe_setup_delay("inbound", 3.0, True)
            os.getppid()  # marker: end
            os._exit(0)
        wait_all([pid])
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
        prefix=["strace", "-f", "-qq", "-o", str(log)],
    )
    lines = log.read_text().splitlines()
    worker = next(line for line in lines if "getppid()" in line).split()[0]
    mine = [line.split(None, 1)[1] for line in lines if line.split()[0] == worker]
    start = next(i for i, call in enumerate(mine) if call.startswith("getppid("))
    end = next(i for i, call in enumerate(mine) if i > start and call.startswith("getppid("))
    assert mine[start + 1 : end] == []
    totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= 25_001)
    assert totals.count("sip_invite_result_total") == 25_001


def test_every_helper_made_before_configure_counts_in_the_shared_mapping(receiver, tmp_path):
    """A worker that never flushes: whatever arrives went through its slot, helper by helper."""
    run(
        """
        pid = os.fork()
        if pid == 0:
            sip_statsd.invite_result("inbound", 180)
            sip_statsd.bye("inbound", "remote", "normal")
            sip_statsd.bye_outbound("local", "timer-expired")
            sip_statsd.transaction_timeout("OPTIONS")
            sip_statsd.transaction_timeout("NOTAMETHOD")
            sip_statsd.session_timer_refresh("ok")
            sip_statsd.dtls_handshake("fail")
            sip_statsd.stir_verify("verified")
            sip_statsd.voice_attach("realtime", True)
            sip_statsd.voice_attach_mode_fallback("pipeline", "realtime")
            sip_statsd.voice_attach_native(False)
            sip_statsd.observe_call_qos(rtt_ms=40.0, jitter_ms=5.0, loss_fraction=0.01, mos_estimate=4.1)
            sip_statsd.request_result("outbound", "REGISTER", 401)
            sip_statsd.call_started("outbound")
            sip_statsd.observe_setup_delay("outbound", 7.0, False)
            sip_statsd.bye("sideways", "remote", "normal")  # dropped: counted in the drop counter
            os._exit(0)
        wait_all([pid])
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    expected = {
        "sip_invite_result_total": 1,
        "sip_invite_response_total": 1,
        "sip_bye_total": 2,
        "sip_transaction_timeout_total": 2,
        "sip_session_timer_refresh_total": 1,
        "sip_dtls_handshake_total": 1,
        "sip_stir_verify_total": 1,
        "sip_voice_attach_total": 1,
        "sip_voice_attach_mode_fallback_total": 1,
        "sip_voice_attach_native_total": 1,
        "sip_call_quality_total": 1,
        "sip_request_result_total": 1,
        "sip_statsd_dropped_inputs_total": 1,
    }
    totals = receiver.wait_for(lambda t: all(t.count(name) >= n for name, n in expected.items()))
    assert {name: totals.count(name) for name in expected} == expected
    assert totals.gauge("sip_active_calls", direction="outbound") == 1
    for name in ("sip_call_rtt_ms", "sip_call_jitter_ms", "sip_call_loss_fraction", "sip_call_mos_estimate"):
        assert len(totals.sample_list(name)) == 1, name
    assert totals.sample_list("sip_session_request_delay_ms", result="failure") == [7.0]


def test_threads_of_one_worker_lose_no_count(receiver, tmp_path):
    """Eight threads in one forked worker, 20,000 emits each: the slot's cells are exact."""
    run(
        """
        import threading
        pid = os.fork()
        if pid == 0:
            def emit():
                for _ in range(20_000):
                    sip_statsd.invite_result("outbound", 200)
                    sip_statsd.call_started("outbound")
            threads = [threading.Thread(target=emit) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            os._exit(0)
        wait_all([pid])
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= 160_000)
    assert totals.count("sip_invite_result_total", direction="outbound", code_class="2xx") == 160_000
    assert totals.gauge("sip_active_calls", direction="outbound") == 160_000


def test_an_instance_made_with_shared_delivery_counts_its_workers(receiver, tmp_path):
    """SipMetrics(delivery="shared"): its helpers are made on the shared cells; the module's are untouched."""
    run(
        """
        metrics = sip_statsd.SipMetrics(delivery="shared", host="127.0.0.1", port=int(sys.argv[1]))
        pids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                for _ in range(100):
                    metrics.stir_verify("verified")
                os._exit(0)
            pids.append(pid)
        wait_all(pids)
        assert metrics.flush(10)
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_stir_verify_total") >= 300)
    assert totals.count("sip_stir_verify_total", result="verified") == 300


def test_a_host_that_replaces_its_workers_never_runs_out_of_slots(receiver, tmp_path):
    """Three hundred short-lived workers, ten at a time (128 slots): each gets a slot of its own
    (a dead worker's, its counts kept), and every count arrives once."""
    run(
        """
        shared = sip_statsd.default().recorder.shared.mapping
        for batch in range(30):
            pids = []
            for _ in range(10):
                pid = os.fork()
                if pid == 0:
                    for _ in range(2000):
                        sip_statsd.dtls_handshake("ok")
                    os._exit(3 if shared.lost_claims else 0)  # 3: it found no slot of its own
                pids.append(pid)
            codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
            assert codes == [0] * 10, (batch, codes)
            assert sip_statsd.flush(10)  # the sender hands the dead workers' slots on
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_dtls_handshake_total") >= 600_000)
    assert totals.count("sip_dtls_handshake_total", result="ok") == 600_000
