"""The suite's stray-datagram guard (tests/stray_guard.py), run on small suites of its own.

The guard listens on UDP 8125 for the whole session (conftest.py installs it) and fails the
session if anything arrives. These runs move its fixed port to a free one, so that what
they send never reaches the guard of the session running them.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import free_port

from sip_statsd._wire.receiver import Receiver

TESTS = Path(__file__).parent


@pytest.fixture
def guarded(pytester, monkeypatch):
    """A pytester directory whose conftest installs the guard, its fixed port a free one."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    port = free_port()
    monkeypatch.setenv("SIP_STATSD_TEST_STRAY_PORT", str(port))
    pytester.makeconftest("from stray_guard import *  # noqa: F403")
    return pytester, port


def test_a_datagram_to_the_default_port_fails_the_session_and_names_the_test(guarded):
    pytester, port = guarded
    pytester.makepyfile(
        f"""
        import socket

        def test_quiet():
            pass

        def test_sends_to_the_default_agent():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"stray:1|c", ("127.0.0.1", {port}))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*stray datagrams*",
            "1 datagram(s) reached a receiver no test started:",
            f"*during or after test_a_datagram*::test_sends_to_the_default_agent: to 127.0.0.1:{port} from port *: "
            "b'stray:1|c'",
        ]
    )


def test_a_session_that_sends_only_to_its_own_receivers_passes(guarded):
    pytester, port = guarded
    pytester.makepyfile(
        """
        import sip_statsd
        from sip_statsd._wire.receiver import Receiver

        def test_own_receiver():
            with Receiver() as receiver:
                metrics = sip_statsd.SipMetrics(host=receiver.host, port=receiver.port)
                metrics.invite_result("inbound", 200)
                assert metrics.flush()
                assert receiver.wait_for(lambda t: t.lines >= 2).lines == 2
                metrics.close()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"stray-datagram guard: listening on 127.0.0.1:{port}*"])


def test_with_the_port_taken_the_environment_points_at_the_guard_not_at_a_developers_agent(guarded):
    """The developer's DD_AGENT_HOST is cleared; the process-wide instance's sends are still caught."""
    pytester, port = guarded
    with Receiver() as developers_agent, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        pytester.makepyfile(
            """
            import sip_statsd

            def test_default_instance():
                sip_statsd.dtls_handshake("ok")
                assert sip_statsd.flush()
            """
        )
        env = {"DD_AGENT_HOST": developers_agent.host, "DD_DOGSTATSD_PORT": str(developers_agent.port)}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        taken.setblocking(False)
        with pytest.raises(BlockingIOError):
            taken.recv(100)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            [
                f"stray-datagram guard: could not bind 127.0.0.1:{port}*",
                "*during or after *::test_default_instance: to 127.0.0.1:* from port *: "
                "b'sip_dtls_handshake_total:1|c|#result:ok*",
            ]
        )
        # A marker after the run: the socket's queue is FIFO, so whatever the run sent is read first.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
            marker.sendto(b"marker:1|c", (developers_agent.host, developers_agent.port))
        arrived = developers_agent.wait_for(lambda t: t.lines >= 1)
    assert arrived.counts == {"marker": 1}


OTHER = """
import pathlib, socket, sys, time
port, where = int(sys.argv[1]), pathlib.Path(sys.argv[2])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind(("127.0.0.1", 0))
    deadline = time.monotonic() + 60
    while not (where / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    s.sendto(b"other:1|c", ("127.0.0.1", port))
    (where / "sent").write_text("")
    sys.stdin.read()  # the socket stays open until the test closes stdin
"""


def test_a_datagram_from_a_process_outside_the_session_is_left_out(guarded, tmp_path):
    """On a shared machine, another process sending to 8125 is not this suite's fault (Linux /proc)."""
    import subprocess
    import sys

    pytester, port = guarded
    where = tmp_path / "handshake"
    where.mkdir()
    other = subprocess.Popen([sys.executable, "-c", OTHER, str(port), str(where)], stdin=subprocess.PIPE)
    try:
        pytester.makepyfile(
            f"""
            import pathlib, time

            def test_while_another_process_sends():
                where = pathlib.Path({str(where)!r})
                (where / "go").write_text("")
                deadline = time.monotonic() + 60
                while not (where / "sent").exists():
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            """
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    finally:
        other.communicate(b"", timeout=30)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([f"stray-datagram guard: left out datagrams of ['pid {other.pid} (*"])


SHORT_LIVED = """
import pathlib, socket, sys, time
port, where = int(sys.argv[1]), pathlib.Path(sys.argv[2])
sent = 0
deadline = time.monotonic() + 60
while not (where / "stop").exists() and time.monotonic() < deadline:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a fresh socket per metric, closed at once
        s.sendto(b"someone.elses.metric:1|c|#service:other", ("127.0.0.1", port))
    sent += 1
    if sent == 25:
        (where / "sent").write_text("")
    time.sleep(0.005)
"""


def test_another_programs_short_lived_senders_on_the_shared_port_do_not_fail_the_session(guarded, tmp_path):
    """Another program sends to 8125 from sockets it closes at once, during the whole run: left out."""
    import subprocess
    import sys

    pytester, port = guarded
    where = tmp_path / "handshake"
    where.mkdir()
    other = subprocess.Popen([sys.executable, "-c", SHORT_LIVED, str(port), str(where)])
    try:
        pytester.makepyfile(
            f"""
            import pathlib, time

            def test_while_another_program_sends():
                where = pathlib.Path({str(where)!r})
                deadline = time.monotonic() + 60
                while not (where / "sent").exists():
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            """
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    finally:
        (where / "stop").write_text("")
        other.wait(timeout=30)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["stray-datagram guard: left out * datagram(s) to the shared port from senders already gone*someone.elses*"]
    )


def test_a_subprocess_sending_to_the_default_agent_is_caught_after_it_exited(guarded):
    """The environment's agent is a port only the session knows: a short-lived child's send still counts."""
    pytester, _ = guarded
    pytester.makepyfile(
        """
        import subprocess, sys

        def test_child_uses_the_default_agent():
            script = "import sip_statsd; sip_statsd.dtls_handshake('ok'); assert sip_statsd.flush()"
            subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "1 datagram(s) reached a receiver no test started:",
            "*during or after *::test_child_uses_the_default_agent: to 127.0.0.1:* from port *: "
            "b'sip_dtls_handshake_total:1|c|#result:ok*",
        ]
    )
