"""configure(receiver=...): every line is one its receiver's parser takes, and means what was recorded.

The oracles in receiver_parsers.py transcribe each receiver's parser (cited there); the
datagrams come off a real loopback socket; the expected values are tallied here, apart
from the library.
"""

from __future__ import annotations

import re

import pytest
from receiver_parsers import PARSERS, Rejected, Sample

import sip_statsd as sm

RECEIVERS = list(PARSERS)
SCALES_MS = {"statsd_exporter", "vector"}  # `|ms` arrives divided by 1000 (seconds)


def lines_of(receiver) -> list[str]:
    return [line for d in receiver.datagrams() for line in d.decode().split("\n") if line]


def parse_all(name: str, lines: list[str]) -> list[Sample]:
    out = []
    for line in lines:
        try:
            out.extend(PARSERS[name](line))
        except Rejected as error:
            raise AssertionError(f"{name} rejects {line!r}: {error}") from None
    return out


def split_key(sample: Sample) -> tuple[str, dict[str, str]]:
    """Etsy folds tags into the key (`name;k=v`): the name and labels back."""
    if ";" not in sample.name:
        return sample.name, sample.labels
    name, *pairs = sample.name.split(";")
    return name, dict(pair.split("=", 1) for pair in pairs)


def drive(metrics: sm.SipMetrics) -> tuple[dict[tuple[str, frozenset], int], dict[str, list[float]]]:
    """Calls with known values; the counts and samples they must give, tallied here."""
    counts: dict[tuple[str, frozenset], int] = {}
    samples: dict[str, list[float]] = {}

    def count(name: str, n: int = 1, **labels: str) -> None:
        key = (name, frozenset(labels.items()))
        counts[key] = counts.get(key, 0) + n

    for i in range(40):
        code = (180, 200, 486, 503)[i % 4]
        metrics.invite_result("inbound", code)
        count(sm.METRIC_INVITE_RESULT_TOTAL, direction="inbound", code_class=f"{code // 100}xx")
        metrics.bye("outbound", "remote", "normal")
        count(sm.METRIC_BYE_TOTAL, direction="outbound", by="remote", reason_class="normal")
        rtt, jitter, loss, mos = 20 + i * 1.37, 0.5 + i / 8, (i % 5 + 1) / 256, 3.9 + i / 100
        metrics.observe_call_qos(rtt_ms=rtt, jitter_ms=jitter, loss_fraction=loss, mos_estimate=mos)
        for name, value in (
            (sm.METRIC_CALL_RTT_MS, rtt),
            (sm.METRIC_CALL_JITTER_MS, jitter),
            (sm.METRIC_CALL_LOSS_FRACTION, loss),
            (sm.METRIC_CALL_MOS_ESTIMATE, mos),
        ):
            samples.setdefault(name, []).append(value)
    return counts, samples


@pytest.fixture
def dd_fields(monkeypatch):
    """Extension fields the environment asks for: only the Agent may see them."""
    monkeypatch.setenv("DD_EXTERNAL_ENV", "it-false,cn-sip,pu-42")
    monkeypatch.setenv("DD_CARDINALITY", "orchestrator")
    monkeypatch.delenv("DD_ORIGIN_DETECTION_ENABLED", raising=False)


@pytest.mark.parametrize("name", RECEIVERS)
def test_every_line_is_accepted_and_means_what_was_recorded(name, receiver, make_metrics, dd_fields):
    metrics = make_metrics(receiver=name, host=receiver.host, port=receiver.port, precision=None, flush_interval=3600)
    counts, samples = drive(metrics)
    assert metrics.flush()
    want_values = sum(map(len, samples.values()))
    receiver.wait_for(lambda t: sum(map(len, t.samples.values())) + len(t.malformed) >= want_values, timeout=5)
    parsed = parse_all(name, lines_of(receiver))
    got_counts: dict[tuple[str, frozenset], float] = {}
    got_samples: dict[str, list[float]] = {}
    for sample in parsed:
        metric, labels = split_key(sample)
        assert "container_id" not in labels or name == "datadog"
        if sample.kind == "c":
            key = (metric, frozenset(labels.items()))
            got_counts[key] = got_counts.get(key, 0) + sample.value
        elif sample.kind != "g":
            got_samples.setdefault(metric, []).extend([sample.value] * int(sample.weight))
    for key, n in counts.items():
        assert got_counts.get(key) == n, key
    for metric, values in samples.items():
        scale = 1000 if name in SCALES_MS and metric.endswith("_ms") else 1
        assert sorted(got_samples[metric]) == pytest.approx(sorted(v / scale for v in values), rel=1e-12), metric


@pytest.mark.parametrize("name", RECEIVERS)
def test_type_letters_packing_and_extension_fields(name, receiver, make_metrics, dd_fields):
    metrics = make_metrics(receiver=name, host=receiver.host, port=receiver.port, flush_interval=3600)
    drive(metrics)
    assert metrics.flush()
    receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_MOS_ESTIMATE)) >= 40, timeout=5)
    lines = lines_of(receiver)
    letters = {re.split(r"[,;:]", line, maxsplit=1)[0]: line.split("|")[1] for line in lines}
    packed = [line for line in lines if re.match(r"[^:|]+:[^|:]+:", line)]
    fields = {f.split(":")[0] for line in lines for f in line.split("|")[2:] if f[:1] not in ("#", "@")}
    if name == "datadog":
        assert letters[sm.METRIC_CALL_MOS_ESTIMATE] == letters[sm.METRIC_CALL_RTT_MS] == "d"
        assert packed
        assert {"e", "card"} <= fields
    else:
        # a time is a time (`ms`), a MOS is not (Etsy: `ms` is its only distribution)
        assert letters[sm.METRIC_CALL_RTT_MS] == "ms"
        assert letters[sm.METRIC_CALL_MOS_ESTIMATE] == letters[sm.METRIC_CALL_LOSS_FRACTION]
        assert letters[sm.METRIC_CALL_MOS_ESTIMATE] == ("ms" if name == "etsy" else "h")
        assert packed == []
        assert fields == set(), fields  # no |c:, |e:, |card:


@pytest.mark.parametrize("name", ["statsd_exporter", "telegraf", "otel_collector", "vector"])
def test_prometheus_receivers_get_every_declared_counter_once_as_zero(name, receiver, make_metrics):
    metrics = make_metrics(receiver=name, host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.invite_result("inbound", 200)
    assert metrics.flush()
    declared = sum(len(f.all_series) for f in metrics.families if f.kind == "count")
    totals = receiver.wait_for(lambda t: len(t.counts) >= declared, timeout=5)
    first = parse_all(name, lines_of(receiver))
    zeros = [s for s in first if s.kind == "c" and s.value == 0]
    assert len(zeros) + 2 >= declared  # the 2xx class and the exact 200 carry 1
    assert any(s.name.startswith(sm.METRIC_INVITE_RESULT_TOTAL) and s.labels.get("code_class") == "3xx" for s in zeros)
    metrics.invite_result("inbound", 200)
    assert metrics.flush()
    receiver.wait_for(lambda t: t.lines > totals.lines, timeout=5)
    again = parse_all(name, lines_of(receiver))[len(first) :]
    assert [s.value for s in again if s.kind == "c"] == [1, 1]  # zeros once, not every flush


def test_the_agent_gets_no_zeros(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.invite_result("inbound", 200)
    assert metrics.flush()
    receiver.wait_for(lambda t: t.lines >= 2, timeout=5)
    assert all(s.value > 0 for s in parse_all("datadog", lines_of(receiver)))


@pytest.mark.parametrize("name", RECEIVERS)
def test_past_the_cap_the_weights_add_up_to_every_sample(name, receiver, make_metrics):
    """A reservoir of 50 stands for 1,234 samples at every receiver (issue 18 item 6)."""
    metrics = make_metrics(receiver=name, host=receiver.host, port=receiver.port, flush_interval=3600)
    load = sm.Distribution("sip_load_ms", max_samples=50, recorder=metrics.recorder)
    for i in range(1234):
        load.series().observe(float(i % 97 + 1))
    assert metrics.flush()
    receiver.wait_for(lambda t: len(t.sample_list("sip_load_ms")) >= 50, timeout=5)
    parsed = [s for s in parse_all(name, lines_of(receiver)) if split_key(s)[0] == "sip_load_ms"]
    assert sum(s.weight for s in parsed) == pytest.approx(1234, rel=1e-6)
    assert metrics.stats().dropped_inputs.get(("sip_load_ms", "sample_overflow"), 0) == 0
    assert metrics.flush()  # the count of what was sampled away goes out with the next flush
    receiver.wait_for(lambda _: any(":1184|c" in line for line in lines_of(receiver)), timeout=5)
    away = [s for s in parse_all(name, lines_of(receiver)) if split_key(s)[0] == sm.METRIC_SAMPLED_AWAY_TOTAL]
    assert [s.value for s in away if s.value] == [1234 - 50]


def test_a_receiver_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SIP_STATSD_RECEIVER", "telegraf")
    metrics = sm.SipMetrics(backend="off")
    try:
        assert metrics.config.receiver == "telegraf"
    finally:
        metrics.close()
    with pytest.raises(ValueError, match="'prometheus'"):
        sm.SipMetrics(receiver="prometheus")


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("otel_collector", "a:1:2|h"),  # one value per line
        ("otel_collector", "a:1|c|e:it-false"),  # unrecognized message part
        ("otel_collector", "a:1|c|card:low"),
        ("statsd_exporter", "a:1|c|e:it-false"),  # invalid_sample_factor
        ("statsd_exporter", "a:1|c|card:low"),
        ("telegraf", "a:1:2|h"),  # Splitting '|'
        ("telegraf", "a:1|d"),  # needs datadog_distributions
        ("vector", "a:1:2|h"),
        ("etsy", "a:1:2|ms"),  # bad line
    ],
)
def test_the_oracles_reject_what_their_parsers_reject(name, line):
    with pytest.raises(Rejected):
        PARSERS[name](line)


def test_the_oracles_scale_as_their_parsers_scale():
    assert PARSERS["statsd_exporter"]("a:250|ms")[0].value == 0.25  # "prometheus presumes seconds"
    assert PARSERS["vector"]("a:250|ms")[0].value == 0.25  # convert_to_base_units
    assert PARSERS["statsd_exporter"]("a:4.1|h")[0].value == 4.1
    assert len(PARSERS["statsd_exporter"]("a:1|h|@0.3333333333333333")) == 3  # int(1 / rate)
    assert PARSERS["etsy"]("a:4.1|h")[0].kind == "c"  # summed as a counter
    assert PARSERS["etsy"]("a:1|c|@0.00001")[0].value == pytest.approx(1e5)


def test_etsy_end_to_end_counters_timers_and_a_reservoir(statsd_daemon, make_metrics):
    """Etsy's own daemon: counts exact, timers keep their values, a reservoir's count is every sample."""
    metrics = make_metrics(receiver="etsy", host="127.0.0.1", port=statsd_daemon.port, precision=None)
    counts, samples = drive(metrics)
    load = sm.Distribution("sip_load_ms", max_samples=50, recorder=metrics.recorder)
    for i in range(1234):
        load.series().observe(float(i % 97 + 1))
    assert metrics.flush()
    data = statsd_daemon.read()
    assert data["counters"]["statsd.bad_lines_seen"] == 0
    by_labels = {}
    for key, value in data["counters"].items():
        name, *pairs = key.split(";")
        by_labels[(name, frozenset(tuple(p.split("=", 1)) for p in pairs))] = value
    for key, n in counts.items():
        assert by_labels.get(key) == n, key
    for name, values in samples.items():
        assert sorted(data["timers"][name]) == pytest.approx(sorted(values)), name
    assert len(data["timers"]["sip_load_ms"]) == 50
    assert data["timer_counters"]["sip_load_ms"] == pytest.approx(1234, rel=1e-6)


def test_the_statsd_backend_sends_a_reservoir_with_its_rate_to_etsy(statsd_daemon, make_metrics):
    """pystatsd would sample again at any rate < 1: the rate goes in the text; Etsy counts 1/rate per timer."""
    metrics = make_metrics(backend="statsd", flavor="graphite", host="127.0.0.1", port=statsd_daemon.port)
    load = sm.Distribution("sip_load_ms", max_samples=50, recorder=metrics.recorder)
    for i in range(1234):
        load.series().observe(float(i % 97 + 1))
    assert metrics.flush()
    data = statsd_daemon.read()
    assert data["counters"]["statsd.bad_lines_seen"] == 0
    assert len(data["timers"]["sip_load_ms"]) == 50
    assert data["timer_counters"]["sip_load_ms"] == pytest.approx(1234, rel=1e-6)


def test_a_ramp_within_an_interval_keeps_its_mean_past_the_cap(receiver, make_metrics):
    """Issue 24: the extra weights went to a reservoir's first slots, its oldest samples more often
    than not: 75 rising samples into 50 slots read 7 % low. 200 intervals, weights as the exporter reads them."""
    metrics = make_metrics(receiver="statsd_exporter", host=receiver.host, port=receiver.port, flush_interval=3600)
    ramp = sm.Distribution("sip_ramp_ms", max_samples=50, recorder=metrics.recorder).series()
    for _ in range(200):
        for i in range(1, 76):
            ramp.observe(float(i))
        assert metrics.flush()
    receiver.wait_for(lambda t: len(t.sample_list("sip_ramp_ms")) >= 200 * 50, timeout=10)
    parsed = [s for s in parse_all("statsd_exporter", lines_of(receiver)) if s.name == "sip_ramp_ms"]
    assert len(parsed) == 200 * 75  # each weight as repeated samples: every one stands for one
    mean = sum(s.value for s in parsed) / len(parsed) * 1000  # `ms` arrives as seconds
    assert mean == pytest.approx(38, rel=0.02)  # was 35.0 (-8 %)


@pytest.mark.parametrize("name", ["statsd_exporter", "telegraf", "otel_collector", "vector"])
def test_a_counter_family_defined_after_the_first_flush_gets_its_zeros(name, receiver, make_metrics):
    """Issue 24: zeros went with a backend's first flush only; a family defined later had none."""
    metrics = make_metrics(receiver=name, host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.invite_result("inbound", 200)
    assert metrics.flush()
    late = sm.Counter("sip_late_total", labels={"leg": ("a", "b", "c")}, recorder=metrics.recorder)
    late.inc(leg="a")
    assert metrics.flush()
    receiver.wait_for(lambda _: sum("sip_late_total" in line for line in lines_of(receiver)) >= 3, timeout=5)
    parsed = parse_all(name, lines_of(receiver))
    got = {split_key(s)[1].get("leg"): s.value for s in parsed if s.name.startswith("sip_late")}
    assert got == {"a": 1, "b": 0, "c": 0}
    assert metrics.flush()  # once, not every flush
    metrics.invite_result("inbound", 486)
    assert metrics.flush()
    receiver.wait_for(lambda _: any("4xx" in line or "code_class=4" in line for line in lines_of(receiver)), timeout=5)
    assert sum("sip_late_total" in line for line in lines_of(receiver)) == 3
