"""Shared delivery in real prefork servers: gunicorn with docs/configuration.md's `gunicorn.conf.py`,
read from the page (only the agent's port replaced), three sync workers, real HTTP requests:
every count exact at our receiver within 1 s plus the sender's interval, one gauge series back
at 0, and nothing lost when the server stops; uWSGI (forking from C) with a mule as the sender.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

from sip_statsd._wire.receiver import Receiver

gunicorn = pytest.importorskip("gunicorn", reason="pip install gunicorn")

DOC = Path(__file__).parent.parent / "docs" / "configuration.md"
REQUESTS = 300
DELIVERY_DEADLINE = 1.0 + 1.0  # 1 s plus the sender's interval

APP = """
import sip_statsd


def app(environ, start_response):
    sip_statsd.invite_result("inbound", 200)
    if environ["PATH_INFO"] == "/start":
        sip_statsd.call_started("inbound")
    else:
        sip_statsd.call_ended("inbound", 1.5)
    sip_statsd.observe_setup_delay("inbound", 20.0, True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def gunicorn_conf() -> str:
    text = DOC.read_text()
    at = text.index("gunicorn (tested in `tests/test_prefork.py`)")
    return re.findall(r"^```python\n(.*?)^```", text[at:], re.MULTILINE | re.DOTALL)[0]


def test_gunicorn_workers_count_in_shared_memory_and_the_master_sends(tmp_path):
    with Receiver() as receiver:
        conf = gunicorn_conf().replace("port=8125", f"port={receiver.port}")
        assert f"port={receiver.port}" in conf
        (tmp_path / "gunicorn.conf.py").write_text(conf)
        (tmp_path / "app.py").write_text(textwrap.dedent(APP))
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "-w",
                "3",
                "-b",
                f"127.0.0.1:{port}",
                "app:app",
            ],
            cwd=tmp_path,
            env={**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:  # until it answers: a process we wait for, not a thread of ours
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/start", timeout=5).read()
                    break
                except OSError:
                    assert server.poll() is None, server.stdout and server.stdout.read()
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            for i in range(1, REQUESTS):
                path = "/start" if i < REQUESTS // 2 else "/end"
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
            # 150 started, 150 ended, in whichever workers served them.
            totals = receiver.wait_for(
                lambda t: t.count("sip_invite_result_total") >= REQUESTS, timeout=DELIVERY_DEADLINE
            )
            assert totals.count("sip_invite_result_total", code_class="2xx") == REQUESTS
            receiver.wait_for(lambda t: t.gauge("sip_active_calls") == 0, timeout=DELIVERY_DEADLINE)
        finally:
            server.send_signal(signal.SIGTERM)
            out, _ = server.communicate(timeout=30)
        assert server.returncode == 0, out
        totals = receiver.totals()
        assert totals.count("sip_invite_result_total", code_class="2xx") == REQUESTS  # nothing twice
        assert [k for k in totals.gauges if k.startswith("sip_active_calls")] == ["sip_active_calls{direction:inbound}"]
        assert totals.gauge("sip_active_calls") == 0
        assert len(totals.sample_list("sip_session_request_delay_ms")) == REQUESTS
        assert len(totals.sample_list("sip_call_duration_s")) == REQUESTS // 2


UWSGI_APP = """
import os

import sip_statsd

# Loaded by the master before it forks (uWSGI's default, without lazy-apps): the mapping is inherited.
sip_statsd.configure(delivery="shared", host="127.0.0.1", port=int(os.environ["AGENT_PORT"]))


def application(environ, start_response):
    sip_statsd.invite_result("inbound", 200)
    sip_statsd.call_started("inbound") if environ["PATH_INFO"] == "/start" else sip_statsd.call_ended("inbound")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""

UWSGI_SENDER = """
import threading

import sip_statsd

tick = threading.Event()
while not tick.wait(1.0):  # a mule: a process of its own, as Kamailio's rtimer
    sip_statsd.flush(0)
"""


def _uwsgi() -> str | None:
    beside = Path(sys.executable).parent / "uwsgi"
    return str(beside) if beside.exists() else shutil.which("uwsgi")


@pytest.mark.skipif(_uwsgi() is None, reason="uwsgi is not installed (pip install uwsgi builds it from source)")
def test_uwsgi_workers_forked_from_c_count_in_shared_memory_and_a_mule_sends(tmp_path):
    """uWSGI forks from C: --py-call-uwsgi-fork-hooks lets each worker and the mule claim a slot."""
    (tmp_path / "app.py").write_text(textwrap.dedent(UWSGI_APP))
    (tmp_path / "sender.py").write_text(textwrap.dedent(UWSGI_SENDER))
    port = free_port()
    command = [_uwsgi() or "uwsgi", "--master", "--processes", "3", "--http-socket", f"127.0.0.1:{port}"]
    command += ["--wsgi-file", "app.py", "--mule=sender.py", "--py-call-uwsgi-fork-hooks", "--need-app"]
    command += ["--die-on-term", "--disable-logging"]
    with Receiver() as receiver:
        env = {**os.environ, "AGENT_PORT": str(receiver.port), "PYTHONPATH": os.pathsep.join(sys.path)}
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:  # until it answers: a process we wait for, not a thread of ours
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/start", timeout=5).read()
                    break
                except OSError:
                    assert server.poll() is None
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            for i in range(1, REQUESTS):
                path = "/start" if i < REQUESTS // 2 else "/end"
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
            totals = receiver.wait_for(
                lambda t: t.count("sip_invite_result_total") >= REQUESTS and t.gauge("sip_active_calls") == 0,
                timeout=DELIVERY_DEADLINE,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            output, _ = server.communicate(timeout=30)
        assert totals.count("sip_invite_result_total", code_class="2xx") == REQUESTS, output
        assert totals.gauge("sip_active_calls") == 0
        assert receiver.totals().count("sip_invite_result_total") == REQUESTS  # nothing twice, after the stop too
