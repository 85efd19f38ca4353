"""End to end through a real StatsD daemon (Etsy's, from npm), not one of our own parsers."""

from __future__ import annotations

import pytest
from test_wire import drive

import sip_statsd as sm


def daemon_key(flavor: str | None, name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """How the daemon names a series: DogStatsD tags and graphite tags both become `;k=v`."""
    if flavor == "plain":
        return ".".join((name, *(v for _, v in labels)))
    return name + "".join(f";{k}={v}" for k, v in labels)


@pytest.fixture(autouse=True)
def _no_origin_field(monkeypatch):
    # The daemon reads everything after `|#` as tags, so DogStatsD's `|c:<container>` field
    # (origin detection, on when a container id is found) would be folded into the last tag.
    monkeypatch.setenv("DD_ORIGIN_DETECTION_ENABLED", "false")


@pytest.mark.parametrize(
    ("backend", "flavor"),
    [("datadog", None), ("statsd", "graphite"), ("statsd", "plain")],
    ids=["datadog", "statsd-graphite", "statsd-plain"],
)
def test_thousands_of_events_arrive_exactly(backend, flavor, statsd_daemon, make_metrics):
    options = {"backend": backend, "host": "127.0.0.1", "port": statsd_daemon.port, "flush_interval": 0.05}
    if flavor:
        options["flavor"] = flavor
    else:
        options["packed"] = False  # Etsy's daemon reads one value per line
    metrics = make_metrics(**options)
    want = drive(metrics)  # thousands of events across every counter helper
    qos = [(10.0 + i, 1.0 + i / 100, 0.001 * (i + 1), 1.0 + (i % 40) / 10) for i in range(300)]
    for rtt, jitter, loss, mos in qos:
        metrics.observe_call_qos(rtt_ms=rtt, jitter_ms=jitter, loss_fraction=loss, mos_estimate=mos)
    for key, n in _quality_counts(qos).items():
        want[key] = want.get(key, 0) + n
    assert metrics.flush()
    data = statsd_daemon.read()
    counters, timers = data["counters"], data["timers"]

    assert counters["statsd.bad_lines_seen"] == 0
    for (name, labels), n in want.items():
        assert counters.get(daemon_key(flavor, name, labels)) == n, (name, labels)
    ours = {k: v for k, v in counters.items() if k.startswith("sip_")}
    assert sum(ours.values()) == pytest.approx(sum(want.values()) + _qos_sum_if_counted(backend, qos))

    if backend == "statsd":  # QoS as timers: every sample, exactly
        assert sorted(timers[sm.METRIC_CALL_RTT_MS]) == pytest.approx(sorted(q[0] for q in qos))
        assert sorted(timers[sm.METRIC_CALL_MOS_ESTIMATE]) == pytest.approx(sorted(q[3] for q in qos))
        assert len(timers[sm.METRIC_CALL_LOSS_FRACTION]) == 300
    else:  # the daemon treats |d as a counter: the samples arrive summed
        assert counters[sm.METRIC_CALL_RTT_MS] == pytest.approx(sum(q[0] for q in qos))
        assert counters[sm.METRIC_CALL_JITTER_MS] == pytest.approx(sum(q[1] for q in qos))


def _quality_counts(qos: list[tuple[float, float, float, float]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """The grades (ITU-T G.109 MOS floors) and default-threshold issues the QoS calls must count."""
    floors = ((4.34, "best"), (4.03, "high"), (3.60, "medium"), (3.10, "low"), (2.58, "poor"), (1.0, "unusable"))
    counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for rtt, jitter, loss, mos in qos:
        grade = next(g for floor, g in floors if mos >= floor)
        keys = [(sm.METRIC_CALL_QUALITY_TOTAL, (("grade", grade),))]
        for issue, crossed in (("high_rtt", rtt > 300), ("high_jitter", jitter > 30), ("high_loss", loss > 0.05)):
            if crossed:
                keys.append((sm.METRIC_CALL_QUALITY_ISSUE_TOTAL, (("issue", issue),)))
        if mos < 3.5:
            keys.append((sm.METRIC_CALL_QUALITY_ISSUE_TOTAL, (("issue", "low_mos"),)))
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return counts


def _qos_sum_if_counted(backend: str, qos: list[tuple[float, float, float, float]]) -> float:
    return sum(sum(q) for q in qos) if backend == "datadog" else 0.0


def test_library_drop_counter_reaches_the_daemon(statsd_daemon, make_metrics):
    metrics = make_metrics(backend="statsd", flavor="graphite", host="127.0.0.1", port=statsd_daemon.port)
    for _ in range(3):
        metrics.dtls_handshake("exploded")
    metrics.flush()
    counters = statsd_daemon.read()["counters"]
    key = "sip_statsd_dropped_inputs_total;metric=sip_dtls_handshake_total;reason=unknown_value"
    assert counters[key] == 3
    assert counters["statsd.bad_lines_seen"] == 0
