"""The private CPython APIs behind `sip_statsd._core.cpython`, checked on the Python running the tests.

tox runs this file on 3.11, 3.12 and 3.13: a release that moves or changes one of them fails
here by name. Also: the exit flush runs before `logging.shutdown`, so what it logs reaches
handlers that are still open.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from sip_statsd._core import cpython
from sip_statsd._core.series import OwnedLock


@pytest.mark.parametrize("make", [threading.RLock, threading.Condition], ids=["RLock", "Condition"])
def test_a_lock_says_whether_this_thread_holds_it(make):
    lock = make()
    assert not cpython.held_by_this_thread(lock)
    with lock:
        assert cpython.held_by_this_thread(lock)
        other: list[bool] = []
        thread = threading.Thread(target=lambda: other.append(cpython.held_by_this_thread(lock)))
        thread.start()
        thread.join()
        assert other == [False]
    assert not cpython.held_by_this_thread(lock)


def test_owned_lock_uses_it():
    lock = OwnedLock()
    with lock:
        assert lock.held_here()
    assert not lock.held_here()


def test_the_exit_handler_count_never_goes_down():
    def nothing() -> None:
        pass

    before = cpython.exit_handler_count()
    atexit.register(nothing)
    assert cpython.exit_handler_count() == before + 1
    atexit.unregister(nothing)
    assert cpython.exit_handler_count() in (before, before + 1)  # a hole may stay: never fewer
    assert cpython.exit_handler_count() >= before


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_running_the_exit_handlers_runs_them_last_first_once():
    done = run(
        """
        import atexit
        from sip_statsd._core import cpython
        atexit.register(print, "first registered")
        atexit.register(print, "last registered")
        print("run")
        cpython.run_exit_handlers()
        print("ran")
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # sip_statsd's own exit flush is among them (registered at import), and prints nothing
    assert lines == ["run", "last registered", "first registered", "ran"], lines


def test_the_exit_flush_logs_before_logging_shuts_down(tmp_path):
    """A send error found by the exit flush reaches a handler logging.shutdown has not closed yet."""
    out = tmp_path / "log.txt"
    done = run(
        """
        import logging, socket, sys
        class Recording(logging.Handler):
            closed = False
            def close(self):
                self.closed = True
                super().close()
            def emit(self, record):
                with open(sys.argv[1], "a") as f:
                    f.write(("after close: " if self.closed else "") + record.getMessage() + "\\n")
        logging.getLogger().addHandler(Recording())
        import sip_statsd
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        sip_statsd.configure(host="127.0.0.1", port=port, flush_interval=3600)
        sip_statsd.bye("outbound", "local", "normal")
        """,
        str(out),
    )
    assert done.returncode == 0, done.stderr
    logged = out.read_text().splitlines()
    assert any("cannot send" in line for line in logged), logged
    assert not [line for line in logged if line.startswith("after close")], logged
