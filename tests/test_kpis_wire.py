"""The helpers beyond the origin end to end: real UDP and Unix sockets, every backend, a real daemon."""

from __future__ import annotations

import random
import sys
import threading
from typing import Any

import pytest
from conftest import WIRE_BACKENDS, wire_count, wire_options
from test_daemon import daemon_key

import sip_statsd as sm
from sip_statsd._wire.lines import parse_datagram
from sip_statsd._wire.receiver import Receiver, Totals

Key = tuple[str, tuple[tuple[str, str], ...]]
METHODS = (*sm.REQUEST_METHODS, "KEEPALIVE")


class Want:
    """What a receiver must see from `drive`: counts, samples by metric, gauge levels."""

    def __init__(self) -> None:
        self.counts: dict[Key, int] = {}
        self.samples: dict[str, list[float]] = {}
        self.levels: dict[Key, int] = {}

    def count(self, name: str, **labels: str) -> None:
        key = (name, tuple(labels.items()))
        self.counts[key] = self.counts.get(key, 0) + 1

    def level(self, step: int, direction: str) -> None:
        key = (sm.METRIC_ACTIVE_CALLS, (("direction", direction),))
        self.levels[key] = self.levels.get(key, 0) + step


def drive(metrics: sm.SipMetrics, events: int = 1500, seed: int = 11) -> Want:
    """Every new helper, with the exact codes, the classes and `other` methods."""
    rng = random.Random(seed)
    want = Want()
    for _ in range(events):
        d = str(rng.choice(sm.DIRECTIONS))
        code = rng.choice((180, 200, 302, 404, 408, 480, 486, 487, 499, 503, 504, 600, 603, 699))
        metrics.invite_result(d, code)
        want.count(sm.METRIC_INVITE_RESULT_TOTAL, direction=d, code_class=f"{code // 100}xx")
        exact = str(code) if code in sm.DEFAULT_RESPONSE_CODES else f"{code // 100}xx"
        want.count(sm.METRIC_INVITE_RESPONSE_TOTAL, direction=d, code=exact)
        method, final = rng.choice(METHODS), rng.randrange(100, 700)
        metrics.request_result(d, method, final)
        counted = method if method in sm.REQUEST_METHODS else "other"
        want.count(sm.METRIC_REQUEST_RESULT_TOTAL, direction=d, method=counted, code_class=f"{final // 100}xx")
        delay = round(rng.uniform(0, 4000), 3)
        metrics.observe_setup_delay(d, delay, code < 300)
        want.samples.setdefault(sm.METRIC_SESSION_REQUEST_DELAY_MS, []).append(delay)
        if code == 200:
            metrics.call_started(d)
            want.level(1, d)
        elif code == 487 and want.levels.get((sm.METRIC_ACTIVE_CALLS, (("direction", d),)), 0) > 0:
            duration = round(rng.uniform(0, 600), 3)
            metrics.call_ended(d, duration_s=duration)
            want.level(-1, d)
            want.samples.setdefault(sm.METRIC_CALL_DURATION_S, []).append(duration)
    metrics.request_result("inbound", "INVITE", 200)  # dropped, and the drop counted on the wire
    want.count(sm.METRIC_DROPPED_INPUTS_TOTAL, metric=sm.METRIC_REQUEST_RESULT_TOTAL, reason="unknown_value")
    return want


def all_samples(totals: Totals, flavor: str | None, name: str) -> list[float]:
    """Every sample of `name` over all its series, whatever the flavor folded in."""
    if flavor == "plain":
        return [v for k, vs in totals.samples.items() if k.split(".")[0] == name for v in vs]
    return totals.sample_list(name)


def wire_gauge(totals: Totals, flavor: str | None, name: str, **labels: str) -> float | None:
    if flavor == "plain":
        key = ".".join((name, *labels.values()))
        return totals.gauges.get(key)
    return totals.gauge(name, **labels)


@pytest.mark.parametrize("transport", ["udp", "unix"])
@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_every_new_helper_arrives_exactly(backend, transport, make_metrics, tmp_path):
    path = str(tmp_path / "agent.sock") if transport == "unix" else None
    with Receiver(socket_path=path) as receiver:
        metrics = make_metrics(**wire_options(backend, receiver, flush_interval=3600, precision=None))
        # A Unix datagram socket queues few datagrams (net.unix.max_dgram_qlen, often 10)
        # and the sender never blocks: keep one flush within what the queue holds.
        want = drive(metrics, events=150 if path else 1500)
        assert metrics.flush()
        flavor = backend[1]
        n_counts, n_samples = sum(want.counts.values()), sum(map(len, want.samples.values()))
        totals = receiver.wait_for(
            lambda t: (
                sum(t.counts.values()) >= n_counts
                and sum(map(len, t.samples.values())) >= n_samples
                and len(t.gauges) >= len(want.levels)
            )
        )
        assert totals.malformed == []
        for (name, labels), n in want.counts.items():
            assert wire_count(totals, flavor, name, **dict(labels)) == n, (name, labels)
        assert sum(totals.counts.values()) == n_counts
        for name, values in want.samples.items():
            assert sorted(all_samples(totals, flavor, name)) == pytest.approx(sorted(values)), name
        assert len(want.levels) == 2
        for (name, labels), level in want.levels.items():
            assert wire_gauge(totals, flavor, name, **dict(labels)) == level, labels
        kinds = {line.kind for d in receiver.datagrams() for line in parse_datagram(d)[0]}
        assert kinds == ({"c", "d", "g"} if backend[0] == "datadog" else {"c", "ms", "g"})


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_a_gauge_back_at_zero_is_sent_as_zero_on_every_flush(backend, receiver, make_metrics):
    metrics = make_metrics(**wire_options(backend, receiver, flush_interval=3600))
    metrics.call_started("outbound")
    metrics.call_ended("outbound")
    for _ in range(3):
        assert metrics.flush()
    totals = receiver.wait_for(lambda t: t.lines >= 3)
    assert wire_gauge(totals, backend[1], sm.METRIC_ACTIVE_CALLS, direction="outbound") == 0
    levels = [line.values for d in receiver.datagrams() for line in parse_datagram(d)[0] if line.kind == "g"]
    assert levels == [(0.0,)] * 3  # once per flush; the unused direction is never sent


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_a_negative_level_arrives_as_that_level(backend, receiver, make_metrics):
    """pystatsd sends a level below 0 as `0|g` then `-3|g` (a signed StatsD gauge is a delta)."""
    metrics = make_metrics(**wire_options(backend, receiver, flush_interval=3600))
    balance = metrics.gauge("testsuite_balance").series()
    balance.set(-3)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: t.lines >= 1 and "testsuite_balance" in t.gauges)
    assert totals.gauges["testsuite_balance"] == -3


def test_datadog_gauge_line_is_exact_bytes(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, prefix="edge", constant_tags={"pop": "fra1"})
    metrics.call_started("inbound")
    metrics.call_started("inbound")
    metrics.flush()
    receiver.wait_for(lambda t: t.lines >= 1)
    line = b"".join(receiver.datagrams()).decode().strip().split("|c:")[0]  # origin detection may add |c:
    assert line == "edge.sip_active_calls:2|g|#direction:inbound,pop:fra1"


def test_eight_threads_on_the_wire_give_exact_levels_and_counts(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=0.01)
    per_thread = 10_000
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        d = sm.DIRECTIONS[i % 2]
        barrier.wait()
        for n in range(per_thread):
            metrics.call_started(d)
            metrics.request_result(d, "REGISTER", 401 if n % 2 else 200)
            if n % 5:
                metrics.call_ended(d)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert metrics.flush()
    total = 8 * per_thread
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_REQUEST_RESULT_TOTAL) >= total)
    for d in sm.DIRECTIONS:
        assert totals.gauge(sm.METRIC_ACTIVE_CALLS, direction=d) == 4 * per_thread // 5
        assert totals.count(sm.METRIC_REQUEST_RESULT_TOTAL, direction=d, code_class="4xx") == total // 4
    assert totals.datagrams > 1  # the flusher ran while the threads emitted


@pytest.fixture(autouse=True)
def _no_origin_field(monkeypatch):
    monkeypatch.setenv("DD_ORIGIN_DETECTION_ENABLED", "false")  # see test_daemon.py


@pytest.mark.parametrize(
    ("backend", "flavor"),
    [("datadog", None), ("statsd", "graphite"), ("statsd", "plain")],
    ids=["datadog", "statsd-graphite", "statsd-plain"],
)
def test_every_new_helper_through_the_statsd_daemon(backend, flavor, statsd_daemon, make_metrics):
    options: dict[str, Any] = {"backend": backend, "host": "127.0.0.1", "port": statsd_daemon.port}
    if flavor:
        options["flavor"] = flavor
    else:
        options["packed"] = False  # Etsy's daemon reads one value per line
    metrics = make_metrics(**options, flush_interval=0.05, precision=None)
    want = drive(metrics, events=800)
    assert metrics.flush()
    data = statsd_daemon.read()
    counters, timers, gauges = data["counters"], data["timers"], data["gauges"]
    assert counters["statsd.bad_lines_seen"] == 0
    for (name, labels), n in want.counts.items():
        assert counters.get(daemon_key(flavor, name, labels)) == n, (name, labels)
    for (name, labels), level in want.levels.items():
        assert gauges[daemon_key(flavor, name, labels)] == level, labels
    if backend == "statsd":  # distributions as timers: every sample
        for name, values in want.samples.items():
            got = [v for k, vs in timers.items() if k.split(";")[0].split(".")[0] == name for v in vs]
            assert sorted(got) == pytest.approx(sorted(values)), name


def test_a_negative_level_reaches_the_statsd_daemon_as_that_level(statsd_daemon, make_metrics):
    port = statsd_daemon.port
    metrics = make_metrics(backend="statsd", flavor="graphite", host="127.0.0.1", port=port)
    metrics.call_ended("inbound")  # a call that ended without starting here: the level goes to -1
    metrics.call_ended("inbound")
    metrics.flush()
    metrics.call_started("inbound")
    metrics.flush()
    gauges = statsd_daemon.read()["gauges"]
    assert gauges["sip_active_calls;direction=inbound"] == -1
