"""Bounded whatever arrives: response codes, the memory backend, the listener, long lines."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading

import pytest

from sip_statsd import SipMetrics
from sip_statsd._wire.receiver import Receiver
from sip_statsd.testing import capture_metrics

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.mark.parametrize(
    "codes",
    [
        "itertools.cycle(range(100, 700))",  # endless, every one valid until the bound
        "itertools.cycle([200])",  # endless, repeats at once
        "itertools.count(100)",  # endless
        "[200] * 1_000_000",  # repeats, a million of them
        "list(range(100, 700)) * 1000",  # too many
    ],
)
def test_response_codes_are_checked_as_consumed_and_quoted_bounded(codes):
    """An endless or huge iterable raises the documented ValueError with a short message."""
    child = (
        "import itertools, resource, sip_statsd\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "try:\n"
        f"    sip_statsd.SipMetrics(backend='off', response_codes={codes})\n"
        "except ValueError as error:\n"
        "    print(len(str(error)), str(error)[:60])\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    length, _, text = done.stdout.partition(" ")
    assert text.startswith("response_codes")
    assert int(length) <= 400


def test_an_unhashable_request_method_counts_as_other():
    metrics = SipMetrics(backend="memory", flush_interval=3600)
    try:
        with capture_metrics(metrics=metrics) as captured:
            metrics.request_result("inbound", ["REGISTER"], 200)  # type: ignore[arg-type]
            metrics.request_result("inbound", {"a": 1}, 404)  # type: ignore[arg-type]
            captured.assert_count("sip_request_result_total", 2, method="other")
    finally:
        metrics.close(timeout=10)


def test_distribution_of_an_instance_takes_max_samples():
    metrics = SipMetrics(backend="memory", flush_interval=3600)
    try:
        small = metrics.distribution("bounded_ms", max_samples=2)
        with capture_metrics(metrics=metrics, strict=False) as captured:
            for value in (1.0, 2.0, 3.0):
                small.observe(value)
            kept = captured.samples("bounded_ms")
            assert len(kept) == 2
            assert set(kept) <= {1.0, 2.0, 3.0}  # a uniform reservoir of the three
            captured.assert_count("sip_statsd_sampled_away_total", 1, metric="bounded_ms")
        assert ("bounded_ms", "sample_overflow") not in metrics.stats().dropped_inputs
    finally:
        metrics.close(timeout=10)


def test_the_memory_backend_keeps_a_bounded_number_of_samples():
    """SIP_STATSD_BACKEND=memory where nobody reads it: memory stays bounded, the rest counted."""
    metrics = SipMetrics(backend="memory", flush_interval=3600)
    try:
        family = metrics.distribution("kept_ms", max_samples=50_000)
        series = family.series()
        for _ in range(6):
            for value in range(50_000):
                series.observe(float(value))
            assert metrics.flush(timeout=10)
        backend = metrics.recorder.backend
        _, samples = backend.snapshot()  # type: ignore[union-attr]
        kept = len(samples[series])
        assert kept <= 100_000
        assert metrics.stats().send_errors.get("dropped", 0) == 300_000 - kept
    finally:
        metrics.close(timeout=10)


def test_a_line_longer_than_an_agent_reads_is_counted_not_sent(receiver):
    labels = {f"k{i:02d}_" + "x" * 60: ("v" * 64,) for i in range(70)}  # one series, ~9 KB of tags
    metrics = SipMetrics(backend="datadog", host=receiver.host, port=receiver.port, flush_interval=3600)
    try:
        wide = metrics.counter("wide_total", labels)
        wide.series(**{k: v[0] for k, v in labels.items()}).inc()
        metrics.invite_result("inbound", 200)
        assert metrics.flush(timeout=10)
        assert metrics.stats().send_errors == {"dropped": 1}
        totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= 1)
        assert totals.count("sip_invite_result_total") == 1
        assert not any(len(d) > 8192 for d in receiver.datagrams())
        assert totals.count("wide_total") == 0
    finally:
        metrics.close(timeout=10)


def test_the_listener_keeps_bounded_memory_whatever_arrives():
    """As `sip-statsd listen` makes it: no raw datagrams, no samples in the running totals."""
    garbage = b"x" * 60_000
    with (
        Receiver(keep_datagrams=False, keep_samples=False) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        for _ in range(2000):
            sender.sendto(garbage, (receiver.host, receiver.port))
        sender.sendto(b"done:1|c", (receiver.host, receiver.port))
        totals = receiver.wait_for(lambda t: t.count("done") >= 1, timeout=30)
    assert totals.count("done") == 1
    assert totals.malformed_count == totals.datagrams - 1 > 0
    assert len(totals.malformed) <= 100
    assert all(len(line) + len(why) <= 600 for line, why in totals.malformed)


def test_overlapping_captures_across_threads_restore_what_each_saw(receiver):
    """A in, B in, A out, B out: the instance is back on its own backend, not strict."""
    metrics = SipMetrics(backend="datadog", host=receiver.host, port=receiver.port, flush_interval=3600)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def block_b() -> None:
        try:
            a_in.wait(10)
            with capture_metrics(metrics=metrics):
                b_in.set()
                a_out.wait(10)
        except BaseException as error:  # pragma: no cover - shown by the assert below
            errors.append(error)

    thread = threading.Thread(target=block_b)
    thread.start()
    try:
        with capture_metrics(metrics=metrics):
            a_in.set()
            b_in.wait(10)
        a_out.set()
        thread.join(10)
        assert not errors
        assert metrics.config.backend == "datadog"
        assert metrics.config.strict is False
        metrics.invite_result("inbound", 999)  # soft again: counted as a drop, never raised
        metrics.invite_result("inbound", 200)
        assert metrics.flush(timeout=10)
        totals = receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= 1)
        assert totals.count("sip_invite_result_total") == 1
    finally:
        a_in.set(), b_in.set(), a_out.set()
        thread.join(10)
        metrics.close(timeout=10)


def test_the_environment_cannot_select_a_memory_backend_that_grows(tmp_path):
    """SIP_STATSD_BACKEND=memory in a process that never reads it: flat memory over many samples."""
    child = (
        "import resource, sip_statsd\n"
        "for i in range(2_000_000):\n"
        "    sip_statsd.observe_call_qos(rtt_ms=float(i % 500 + 1))\n"
        "    if i % 100_000 == 0: sip_statsd.flush(timeout=10)\n"
        "sip_statsd.flush(timeout=10)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "SIP_STATSD_"))}
    env["SIP_STATSD_BACKEND"] = "memory"
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) < 150_000  # KiB: the library and the interpreter, not 2 M samples


del itertools  # used by the children's code only
