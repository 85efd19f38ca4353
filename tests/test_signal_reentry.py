"""A signal handler may call configure(), Gauge.set() and Counter.inc(n) while the main thread is
inside the same call: it must neither deadlock nor lose a count.

Each case runs in a child process (a deadlock there fails the test at its deadline instead of
hanging the suite); a timer signal interrupts the main thread thousands of times while it
loops over the same call the handler makes. Counts are read off a UDP socket of the test.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

PRELUDE = """
import signal, sys, time
from sip_statsd import SipMetrics
port = int(sys.argv[1])
m = SipMetrics(backend="datadog", host="127.0.0.1", port=port, flush_interval=3600)
handled = 0
busy = False
def arm(body, interval=0.0003):
    def handler(signum, frame):  # a handler the next signal interrupts would nest without end
        global busy, handled
        if not busy:
            busy = True
            try:
                handled += 1
                body()
            finally:
                busy = False
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
def disarm():
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
end = time.monotonic() + 1.5
"""

CASES = {
    "configure": """
def handler():
    m.invite_result("inbound", 200)
    m.configure(backend="datadog", host="127.0.0.1", port=port, flush_interval=3600, constant_tags={"by": "handler"})
arm(handler, 0.0007)
calls = 0
while time.monotonic() < end:
    m.invite_result("inbound", 200)
    calls += 1
    side = "even" if calls % 2 else "odd"  # a new configuration each time: each one takes the cells
    m.configure(backend="datadog", host="127.0.0.1", port=port, flush_interval=3600, constant_tags={"by": side})
disarm()
assert m.flush(timeout=20)
print("invites", calls + handled, handled)
""",
    "counter": """
c = m.counter("reentry_total")
def handler():
    c.inc(5)
arm(handler)
calls = 0
while time.monotonic() < end:
    c.inc(3)
    calls += 1
disarm()
assert m.flush(timeout=20)
print("counted", 3 * calls + 5 * handled, handled)
""",
    "configure_in_a_gauge": """
g = m.gauge("reentry_level")
def handler():
    m.invite_result("inbound", 200)
    side = "a" if handled % 2 else "b"
    m.configure(backend="datadog", host="127.0.0.1", port=port, flush_interval=0.01, constant_tags={"by": side})
m.configure(backend="datadog", host="127.0.0.1", port=port, flush_interval=0.01)  # the flusher takes often
arm(handler, 0.0005)
calls = 0
while time.monotonic() < end:  # the handler lands inside set()'s lock while the flusher's take waits for it
    g.set(calls)
    m.invite_result("inbound", 200)
    calls += 1
disarm()
assert m.flush(timeout=20)
print("invites", calls + handled, handled)
""",
    "gauge": """
g = m.gauge("reentry_level")
def handler():
    g.set(7)
    g.inc(2.5)
arm(handler)
calls = 0
while time.monotonic() < end:
    g.set(1)
    g.inc(2.5)
    calls += 1
disarm()
g.set(42)
assert m.flush(timeout=20)
print("level", 42, handled)
""",
}


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        yield sock


def received(udp: socket.socket) -> str:
    udp.settimeout(0)
    parts = []
    while True:
        try:
            parts.append(udp.recv(65535).decode("utf-8"))
        except BlockingIOError:
            return "\n".join(parts)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_signal_handler_can_reenter_the_call_it_interrupted(udp, case):
    try:
        done = subprocess.run(
            [sys.executable, "-c", PRELUDE + CASES[case], str(udp.getsockname()[1])],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: the child deadlocked (no exit within 30 s)")
    assert done.returncode == 0, done.stderr
    what, expected, handled = done.stdout.split()
    assert int(handled) > 100  # the handler ran often enough to meet the main thread inside the call
    text = received(udp)
    if what == "invites":
        got = sum(int(n) for n in re.findall(r"^sip_invite_result_total:(\d+)\|c", text, re.M))
    elif what == "counted":
        got = sum(int(n) for n in re.findall(r"^reentry_total:(\d+)\|c", text, re.M))
    else:
        got = int(float(re.findall(r"^reentry_level:([\d.]+)\|g", text, re.M)[-1]))
    assert got == int(expected)
