"""Fork and multiprocessing: a child delivers what it counted, the parent neither loses nor repeats.

Each case runs in its own interpreter (the test process has a receiver thread, which would
make every fork here a fork with threads), against a real loopback receiver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def run(script: str, receiver: Receiver, tmp_path: Path, *args: str, timeout: float = 120) -> None:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    env = {
        **os.environ,
        "SIP_STATSD_HOST": receiver.host,
        "SIP_STATSD_PORT": str(receiver.port),
        "SIP_STATSD_FLUSH_INTERVAL": "3600",  # only explicit and exit flushes deliver
        "DD_ORIGIN_DETECTION_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, str(path), *args], env=env, timeout=timeout, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


FORKS = [0, 1, 2, 5, 10, 20, 35, 50]  # ms after the first emit, while the first send is under way


def test_fork_during_the_first_send_leaves_the_child_a_working_flusher(tmp_path):
    """Item 1: the child of a fork taken while our flusher makes its client must deliver."""
    script = f"""
        import os, threading, time, sip_statsd
        other = threading.Event()
        threading.Thread(target=other.wait, daemon=True).start()  # a process with another thread
        pids = []
        for delay_ms in {FORKS}:
            sip_statsd.invite_result("inbound", 200)
            sip_statsd.flush(timeout=0)  # the flusher starts sending now
            time.sleep(delay_ms / 1000)  # fork at this point of the send
            pid = os.fork()
            if pid == 0:
                for _ in range(1000):
                    sip_statsd.bye("outbound", "local", "normal")
                os._exit(0 if sip_statsd.flush(timeout=20) else 3)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        assert codes == [0] * len(pids), codes
        assert sip_statsd.flush(timeout=20)
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1000 * len(FORKS), timeout=30)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1000 * len(FORKS)
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == len(FORKS)


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 12),
    reason="the fork warning exists from 3.12; 3.13 counts threads after the fork hooks (see _process)",
)
def test_forks_do_not_warn_about_threads(tmp_path):
    """Item 2: the flusher is stopped before a fork and started again after Python's thread count."""
    script = """
        import os, warnings, sip_statsd
        warnings.simplefilter("error")  # "This process is multi-threaded, use of fork() ..." fails the script
        sip_statsd.configure(host=os.environ["SIP_STATSD_HOST"], port=int(os.environ["SIP_STATSD_PORT"]),
                             flush_interval=0.01)  # a flusher that is busy often
        for i in range(60):
            for _ in range(20):
                sip_statsd.invite_result("inbound", 200)
            if i % 3 == 0:
                sip_statsd.flush(timeout=0)
            pid = os.fork()
            if pid == 0:
                sip_statsd.invite_result("outbound", 200)
                os._exit(0 if sip_statsd.flush(timeout=20) else 3)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert sip_statsd.flush(timeout=20)
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 1260)
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="inbound") == 1200
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="outbound") == 60


def test_a_fork_while_another_thread_increments_by_n_never_hangs_the_child(tmp_path):
    """inc(n) folds under a lock; a child must never inherit it held (it hung in the at-fork hook)."""
    script = """
        import os, threading, time, sip_statsd
        series = sip_statsd.SipMetrics(backend="off").counter("bulk_total").series()
        stop = threading.Event()
        def work():
            while not stop.is_set():
                series.inc(3)
        threading.Thread(target=work, daemon=True).start()
        hung = 0
        for _ in range(150):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            deadline = time.monotonic() + 5
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    hung += 1
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.001)  # polling a child process, not waiting for a thread
        stop.set()
        assert hung == 0, f"{hung} children hung"
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)


def test_a_fork_from_a_signal_handler_that_interrupts_a_fold_does_not_hang(tmp_path):
    """A prefork server forks from a signal handler; the handler may interrupt inc(n)'s fold."""
    script = """
        import os, signal, sip_statsd
        series = sip_statsd.SipMetrics(backend="off").counter("bulk_total").series()
        children = []
        def on_alarm(signum, frame):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            children.append(pid)
            # Armed again once this fork is done: on a loaded machine a fork can take longer
            # than the period, and handlers nested in handlers end in a RecursionError.
            signal.setitimer(signal.ITIMER_REAL, 0.02)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        while len(children) < 60:
            series.inc(7)  # folds under a lock every 1,024 calls
        signal.setitimer(signal.ITIMER_REAL, 0)
        for pid in children:
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path, timeout=60)


def test_a_fork_waits_for_stuck_flushers_together_and_briefly(tmp_path):
    """Flushers stuck in a hung resolver hold a fork at most FORK_JOIN_TIMEOUT in all, not per recorder."""
    script = """
        import os, socket, threading, time, sip_statsd
        from sip_statsd._core.flusher import FORK_JOIN_TIMEOUT
        real, entered = socket.getaddrinfo, threading.Semaphore(0)
        def hung(host, *args, **kwargs):
            if host == "agent.hang":
                entered.release()
                threading.Event().wait()  # never answers
            return real(host, *args, **kwargs)
        socket.getaddrinfo = hung
        made = [sip_statsd.SipMetrics(host="agent.hang", port=8125) for _ in range(4)]
        for _ in made:
            assert entered.acquire(timeout=10)  # every flusher is in the resolver
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        took = time.monotonic() - start
        os.waitpid(pid, 0)
        assert took < 2 * FORK_JOIN_TIMEOUT, took
        os._exit(0)  # the stuck flushers would hold the exit for its budget: not what is tested here
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)


MULTIPROCESSING = """
    import sys

    if sys.argv[3] == "library-first":  # multiprocessing imported after the library: watched at the first fork
        import sip_statsd
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import sip_statsd


    def work(n):
        for _ in range(n):
            sip_statsd.transaction_timeout("REGISTER")
        return n  # a normal return: the child's last interval must still arrive


    if __name__ == "__main__":
        method, kind = sys.argv[1], sys.argv[2]
        ctx = multiprocessing.get_context(method)
        if kind == "process":
            children = [ctx.Process(target=work, args=(1500,)) for _ in range(4)]
            for child in children:
                child.start()
            for child in children:
                child.join()
                assert child.exitcode == 0, child.exitcode
        elif kind == "pool":
            pool = ctx.Pool(3)
            assert sum(pool.map(work, [750] * 8)) == 6000
            pool.close()
            pool.join()
        else:
            with ProcessPoolExecutor(3, mp_context=ctx) as executor:
                assert sum(executor.map(work, [750] * 8)) == 6000
        sip_statsd.transaction_timeout("BYE")  # the parent's own, after its children
"""


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("fork", "process"),
        ("forkserver", "process"),
        ("spawn", "process"),
        ("fork", "pool"),
        ("forkserver", "pool"),
        ("fork", "executor"),
        ("spawn", "executor"),
    ],
)
@pytest.mark.parametrize("order", ["multiprocessing-first", "library-first"])
def test_multiprocessing_children_deliver_everything_they_counted(method, kind, order, tmp_path):
    """Item 3: multiprocessing ends its children with os._exit, after its own finalizers."""
    with Receiver() as receiver:
        run(MULTIPROCESSING, receiver, tmp_path, method, kind, order)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL) >= 6001, timeout=30)
        assert totals.count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, method="REGISTER") == 6000
        assert totals.count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, method="BYE") == 1


def test_a_child_that_exits_normally_does_not_resend_the_parents_counts(tmp_path):
    script = """
        import os, sip_statsd
        for _ in range(5):
            sip_statsd.voice_attach("cascaded", True)
        pid = os.fork()
        if pid == 0:
            sip_statsd.voice_attach("realtime", True)
            raise SystemExit(0)  # normal exit: atexit flushes the child's own counts
        os.waitpid(pid, 0)
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_VOICE_ATTACH_TOTAL) >= 6)
        assert totals.count(sm.METRIC_VOICE_ATTACH_TOTAL, mode="cascaded") == 5
        assert totals.count(sm.METRIC_VOICE_ATTACH_TOTAL, mode="realtime") == 1


def test_configure_just_before_a_fork_holds_in_the_child(tmp_path):
    """A configure() the flusher had not yet applied when the process forked still applies in the child."""
    script = """
        import os, sys, sip_statsd
        host, port = sys.argv[1], int(sys.argv[2])
        sip_statsd.configure(backend="off")
        sip_statsd.configure(host=host, port=port, flush_interval=3600)
        pid = os.fork()  # at once: the flusher may not have switched yet
        if pid == 0:
            sip_statsd.stir_verify("verified")
            os._exit(0 if sip_statsd.flush(timeout=20) else 3)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path, receiver.host, str(receiver.port))
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_STIR_VERIFY_TOTAL) >= 1)
        assert totals.count(sm.METRIC_STIR_VERIFY_TOTAL, result="verified") == 1
