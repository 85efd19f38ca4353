"""Shared delivery under the probe's faults: each case in its own interpreter, real forks, a real receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sip_statsd._wire.receiver import Receiver

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PRELUDE = """
import os, sys, threading, time
import sip_statsd
PORT = int(sys.argv[1])

def wait_all(pids):
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert all(code == 0 for code in codes), codes
"""


def run(script: str, receiver: Receiver, tmp_path: Path) -> str:
    path = tmp_path / "script.py"
    path.write_text(PRELUDE + textwrap.dedent(script))
    env = {**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, str(path), str(receiver.port)],
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


def test_emits_of_threads_while_configure_switches_to_shared_all_arrive(receiver, tmp_path):
    """What threads count between configure()'s read and the rebind is read again, not lost."""
    out = run(
        """
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="thread", flush_interval=3600)
        stop = False
        done = [0] * 4
        def emit(k):
            while not stop:
                sip_statsd.bye("inbound", "remote", "normal")
                done[k] += 1
        threads = [threading.Thread(target=emit, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        time.sleep(0.2)
        stop = True
        for t in threads:
            t.join()
        assert sip_statsd.flush(10)
        print(sum(done))
        """,
        receiver,
        tmp_path,
    )
    truth = int(out.split()[-1])
    totals = receiver.wait_for(lambda t: t.count("sip_bye_total") >= truth)
    assert totals.count("sip_bye_total") == truth


def test_a_counter_past_2_63_wraps_and_the_others_still_go_out(receiver, tmp_path):
    run(
        """
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        big = sip_statsd.Counter("probe_big_total", labels={}).series()
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                for _ in range(600):
                    big.inc(2**53)
                os._exit(0)
            pids.append(pid)
        wait_all(pids)
        assert sip_statsd.flush(10)
        for _ in range(1000):
            sip_statsd.invite_result("inbound", 200)
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total", code_class="2xx") >= 1000)
    assert totals.count("sip_invite_result_total", code_class="2xx") == 1000
    assert totals.count("probe_big_total") == float(2 * 600 * 2**53)


def test_a_gauge_whose_sum_is_not_finite_is_a_counted_drop(receiver, tmp_path):
    run(
        """
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        level = sip_statsd.Gauge("probe_huge_level", labels={}).series()
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                level.inc(1e308)
                os._exit(0)
            pids.append(pid)
        wait_all(pids)
        sip_statsd.invite_result("inbound", 200)
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= 1)
    assert totals.gauge("probe_huge_level") is None
    assert totals.count("sip_statsd_dropped_inputs_total", metric="probe_huge_level", reason="invalid_number") >= 1
    assert not totals.malformed


def test_a_family_without_room_after_configure_is_not_defined_at_all(receiver, tmp_path):
    out = run(
        """
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        try:
            sip_statsd.Counter("probe_toobig_total", labels={"a": tuple(f"a{i}" for i in range(600))})
        except ValueError as error:
            print("refused:", error)
        sip_statsd.Counter("probe_toobig_total", labels={}).series().inc()  # the name is free
        small = sip_statsd.Counter("probe_small_total", labels={}).series()  # the room is not used up
        small.inc()
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    assert "no room left" in out
    totals = receiver.wait_for(lambda t: t.count("probe_small_total") >= 1)
    assert totals.count("probe_toobig_total") == 1


def test_a_worker_cannot_take_the_others_counts_by_leaving_shared_delivery(receiver, tmp_path):
    with Receiver() as other:
        out = run(
            f"""
            sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
            pids = []
            for k in range(3):
                pid = os.fork()
                if pid == 0:
                    for _ in range(1000):
                        sip_statsd.bye("inbound", "remote", "normal")
                    if k == 0:
                        try:
                            sip_statsd.configure(host="127.0.0.1", port={other.port}, delivery="thread")
                        except ValueError as error:
                            print("refused:", error, flush=True)
                    os._exit(0)
                pids.append(pid)
            wait_all(pids)
            assert sip_statsd.flush(10)
            """,
            receiver,
            tmp_path,
        )
        assert "refused" in out
        totals = receiver.wait_for(lambda t: t.count("sip_bye_total") >= 3000)
        assert totals.count("sip_bye_total") == 3000
        assert other.totals().count("sip_bye_total") == 0


def test_processes_past_the_slots_are_counted_for_the_agent(receiver, tmp_path):
    """130 live children, 127 free slots: the 3 without one count in the creator's, and say so."""
    run(
        """
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        hold, release = os.pipe()
        pids = []
        for _ in range(130):
            pid = os.fork()
            if pid == 0:
                os.close(release)
                sip_statsd.bye("inbound", "remote", "normal")
                os.read(hold, 1)  # alive until the parent has read every slot
                os._exit(0)
            pids.append(pid)
        time.sleep(1.0)
        assert sip_statsd.flush(10)
        os.close(release)
        wait_all(pids)
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_bye_total") >= 130)
    assert totals.count("sip_bye_total") == 130
    assert totals.count("sip_statsd_shared_lost_claims_total") == 3


def test_configure_shared_is_linear_in_the_series(receiver, tmp_path):
    """40,000 series: configure() took 14 s when each series' place was found with list.index."""
    out = run(
        """
        values = tuple(f"a{i}" for i in range(200)), tuple(f"b{i}" for i in range(10))
        for f in range(20):
            sip_statsd.Counter(f"probe_wide{f}_total", labels={"a": values[0], "b": values[1]})
        start = time.monotonic()
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        print(time.monotonic() - start)
        """,
        receiver,
        tmp_path,
    )
    assert float(out.split()[-1]) < 4.0


def test_slots_with_nothing_new_are_cheap_to_read(receiver, tmp_path):
    """127 slots used by processes gone, 20,000 series: a flush took ~80 ms of CPU reading them all."""
    out = run(
        """
        values = tuple(f"a{i}" for i in range(200)), tuple(f"b{i}" for i in range(10))
        for f in range(10):
            sip_statsd.Counter(f"probe_wide{f}_total", labels={"a": values[0], "b": values[1]})
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        for _ in range(127):
            pid = os.fork()
            if pid == 0:
                sip_statsd.bye("inbound", "remote", "normal")
                os._exit(0)
            wait_all([pid])
        assert sip_statsd.flush(10)
        costs = []
        for _ in range(5):
            sip_statsd.bye("inbound", "remote", "normal")
            start = time.process_time()
            assert sip_statsd.flush(10)
            costs.append(time.process_time() - start)
        print(min(costs))
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_bye_total") >= 132)
    assert totals.count("sip_bye_total") == 132
    assert float(out.split()[-1]) < 0.03


def test_workers_churning_faster_than_the_sender_reads_still_get_slots(receiver, tmp_path):
    """130 short-lived workers with no read between them, then 4 at once: every count arrives."""
    run(
        """
        sip_statsd.configure(host="127.0.0.1", port=PORT, delivery="shared", flush_interval=3600)
        for _ in range(130):
            pid = os.fork()
            if pid == 0:
                sip_statsd.bye("inbound", "remote", "normal")
                os._exit(0)
            wait_all([pid])
        pids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                for _ in range(20000):
                    sip_statsd.invite_result("inbound", 486)
                os._exit(0)
            pids.append(pid)
        wait_all(pids)
        assert sip_statsd.flush(10)
        """,
        receiver,
        tmp_path,
    )
    totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total", code_class="4xx") >= 80000)
    assert totals.count("sip_bye_total") == 130
    assert totals.count("sip_invite_result_total", code_class="4xx") == 80000
    assert totals.count("sip_statsd_shared_lost_claims_total") == 0
