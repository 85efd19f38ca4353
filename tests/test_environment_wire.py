"""What the environment holds reaches the wire as UTF-8 and checked, never as DogStatsD syntax.

Each case runs the library in a child process with the environment set (the datadog client
reads it when the backend is made) and counts what a raw UDP socket of the test received.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

CHILD = """
import sys, sip_statsd
for _ in range(1000):
    sip_statsd.invite_result("inbound", 200)
ok = sip_statsd.flush(timeout=10)
errors = sip_statsd.stats().send_errors
print(ok, sum(errors.values()), sorted(k for k, v in errors.items() if v))
"""


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        yield sock


def run_child(udp: socket.socket, **env: str) -> tuple[str, list[bytes]]:
    """Run CHILD with the DD_* environment `env`, aimed at `udp`; (its output, the datagrams)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "DATADOG_", "SIP_STATSD_"))}
    base.update(DD_AGENT_HOST="127.0.0.1", DD_DOGSTATSD_PORT=str(udp.getsockname()[1]), **env)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=base, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    datagrams = []
    udp.settimeout(0)
    while True:  # the child has flushed and exited: everything sent is in the socket's buffer
        try:
            datagrams.append(udp.recv(65535))
        except BlockingIOError:
            return done.stdout.strip(), datagrams


def invites(datagrams: list[bytes]) -> int:
    """The INVITE count carried by well-formed UTF-8 lines."""
    total = 0
    for datagram in datagrams:
        for line in datagram.decode("utf-8").split("\n"):
            found = re.fullmatch(r"sip_invite_result_total:(\d+)\|c\|#[^|\n]*(\|[ce]:[^|\n]*)*", line)
            total += int(found.group(1)) if found else 0
    return total


@pytest.mark.parametrize("variable", ["DD_ENV", "DD_SERVICE", "DD_VERSION", "DATADOG_TAGS", "DD_EXTERNAL_ENV"])
def test_a_non_ascii_environment_value_reaches_the_agent_as_utf8(udp, variable):
    value = "team:prod-münchen" if variable == "DATADOG_TAGS" else "prod-münchen"
    out, datagrams = run_child(udp, **{variable: value})
    assert out == "True 0 []"
    assert invites(datagrams) == 1000
    assert any("münchen".encode() in d for d in datagrams)


def test_a_huge_environment_value_is_left_out_not_carried_by_every_line(udp):
    out, datagrams = run_child(udp, DD_ENV="x" * 100_000, DD_EXTERNAL_ENV="y" * 100_000)
    assert out == "True 0 []"
    assert invites(datagrams) == 1000
    assert all(len(d) <= 1432 for d in datagrams)


def test_external_env_cannot_forge_lines(udp):
    forged = "it-false,cn-x\nsip_bye_total:1000000|c\n|e:more|c:abc\x01\x7f\u2028\udcffend"
    out, datagrams = run_child(udp, DD_EXTERNAL_ENV=forged)
    assert out == "True 0 []"
    text = b"\n".join(datagrams).decode("utf-8")
    assert not any(line.startswith("sip_bye_total") for line in text.split("\n"))
    assert invites(datagrams) == 1000
    lines = [line for line in text.split("\n") if line]  # every datagram ends with a newline
    assert all(line.startswith("sip_") for line in lines)
    # Printable characters kept, `|` and the non-printable ones stripped (as datadog-go does).
    assert all(line.endswith("|e:it-false,cn-xsip_bye_total:1000000ce:morec:abcend") for line in lines)


def test_external_env_is_sent_only_with_origin_detection(udp):
    out, datagrams = run_child(udp, DD_EXTERNAL_ENV="it-false,cn-x", DD_ORIGIN_DETECTION_ENABLED="false")
    assert out == "True 0 []"
    assert invites(datagrams) == 1000
    assert b"|e:" not in b"".join(datagrams)


def test_a_line_that_cannot_be_encoded_is_a_counted_encode_error_and_flush_says_so(receiver):
    """Whatever path let an unencodable character through (none should), it is never a silent success."""
    from sip_statsd import SipMetrics

    metrics = SipMetrics(backend="datadog", host=receiver.host, port=receiver.port, flush_interval=3600)
    try:
        assert metrics.flush(timeout=10)  # the backend is made
        backend = metrics.recorder.sender.backend
        backend._constant = "bad:\udcff"  # type: ignore[union-attr]  # as an unchecked tag would be
        for _ in range(10):
            metrics.invite_result("inbound", 200)
        assert metrics.flush(timeout=10) is False
        backend._constant = ""  # type: ignore[union-attr]
        backend._ends.clear()  # type: ignore[union-attr]
        assert metrics.flush(timeout=10)
        assert metrics.stats().send_errors == {"encode": 2}  # two series: response code and class
        assert receiver.totals().count("sip_invite_result_total") == 0
    finally:
        metrics.close(timeout=10)
