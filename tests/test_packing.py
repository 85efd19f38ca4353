"""DogStatsD v1.1 packed distributions: every sample arrives, no datagram too big, no value split."""

from __future__ import annotations

import random

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver
from sip_statsd._wire.transport import UDP_PAYLOAD, UDS_PAYLOAD


def samples(n: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    # short and long reprs, repeats (the text cache) and values that never repeat
    return [rng.choice((round(rng.uniform(1, 500), 1), rng.uniform(1e-6, 1e9), 42.0, 7)) for _ in range(n)]


@pytest.mark.parametrize("transport", ["udp", "unix"])
@pytest.mark.parametrize("count", [1, 2, 150, 5000])
def test_every_sample_arrives_packed_within_the_datagram_size(transport, count, tmp_path, make_metrics):
    socket_path = str(tmp_path / "dsd.sock") if transport == "unix" else None
    with Receiver(socket_path=socket_path) as receiver:
        where = {"socket_path": socket_path} if socket_path else {"host": receiver.host, "port": receiver.port}
        metrics = make_metrics(**where, flush_interval=3600, precision=None, constant_tags={"pop": "fra1"})
        rtt = metrics.distribution("packed_rtt_ms", {"leg": ("a", "b")})
        values = samples(count)
        for value in values:
            rtt.observe(value, leg="a")
        assert metrics.flush()
        totals = receiver.wait_for(lambda t: len(t.sample_list("packed_rtt_ms")) >= count)
        assert totals.sample_list("packed_rtt_ms", leg="a", pop="fra1") == [float(v) for v in values]
        assert not totals.malformed
        limit = UDS_PAYLOAD if socket_path else UDP_PAYLOAD
        datagrams = receiver.datagrams()
        assert max(len(d) for d in datagrams) <= limit
        lines = [line for d in datagrams for line in d.decode().split("\n") if line.startswith("packed_rtt_ms")]
        if count > 1:
            assert len(lines) < count  # packed: several values per line
        assert len(lines) >= -(-sum(len(repr(v)) + 1 for v in values) // limit)  # and no more than fit


def test_packed_false_sends_one_value_per_line(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600, packed=False)
    for value in (1.5, 2.5, 3.5):
        metrics.observe_call_qos(rtt_ms=value)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_RTT_MS)) >= 3)
    assert totals.sample_list(sm.METRIC_CALL_RTT_MS) == [1.5, 2.5, 3.5]
    rtt_lines = [
        line for d in receiver.datagrams() for line in d.decode().split("\n") if line.startswith("sip_call_rtt_ms")
    ]
    assert rtt_lines == ["sip_call_rtt_ms:1.5|d", "sip_call_rtt_ms:2.5|d", "sip_call_rtt_ms:3.5|d"]


def test_a_call_costs_one_packed_line_per_distribution_per_flush(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    for _ in range(20):
        metrics.invite_result("inbound", 200)
        metrics.observe_call_qos(rtt_ms=38.5, jitter_ms=4.2, loss_fraction=0.003, mos_estimate=4.3)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_MOS_ESTIMATE)) >= 20)
    text = b"\n".join(receiver.datagrams()).decode()
    assert text.count("sip_call_rtt_ms:") == 1
    assert "sip_call_rtt_ms:" + ":".join(["38.5"] * 20) + "|d" in text
    assert totals.sample_list(sm.METRIC_CALL_LOSS_FRACTION) == [0.003] * 20


@pytest.mark.parametrize("flavor", ["influxdb", "graphite", "plain"])
def test_statsd_timers_keep_tiny_and_huge_values(flavor, receiver, make_metrics):
    """pystatsd's timing() writes six decimals: 1.5e-07 arrived as 0."""
    metrics = make_metrics(backend="statsd", flavor=flavor, host=receiver.host, port=receiver.port, precision=None)
    values = [1.5e-07, 5e-324, 4e-07, 1e20, 38.5]
    tiny = metrics.distribution("tiny_ms")
    for value in values:
        tiny.observe(value)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: t.lines >= len(values))
    got = [v for key, vs in totals.samples.items() if key.split("{")[0].startswith("tiny_ms") for v in vs]
    assert got == values


def test_a_full_distribution_at_the_sample_limit_is_delivered_at_exit():
    """One series at MAX_SAMPLES_LIMIT, left for the exit flush: every sample arrives (linear packing)."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, 33, 256 * 1024 * 1024)  # SO_RCVBUFFORCE (Linux)
        except OSError:
            pytest.skip("a 256 MiB receive buffer needs Linux and CAP_NET_ADMIN")
        sock.bind(("127.0.0.1", 0))
        child = (
            "import sys\n"
            "from sip_statsd import Distribution, SipMetrics\n"
            "from sip_statsd._core.names import MAX_SAMPLES_LIMIT\n"
            "m = SipMetrics(backend='datadog', host='127.0.0.1', port=int(sys.argv[1]), flush_interval=3600)\n"
            "d = Distribution('big_ms', max_samples=MAX_SAMPLES_LIMIT, recorder=m.recorder).series()\n"
            "for i in range(MAX_SAMPLES_LIMIT):\n"
            "    d.observe(i / 7)  # distinct values: no text cache to help\n"
            "print(MAX_SAMPLES_LIMIT)\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))}
        done = subprocess.run(
            [sys.executable, "-c", child, str(sock.getsockname()[1])],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        sock.settimeout(0)
        arrived = 0
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                break
            for line in data.decode().split("\n"):
                if line.startswith("big_ms:"):
                    arrived += line.split("|", 1)[0].count(":")
    assert arrived == int(done.stdout)
