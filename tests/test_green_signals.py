"""SIGTERM under green threads: flush_on_sigterm() delivers while the process idles (issue 24 item 5).

Under eventlet and gevent a process that idles is in the hub, and the hub runs the Python
signal handler: it cannot block on a condition or a lock ("Cannot switch to MAINLOOP from
MAINLOOP"). Each case is its own interpreter, monkey-patched, sending to a real loopback
receiver, ended by a real SIGTERM.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

SCRIPT = """
    import sys
    if sys.argv[1] == "gevent":
        from gevent import monkey; monkey.patch_all()
    else:
        import eventlet; eventlet.monkey_patch()
    import threading, time, sip_statsd
    sip_statsd.configure(host="127.0.0.1", port=int(sys.argv[2]), flush_interval=3600)
    sip_statsd.flush_on_sigterm()
    for _ in range(300):
        sip_statsd.bye("outbound", "local", "normal")
    assert sip_statsd.flush(timeout=10)  # the flusher (a green thread) runs
    for _ in range(600):
        sip_statsd.bye("outbound", "local", "normal")
    # A green thread runs only once the main greenlet has switched to the hub (in sleep).
    threading.Thread(target=lambda: print("ready", flush=True)).start()
    while True:
        time.sleep(1)  # idle: the hub runs, and runs the handler
"""


@pytest.mark.parametrize("green", ["eventlet", "gevent"])
def test_sigterm_while_idle_under_green_threads_delivers_everything(tmp_path, green):
    if importlib.util.find_spec(green) is None:
        pytest.skip(f"{green} is not installed (pip install {green})")
    path = tmp_path / "idle.py"
    path.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))}
    with Receiver() as receiver:
        child = subprocess.Popen(
            [sys.executable, "-W", "ignore", str(path), green, str(receiver.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 300, timeout=10)
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGTERM, err  # then SIGTERM's default ended it
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 900, timeout=10)
    assert totals.count(sm.METRIC_BYE_TOTAL) == 900, err
