"""End to end through a real loopback socket, every line parsed strictly."""

from __future__ import annotations

import os
import random

import pytest
from conftest import WIRE_BACKENDS, wire_count, wire_options, wire_samples

import sip_statsd as sm
from sip_statsd._wire.lines import parse_datagram
from sip_statsd._wire.receiver import Receiver

EVENTS = 3000


def drive(metrics: sm.SipMetrics, seed: int = 7) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """Emit a mixed load through every helper; return what a receiver must count."""
    rng = random.Random(seed)
    want: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}

    def note(name: str, **labels: str) -> None:
        key = (name, tuple(labels.items()))
        want[key] = want.get(key, 0) + 1

    for _ in range(EVENTS):
        d = rng.choice(sm.DIRECTIONS)
        code = rng.choice((100, 180, 183, 200, 302, 404, 486, 487, 503, 603))
        metrics.invite_result(d, code)
        note(sm.METRIC_INVITE_RESULT_TOTAL, direction=str(d), code_class=f"{code // 100}xx")
        exact = str(code) if code in sm.DEFAULT_RESPONSE_CODES else f"{code // 100}xx"
        note(sm.METRIC_INVITE_RESPONSE_TOTAL, direction=str(d), code=exact)  # the same call feeds both
        by, reason = rng.choice(sm.BY_SIDES), rng.choice(sm.BYE_REASONS)
        metrics.bye(d, by, reason)
        note(sm.METRIC_BYE_TOTAL, direction=str(d), by=str(by), reason_class=str(reason))
        method = rng.choice(("INVITE", "BYE", "OPTIONS", "invite", "FOO"))
        metrics.transaction_timeout(method)
        note(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, method=method if method.isupper() and method != "FOO" else "other")
    for r in sm.REFRESH_RESULTS:
        metrics.session_timer_refresh(r)
        note(sm.METRIC_SESSION_TIMER_REFRESH_TOTAL, result=str(r))
    metrics.dtls_handshake("fingerprint-mismatch")
    note(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="fingerprint-mismatch")
    metrics.stir_verify("soft-fail")
    note(sm.METRIC_STIR_VERIFY_TOTAL, result="soft-fail")
    metrics.voice_attach("realtime", False)
    note(sm.METRIC_VOICE_ATTACH_TOTAL, mode="realtime", result="config_error")
    metrics.voice_attach_mode_fallback("pipeline", "realtime")
    note(sm.METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL, **{"from": "pipeline", "to": "realtime"})
    metrics.voice_attach_native(True)
    note(sm.METRIC_VOICE_ATTACH_NATIVE_TOTAL, result="ok")
    metrics.invite_result("sideways", 200)  # dropped, and the drop counted on the wire
    note(sm.METRIC_DROPPED_INPUTS_TOTAL, metric=sm.METRIC_INVITE_RESULT_TOTAL, reason="unknown_value")
    return want


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_every_helper_arrives_exactly(backend, receiver, make_metrics):
    metrics = make_metrics(**wire_options(backend, receiver), precision=None)  # every digit: compared exactly
    want = drive(metrics)
    rtts = [round(random.Random(1).uniform(1, 400), 3) + i for i in range(200)]
    for rtt in rtts:
        metrics.observe_call_qos(rtt_ms=rtt, jitter_ms=2.5, loss_fraction=0.01, mos_estimate=4.1)
    want[(sm.METRIC_CALL_QUALITY_TOTAL, (("grade", "high"),))] = 200  # G.109: MOS 4.03 to 4.34
    want[(sm.METRIC_CALL_QUALITY_ISSUE_TOTAL, (("issue", "high_rtt"),))] = sum(rtt > 300 for rtt in rtts)
    assert metrics.flush()
    flavor = backend[1]
    expected_total = sum(want.values())
    totals = receiver.wait_for(
        lambda t: sum(t.counts.values()) >= expected_total and sum(map(len, t.samples.values())) >= 800
    )
    assert totals.malformed == []
    for (name, labels), n in want.items():
        assert wire_count(totals, flavor, name, **dict(labels)) == n, (name, labels)
    assert sum(totals.counts.values()) == expected_total
    got = wire_samples(totals, flavor, sm.METRIC_CALL_RTT_MS)
    assert sorted(got) == pytest.approx(sorted(rtts), abs=1e-6)
    assert wire_samples(totals, flavor, sm.METRIC_CALL_MOS_ESTIMATE) == [4.1] * 200
    kinds = {line.kind for d in receiver.datagrams() for line in parse_datagram(d)[0]}
    assert kinds == ({"c", "d"} if backend[0] == "datadog" else {"c", "ms"})


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_counts_are_aggregated_one_line_per_series_per_flush(backend, receiver, make_metrics):
    metrics = make_metrics(**wire_options(backend, receiver), flush_interval=3600)
    for _ in range(100_000):
        metrics.invite_result("inbound", 200)
    metrics.invite_result("outbound", 486)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: sum(t.counts.values()) >= 100_001)
    assert totals.lines == 4  # two series, each in sip_invite_result_total and sip_invite_response_total
    assert totals.datagrams == 1
    assert (
        wire_count(totals, backend[1], sm.METRIC_INVITE_RESULT_TOTAL, direction="inbound", code_class="2xx") == 100_000
    )


def test_datadog_lines_are_exact_bytes(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, prefix="edge", constant_tags={"pop": "fra1"})
    metrics.invite_result("inbound", 486)
    metrics.observe_call_qos(rtt_ms=12.5)
    metrics.flush()
    receiver.wait_for(lambda t: t.lines >= 3)
    payload = b"".join(receiver.datagrams()).decode()
    lines = sorted(line.split("|c:")[0] for line in payload.strip().split("\n"))  # origin detection may add |c:
    assert lines == [
        "edge.sip_call_quality_total:1|c|#grade:unknown,pop:fra1",
        "edge.sip_call_rtt_ms:12.5|d|#pop:fra1",
        "edge.sip_invite_response_total:1|c|#direction:inbound,code:486,pop:fra1",
        "edge.sip_invite_result_total:1|c|#direction:inbound,code_class:4xx,pop:fra1",
    ]


@pytest.mark.parametrize(
    ("flavor", "line"),
    [
        ("influxdb", "edge.sip_bye_total,direction=outbound,by=local,reason_class=timer-expired,pop=fra1:1|c"),
        ("graphite", "edge.sip_bye_total;direction=outbound;by=local;reason_class=timer-expired;pop=fra1:1|c"),
        ("plain", "edge.sip_bye_total.outbound.local.timer-expired:1|c"),
    ],
)
def test_statsd_flavors_are_exact_bytes(flavor, line, receiver, make_metrics):
    tags = {} if flavor == "plain" else {"pop": "fra1"}
    metrics = make_metrics(
        backend="statsd", flavor=flavor, host=receiver.host, port=receiver.port, prefix="edge", constant_tags=tags
    )
    metrics.bye_outbound("local", "timer-expired")
    metrics.flush()
    receiver.wait_for(lambda t: t.lines >= 1)
    assert receiver.datagrams() == [line.encode() + b"\n"]


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_unix_datagram_socket(backend, tmp_path, make_metrics):
    with Receiver(socket_path=str(tmp_path / "dsd.sock")) as receiver:
        metrics = make_metrics(**wire_options(backend, receiver))
        for _ in range(10):
            metrics.dtls_handshake("timeout")
        metrics.flush()
        totals = receiver.wait_for(lambda t: t.lines >= 1)
        assert wire_count(totals, backend[1], sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="timeout") == 10


def test_datadog_backend_reads_the_dd_environment(receiver, make_metrics, monkeypatch):
    monkeypatch.setenv("DD_AGENT_HOST", receiver.host)
    monkeypatch.setenv("DD_DOGSTATSD_PORT", str(receiver.port))
    monkeypatch.setenv("DD_ENV", "staging")
    monkeypatch.setenv("DD_SERVICE", "b2bua")
    monkeypatch.delenv("DD_DOGSTATSD_URL", raising=False)
    metrics = make_metrics()
    metrics.stir_verify("verified")
    metrics.flush()
    totals = receiver.wait_for(lambda t: t.lines >= 1)
    assert totals.count(sm.METRIC_STIR_VERIFY_TOTAL, result="verified", env="staging", service="b2bua") == 1


def test_dd_dogstatsd_url_unix_socket(tmp_path, make_metrics, monkeypatch):
    path = str(tmp_path / "agent.sock")
    with Receiver(socket_path=path) as receiver:
        monkeypatch.setenv("DD_DOGSTATSD_URL", f"unix://{path}")
        metrics = make_metrics()
        metrics.voice_attach_native(False)
        metrics.flush()
        totals = receiver.wait_for(lambda t: t.lines >= 1)
        assert totals.count(sm.METRIC_VOICE_ATTACH_NATIVE_TOTAL, result="err") == 1


def test_configure_again_flushes_to_the_old_backend_first(make_metrics):
    with Receiver() as first, Receiver() as second:
        metrics = make_metrics(host=first.host, port=first.port, flush_interval=3600)
        metrics.invite_result("inbound", 200)
        metrics.configure(backend="statsd", host=second.host, port=second.port, flush_interval=3600)
        metrics.invite_result("inbound", 200)
        metrics.invite_result("inbound", 200)
        metrics.flush()
        assert first.wait_for(lambda t: t.lines >= 1).count(sm.METRIC_INVITE_RESULT_TOTAL) == 1
        assert second.wait_for(lambda t: t.lines >= 1).count(sm.METRIC_INVITE_RESULT_TOTAL) == 2


def test_periodic_flush_without_calling_flush(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=0.05)
    metrics.session_timer_refresh("481")
    totals = receiver.wait_for(lambda t: t.lines >= 1, timeout=10)
    assert totals.count(sm.METRIC_SESSION_TIMER_REFRESH_TOTAL, result="481") == 1


def test_off_backend_sends_nothing_and_keeps_working(receiver, make_metrics):
    metrics = make_metrics(backend="off")
    metrics.invite_result("inbound", 200)
    assert metrics.flush()
    assert metrics.stats().flushes >= 1
    assert receiver.datagrams() == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_nothing_lost_on_close(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    for _ in range(5):
        metrics.stir_verify("failed")
    assert metrics.close()
    totals = receiver.wait_for(lambda t: t.lines >= 1)
    assert totals.count(sm.METRIC_STIR_VERIFY_TOTAL, result="failed") == 5
    metrics.stir_verify("failed")  # recorded after close: kept for an explicit flush
    metrics.flush()
    assert receiver.wait_for(lambda t: t.lines >= 2).count(sm.METRIC_STIR_VERIFY_TOTAL) == 6
