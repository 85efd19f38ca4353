"""Hosts that fork from C, fork from a thread, run green threads, or exit in their own order.

Each case runs in its own interpreter against a real loopback receiver (the test process
has a receiver thread). A C-level fork is `fork(2)` called through ctypes with the GIL
held, as uWSGI and Kamailio do, with or without Python's fork hooks around it.
"""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux fork and pidfd_open")

# Hang detectors, not timings: each bounds a case that never ends without the fix.
DEADLINE = 60.0


def script_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SIP_STATSD_HOST": receiver.host,
        "SIP_STATSD_PORT": str(receiver.port),
        "SIP_STATSD_FLUSH_INTERVAL": "3600",  # only explicit and exit flushes deliver
        "DD_ORIGIN_DETECTION_ENABLED": "false",
        **extra,
    }


def run(script: str, receiver: Receiver, tmp_path: Path, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", str(path)],
        env=script_env(receiver),
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


# fork(2) with the GIL held (PyDLL), as a C host calls it; the hooks are Python's own C API.
C_FORK = """
    import ctypes
    _libc = ctypes.PyDLL(None)
    _api = ctypes.pythonapi

    def c_fork(hooks):
        if hooks:
            _api.PyOS_BeforeFork()
        pid = _libc.fork()
        if pid == 0 and hooks:
            _api.PyOS_AfterFork_Child()
        elif pid > 0 and hooks:
            _api.PyOS_AfterFork_Parent()
        return pid
"""


@pytest.mark.parametrize("hooks", [False, True], ids=["no-fork-hooks", "fork-hooks"])
def test_a_child_forked_from_c_delivers_with_or_without_fork_hooks(tmp_path, hooks):
    """Item 3: the child knows it is a child by its pid: fresh cells, flusher and socket."""
    script = (
        C_FORK
        + f"""
    import os, sip_statsd
    sip_statsd.invite_result("inbound", 200)
    assert sip_statsd.flush(timeout=10)  # the flusher runs, and has a socket, before the fork
    pids = []
    for _ in range(3):
        pid = c_fork({hooks})
        if pid == 0:
            for _ in range(20000):
                sip_statsd.bye("outbound", "local", "normal")
            os._exit(0 if sip_statsd.flush(timeout=10) else 3)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0, 0, 0], codes
    sip_statsd.invite_result("inbound", 486)
    assert sip_statsd.flush(timeout=10)
    """
    )
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 60000, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 60000
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx") == 1  # not sent again by a child
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="4xx") == 1


def test_a_fork_bracket_around_several_forks_lets_python_in_between_configure_and_flush(tmp_path):
    """Item 2: Kamailio's bracket: one before-fork hook, forks with Python between, one after-parent."""
    script = (
        C_FORK
        + """
    import ctypes, os, sip_statsd
    host, port = os.environ["SIP_STATSD_HOST"], int(os.environ["SIP_STATSD_PORT"])
    sip_statsd.invite_result("inbound", 200)
    assert sip_statsd.flush(timeout=10)
    _api.PyOS_BeforeFork()
    pids = []
    for rank in range(1, 4):
        pid = _libc.fork()
        if pid == 0:
            _api.PyOS_AfterFork_Child()
            sip_statsd.configure(host=host, port=port, constant_tags={"rank": str(rank)}, flush_interval=3600)
            sip_statsd.bye("inbound", "remote", "user-hangup")
            os._exit(0 if sip_statsd.flush(timeout=10) else 3)
        pids.append(pid)
        # Python in the parent between two forks, as Kamailio's child_init(0) of the main process.
        sip_statsd.configure(host=host, port=port, constant_tags={"rank": f"0-{rank}"}, flush_interval=3600)
        sip_statsd.invite_result("inbound", 486)
        sip_statsd.flush(timeout=1)  # may say False (no flusher inside the bracket), must not hang
    _api.PyOS_AfterFork_Parent()
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0, 0, 0], codes
    assert sip_statsd.flush(timeout=10)
    """
    )
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 4, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 3
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx") == 1
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="4xx") == 3


def test_a_child_forked_from_a_worker_thread_exits_and_delivers(tmp_path):
    """Item 4: the flusher started in such a child must not keep it alive."""
    script = """
    import os, select, sys, threading, sip_statsd
    sip_statsd.invite_result("inbound", 200)
    assert sip_statsd.flush(timeout=10)
    pids = []

    def fork_here():
        pid = os.fork()
        if pid == 0:
            sip_statsd.bye("outbound", "local", "normal")
            sys.exit(0)  # ends this thread: the only one the child has, but for ours
        pids.append(pid)

    thread = threading.Thread(target=fork_here)
    thread.start()
    thread.join()
    fd = os.pidfd_open(pids[0])
    ended, _, _ = select.select([fd], [], [], 20)
    if not ended:
        os.kill(pids[0], 9)
    os.waitpid(pids[0], 0)
    assert ended, "the child forked from a thread is still alive"
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1


def test_workers_that_outlive_the_main_thread_keep_delivering(tmp_path):
    """A server whose main thread returns while a non-daemon worker serves: periodic delivery goes on
    (the flusher ended with the main thread, so nothing arrived until exit)."""
    script = """
    import sys, threading, sip_statsd
    sip_statsd.configure(flush_interval=0.05)

    def serve():
        threading.main_thread().join()  # the main thread has returned: Python waits for us
        pace = threading.Event()
        for _ in range(40):
            sip_statsd.invite_result("inbound", 200)
            pace.wait(0.05)  # pacing the calls, as traffic would: not a wait for a thread
        sys.stdin.readline()  # serving on until the test has seen everything arrive

    threading.Thread(target=serve).start()
    """
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    with Receiver() as receiver:
        env = {**script_env(receiver), "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen([sys.executable, str(path)], env=env, stdin=subprocess.PIPE, text=True)
        try:
            totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 40, timeout=DEADLINE / 3)
            assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 40, "delivered before the process ended"
        finally:
            assert child.stdin is not None
            child.stdin.close()
            assert child.wait(DEADLINE) == 0


@pytest.mark.parametrize("green", ["gevent", "eventlet"])
def test_a_fork_under_green_threads_does_not_wait_for_a_thread_that_is_not_there(tmp_path, green):
    """Item 5: a greenlet's native id is the main thread's: the fork must not wait for it to leave /proc."""
    if importlib.util.find_spec(green) is None:
        pytest.skip(f"{green} is not installed (pip install {green})")
    patch = (
        "from gevent import monkey; monkey.patch_all()"
        if green == "gevent"
        else "import eventlet; eventlet.monkey_patch()"
    )
    script = f"""
    {patch}
    import os, sip_statsd
    from sip_statsd._core import flusher, process
    # A fork that waits for the flusher to leave /proc now hangs.
    process.FORK_JOIN_TIMEOUT = flusher.FORK_JOIN_TIMEOUT = 3600.0
    sip_statsd.invite_result("inbound", 200)
    assert sip_statsd.flush(timeout=10)
    pid = os.fork()
    if pid == 0:
        sip_statsd.bye("outbound", "local", "normal")
        os._exit(0 if sip_statsd.flush(timeout=10) else 3)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    sip_statsd.invite_result("inbound", 486)
    assert sip_statsd.flush(timeout=10)
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path, timeout=30)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 2, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 2


def test_what_an_atexit_handler_registered_before_import_emits_goes_out(tmp_path):
    """Item 6: atexit runs last-registered first; the library's exit flush must still come last."""
    script = """
    import atexit

    def shutdown():  # the application's, registered before the library is imported
        import sip_statsd
        for _ in range(500):
            sip_statsd.bye("inbound", "local", "normal")
            sip_statsd.call_ended("inbound", 1.5)

    atexit.register(shutdown)
    import sip_statsd
    for _ in range(500):
        sip_statsd.call_started("inbound")
    """
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 500, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 500
        assert totals.gauge(sm.METRIC_ACTIVE_CALLS) == 0
        assert len(totals.sample_list(sm.METRIC_CALL_DURATION_S)) == 500


@pytest.mark.parametrize("before", [False, True], ids=["after-only", "before-and-after"])
def test_an_atexit_handler_registered_after_import_runs_once_and_goes_out(tmp_path, before):
    """The common order (import, then register the shutdown): its emits go out once, never twice."""
    script = f"""
    import atexit

    def early():  # registered before the library: its emits may be lost, but it runs once
        print("early ran")

    if {before!r}:
        atexit.register(early)
    import sip_statsd

    def shutdown():
        print("shutdown ran")
        for _ in range(500):
            sip_statsd.bye("inbound", "local", "normal")
            sip_statsd.call_ended("inbound", 1.5)

    atexit.register(shutdown)
    for _ in range(500):
        sip_statsd.call_started("inbound")
    """
    with Receiver() as receiver:
        out = run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 500, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 500
        assert totals.gauge(sm.METRIC_ACTIVE_CALLS) == 0
        assert len(totals.sample_list(sm.METRIC_CALL_DURATION_S)) == 500
    assert out.stdout.count("shutdown ran") == 1, out.stdout
    assert out.stdout.count("early ran") == (1 if before else 0), out.stdout


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], DEADLINE)
    if not readable:
        process.kill()
    first = process.stdout.readline() if readable else ""
    if first.strip() != "ready":
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the script printed {first + out!r} (exit {process.returncode}), stderr {err!r}")


@pytest.mark.parametrize("previous", ["default", "handler"])
def test_sigterm_opt_in_flushes_then_does_what_sigterm_did_before(tmp_path, previous):
    """Item 7: `flush_on_sigterm()` sends what was recorded, then the previous disposition acts."""
    before = (
        ""
        if previous == "default"
        # os.write, not print: the signal may land while print("ready") is still inside stdout's writer.
        else "signal.signal(signal.SIGTERM, lambda *_: (os.write(1, b'previous\\n'), os._exit(7)))"
    )
    script = f"""
    import os, signal, sys, sip_statsd
    {before}
    sip_statsd.flush_on_sigterm()
    for _ in range(1000):
        sip_statsd.bye("inbound", "remote", "user-hangup")
    print("ready", flush=True)
    while True:
        signal.pause()
    """
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    with Receiver() as receiver:
        process = subprocess.Popen(
            [sys.executable, str(path)],
            env=script_env(receiver),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_ready(process)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=DEADLINE)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        if previous == "default":
            assert process.returncode == -signal.SIGTERM, f"exit {process.returncode}, printed {out!r}, stderr {err!r}"
        else:
            printed = f"the child exited {process.returncode}, printed {out!r}, stderr {err!r}"
            assert (process.returncode, out.split()[-1:]) == (7, ["previous"]), printed
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1000, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 1000


def test_sigterm_without_the_opt_in_keeps_its_default(tmp_path):
    """The default stays: SIGTERM ends the process at once (what was not flushed is lost, as documented)."""
    script = """
    import signal, sip_statsd
    sip_statsd.bye("inbound", "remote", "user-hangup")
    print("ready", flush=True)
    while True:
        signal.pause()
    """
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    with Receiver() as receiver:
        process = subprocess.Popen(
            [sys.executable, str(path)],
            env=script_env(receiver),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_ready(process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=DEADLINE)
        assert process.returncode == -signal.SIGTERM


UWSGI_APP = """
import sip_statsd

sip_statsd.invite_result("inbound", 200)
sip_statsd.flush(timeout=10)  # the master's flusher has run, and has a socket, before uWSGI forks


def application(environ, start_response):
    for _ in range(1000):
        sip_statsd.bye("outbound", "local", "normal")
    ok = sip_statsd.flush(timeout=5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok" if ok else b"fail"]
"""


def _uwsgi() -> str | None:
    beside = Path(sys.executable).parent / "uwsgi"
    return str(beside) if beside.exists() else shutil.which("uwsgi")


def _uwsgi_or_skip() -> str:
    """uWSGI's path; missing, the test fails in CI on 3.11 (tox's py311 env installs it) and is skipped elsewhere."""
    found = _uwsgi()
    if found is None:
        reason = "uwsgi is not installed (python -m pip install uwsgi builds it from source: a C compiler)"
        if os.environ.get("CI") and sys.version_info[:2] == (3, 11):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def test_uwsgi_workers_forked_without_fork_hooks_deliver(tmp_path):
    """Item 3 in a real host: uWSGI forks its workers from C and, by default, runs no fork hooks."""
    uwsgi = _uwsgi_or_skip()
    (tmp_path / "app.py").write_text(UWSGI_APP)
    port = free_tcp_port()
    command = [uwsgi, "--master", "--processes", "2", "--http-socket", f"127.0.0.1:{port}"]
    command += ["--wsgi-file", "app.py", "--die-on-term", "--enable-threads", "--disable-logging", "--need-app"]
    with Receiver() as receiver:
        env = {**script_env(receiver), "PYTHONPATH": os.pathsep.join(sys.path)}
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            bodies = []
            for _ in range(6):
                bodies.append(_get(f"http://127.0.0.1:{port}/"))
        finally:
            server.send_signal(signal.SIGTERM)
            output, _ = server.communicate(timeout=DEADLINE)
        assert bodies == [b"ok"] * 6, output
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 6000, timeout=10)
        assert totals.count(sm.METRIC_BYE_TOTAL) == 6000
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1  # the master's, not sent again by a worker


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes:
    """One request, retried while uWSGI starts (it gives no event to wait on), within DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            with urllib.request.urlopen(url, timeout=DEADLINE) as response:
                body: bytes = response.read()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_host_delivery_takes_only_an_address_it_need_not_resolve():
    with pytest.raises(ValueError, match="never resolves a name"):
        sm.SipMetrics(delivery="host", host="localhost", port=8125)
    with pytest.raises(ValueError, match="delivery"):
        sm.SipMetrics(delivery="later")


def test_host_delivery_sends_on_the_callers_thread_with_no_thread_of_ours(receiver):
    """host_tick(True) sends what a handler recorded, at once, in one datagram; host_tick() alone waits."""
    metrics = sm.SipMetrics(delivery="host", host=receiver.host, port=receiver.port, flush_interval=3600)
    try:
        assert metrics.recorder.flusher.schedule.thread is None
        metrics.host_tick(True)  # what the configuration left: nothing
        before = receiver.totals().datagrams
        metrics.invite_result("inbound", 200)
        metrics.bye("inbound", "remote", "user-hangup")
        for _ in range(1000):
            metrics.host_tick()  # not told, and flush_interval has not passed: nothing sent
        metrics.host_tick(True)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1, timeout=10)
        assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1
        assert totals.datagrams == before + 1
        assert metrics.recorder.flusher.schedule.thread is None
    finally:
        metrics.close()
