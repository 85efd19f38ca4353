"""The exit flush sends on the exiting thread when no thread can start (issue 24 item 3).

CPython 3.12 refuses new threads once finalization has begun, atexit included; 3.11 and
3.13 start them. Each case runs in its own interpreter (the one running the tests: tox runs
this file on 3.11, 3.12 and 3.13) against a real loopback receiver.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_hosts import C_FORK, run

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks from C through ctypes")


def test_emits_after_close_go_out_at_a_normal_exit(tmp_path):
    """close(), then 100 BYEs and call ends, then the end of the script: all of them arrive."""
    script = """
    import sip_statsd
    for _ in range(100):
        sip_statsd.call_started("inbound")
    assert sip_statsd.flush(timeout=10)
    assert sip_statsd.close(timeout=10)
    for _ in range(100):
        sip_statsd.call_ended("inbound")
        sip_statsd.bye("outbound", "local", "normal")
    """
    with Receiver() as receiver:
        done = run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 100, timeout=10)
    assert totals.count(sm.METRIC_BYE_TOTAL) == 100, done.stderr
    assert totals.gauge(sm.METRIC_ACTIVE_CALLS, direction="inbound") == 0
    assert "no backend" not in done.stderr


def test_a_child_forked_from_c_that_calls_sys_exit_delivers(tmp_path):
    """A child forked from C (no fork hooks) records 1,000 BYEs and ends with sys.exit()."""
    script = (
        C_FORK
        + """
    import os, sys, sip_statsd
    sip_statsd.invite_result("inbound", 200)
    assert sip_statsd.flush(timeout=10)  # the parent's flusher and socket exist before the fork
    pid = c_fork(False)
    if pid == 0:
        for _ in range(1000):
            sip_statsd.bye("outbound", "local", "normal")
        sys.exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    """
    )
    with Receiver() as receiver:
        run(script, receiver, tmp_path)
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 1000, timeout=10)
    assert totals.count(sm.METRIC_BYE_TOTAL) == 1000
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx") == 1


PID1 = """
    import sys, time, sip_statsd
    sip_statsd.configure(host="127.0.0.1", port=int(sys.argv[1]), flush_interval=3600)
    sip_statsd.flush_on_sigterm()
    for _ in range(100):
        sip_statsd.bye("outbound", "local", "normal")
    print("ready", flush=True)
    while True:
        time.sleep(1)
"""


def _pid_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.skipif(not _pid_namespaces(), reason="needs unshare --pid (root or user namespaces)")
def test_flush_on_sigterm_ends_a_containers_first_process(tmp_path):
    """As PID 1 the kernel gives SIGTERM no default action: flushed, then exit status 143."""
    path = tmp_path / "init.py"
    path.write_text(textwrap.dedent(PID1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))}
    with Receiver() as receiver:
        outer = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", sys.executable, str(path), str(receiver.port)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert outer.stdout is not None
            assert outer.stdout.readline().strip() == "ready"
            (init,) = Path(f"/proc/{outer.pid}/task/{outer.pid}/children").read_text().split()
            os.kill(int(init), signal.SIGTERM)
            assert outer.wait(30) == 143  # unshare reports its child's status; a hang fails here
        finally:
            if outer.poll() is None:
                outer.kill()
                outer.wait()
            if outer.stdout is not None:
                outer.stdout.close()
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 100, timeout=10)
    assert totals.count(sm.METRIC_BYE_TOTAL) == 100


# The agent named by a host name: the resolver is this script's (a name that resolves to the
# receiver, its look-ups counted), since no real DNS name can be had here.
NAMED_AGENT = """
    import socket, sys
    _real = socket.getaddrinfo
    lookups = []
    def getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        return _real("127.0.0.1" if host == "agent.example" else host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
    import sip_statsd
    sip_statsd.configure(host="agent.example", port=int(sys.argv[1]), flush_interval=3600)
"""


def test_a_named_agent_is_sent_to_at_exit_at_the_addresses_found_before(tmp_path):
    """close(), then 100 BYEs, then exit: all arrive; where no thread can start (3.12), at the
    addresses the name's look-up gave before, with no look-up on the exiting thread."""
    script = (
        NAMED_AGENT
        + """
    sip_statsd.invite_result("inbound", 200)
    assert sip_statsd.flush(timeout=10)
    assert sip_statsd.close(timeout=10)
    asked = len(lookups)
    for _ in range(100):
        sip_statsd.bye("outbound", "local", "normal")
    import atexit
    atexit.register(lambda: print("lookups at exit", len(lookups) - asked, flush=True))
    """
    )
    with Receiver() as receiver:
        path = tmp_path / "script.py"
        path.write_text(textwrap.dedent(script))
        done = subprocess.run(
            [sys.executable, str(path), str(receiver.port)],
            env={**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 100, timeout=10)
    assert done.returncode == 0, done.stderr
    assert totals.count(sm.METRIC_BYE_TOTAL) == 100, done.stderr
    if sys.version_info[:2] == (3, 12):  # 3.11 and 3.13 start a thread at exit, which may look up
        assert "lookups at exit 0" in done.stdout, done.stdout + done.stderr
