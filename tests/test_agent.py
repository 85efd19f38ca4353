"""DogStatsD as today's Agent and clients speak it (issue 18): real sockets, exact bytes."""

from __future__ import annotations

import os
import socket
import struct

import pytest
from conftest import WIRE_BACKENDS, wire_count, wire_options, wire_samples

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_every_datagram_ends_with_a_newline(backend, receiver, make_metrics):
    """An Agent with dogstatsd_eol_required drops a last line without one."""
    metrics = make_metrics(**wire_options(backend, receiver))
    for code in range(100, 700):
        metrics.invite_result("inbound", code)
        metrics.observe_call_qos(rtt_ms=code / 7, jitter_ms=3.5, loss_fraction=0.01, mos_estimate=4.1)
    metrics.flush()
    totals = receiver.wait_for(
        lambda t: (
            wire_count(t, backend[1], sm.METRIC_INVITE_RESULT_TOTAL) >= 600
            and len(wire_samples(t, backend[1], sm.METRIC_CALL_MOS_ESTIMATE)) >= 600
        )
    )
    datagrams = receiver.datagrams()
    assert wire_count(totals, backend[1], sm.METRIC_INVITE_RESULT_TOTAL) == 600
    assert len(datagrams) > 1
    assert all(d.endswith(b"\n") and not d.endswith(b"\n\n") for d in datagrams)
    assert all(len(d) <= 1432 for d in datagrams)


def agent_lines(receiver, make_metrics, **options) -> list[str]:
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600, **options)
    metrics.stir_verify("verified")
    metrics.observe_call_qos(rtt_ms=42.0)
    assert metrics.flush()
    receiver.wait_for(lambda t: t.lines >= 3)
    return [line for d in receiver.datagrams() for line in d.decode().split("\n") if line]


@pytest.fixture
def no_origin_env(monkeypatch):
    for variable in ("DD_CARDINALITY", "DATADOG_CARDINALITY", "DD_EXTERNAL_ENV", "DD_ORIGIN_DETECTION_ENABLED"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "option", "field"),
    [
        ({}, None, None),
        ({"DD_CARDINALITY": "orchestrator"}, None, "|card:orchestrator"),
        ({"DATADOG_CARDINALITY": "LOW"}, None, "|card:low"),
        ({"DD_CARDINALITY": "bogus", "DATADOG_CARDINALITY": "high"}, None, "|card:high"),
        ({"DD_CARDINALITY": "low"}, "high", "|card:high"),
    ],
)
def test_cardinality_is_sent_only_when_set(env, option, field, receiver, make_metrics, no_origin_env):
    """datadog-go reads DD_CARDINALITY, then DATADOG_CARDINALITY; the Agent 7.64+ reads |card:."""
    for variable, value in env.items():
        no_origin_env.setenv(variable, value)
    lines = agent_lines(receiver, make_metrics, **({"cardinality": option} if option else {}))
    if field is None:
        assert not any("|card:" in line for line in lines)
    else:
        assert all(line.endswith(field) for line in lines), lines


def test_a_bad_cardinality_is_refused_quoting_it():
    with pytest.raises(ValueError, match="'medium'"):
        sm.SipMetrics(cardinality="medium")


@pytest.mark.parametrize(("enabled", "sent"), [(None, True), ("true", True), ("false", False), ("0", False)])
def test_external_env_only_with_origin_detection(enabled, sent, receiver, make_metrics, no_origin_env):
    """datadog-go sends |e: (DD_EXTERNAL_ENV) only while origin detection is on (the default)."""
    no_origin_env.setenv("DD_EXTERNAL_ENV", "it-false,cn-sip,pu-42")
    if enabled is not None:
        no_origin_env.setenv("DD_ORIGIN_DETECTION_ENABLED", enabled)
    lines = agent_lines(receiver, make_metrics)
    assert all(("|e:it-false,cn-sip,pu-42" in line) == sent for line in lines), lines


def test_external_env_cannot_forge_a_line(receiver, make_metrics, no_origin_env):
    """A newline or a `|` in DD_EXTERNAL_ENV is user data: stripped, as datadog-go strips it."""
    no_origin_env.setenv("DD_EXTERNAL_ENV", "it-false\nsip_bye_total:1000000|c|#x:y")
    lines = agent_lines(receiver, make_metrics)
    assert len(lines) == 3
    assert not any(line.startswith("sip_bye_total") for line in lines)
    assert all("|e:it-falsesip_bye_total:1000000c#x:y" in line for line in lines), lines


def test_no_private_attribute_of_the_datadog_client_is_needed(tmp_path, make_metrics, monkeypatch):
    """The address, the Unix socket and the origin fields are ours: datadog's private API may change."""
    from datadog.dogstatsd.base import DogStatsd

    def gone(*args, **kwargs):
        raise AssertionError("private datadog API used")

    monkeypatch.setattr(DogStatsd, "_get_uds_socket", gone, raising=False)
    monkeypatch.setattr(DogStatsd, "__init__", gone)
    path = str(tmp_path / "dsd.sock")
    with Receiver(socket_path=path) as agent:
        monkeypatch.setenv("DD_DOGSTATSD_URL", f"unixgram://{path}")
        metrics = make_metrics(flush_interval=3600)
        metrics.dtls_handshake("ok")
        assert metrics.flush()
        totals = agent.wait_for(lambda t: t.lines >= 1)
        assert totals.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="ok") == 1
        assert metrics.stats().send_errors == {}


def test_a_stream_socket_named_unixstream(tmp_path, make_metrics, monkeypatch):
    """unixstream:// (datadogpy and datadog-go): length-prefixed datagrams on a stream socket."""
    path = str(tmp_path / "dsd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(5)
    try:
        monkeypatch.setenv("DD_DOGSTATSD_URL", f"unixstream://{path}")
        metrics = make_metrics(flush_interval=3600)
        metrics.dtls_handshake("ok")
        assert metrics.flush()
        conn, _ = server.accept()
        conn.settimeout(5)
        size = struct.unpack("<I", conn.recv(4, socket.MSG_WAITALL))[0]
        assert conn.recv(size, socket.MSG_WAITALL).startswith(b"sip_dtls_handshake_total:1|c|#result:ok")
        conn.close()
    finally:
        server.close()


def test_an_agent_restarted_on_the_same_path_is_found_while_the_old_socket_lingers(tmp_path, make_metrics):
    """The Agent unlinks and binds its path again; the old socket stays open (its last holder lives on)."""
    path = str(tmp_path / "dsd.sock")
    old = Receiver(socket_path=path)
    try:
        metrics = make_metrics(socket_path=path, flush_interval=3600)
        metrics.dtls_handshake("ok")
        assert metrics.flush()
        old.wait_for(lambda t: t.lines >= 1)
        os.unlink(path)  # the restart: a new socket at the same path, the old one still open
        with Receiver(socket_path=path) as new:
            for _ in range(3):
                metrics.dtls_handshake("fail")
            assert metrics.flush()
            totals = new.wait_for(lambda t: t.lines >= 1, timeout=3)
            assert totals.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="fail") == 3
        assert old.totals().count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="fail") == 0
    finally:
        old.socket_path = None  # its path is the new one's, already removed
        old.close()


def full_precision_calls(n: int) -> list[tuple[float, float, float, float]]:
    """RTCP figures as a service has them at full float precision: RTT from 1/65536 s units,
    jitter from 1/8000 s timestamp units, loss in 1/256 steps, MOS straight from estimate_mos."""
    out = []
    for i in range(n):
        rtt = (1300 + i * 37 % 4000) / 65.536
        jitter = (8 + i * 13 % 300) / 8
        loss = (1 + i % 8) / 256
        out.append((rtt, jitter, loss, sm.estimate_mos(rtt, jitter, loss)))
    return out


def test_a_call_at_full_precision_costs_at_most_30_bytes(receiver, make_metrics):
    """4 significant digits by default (the Agent's sketch keeps about 1 %): issue 18 item 7."""
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    calls = full_precision_calls(2000)
    for rtt, jitter, loss, mos in calls:
        metrics.invite_result("inbound", 200)
        metrics.bye("inbound", "remote", "normal")
        metrics.observe_call_qos(rtt, jitter, loss, mos)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_MOS_ESTIMATE)) >= 2000)
    assert totals.bytes / len(calls) <= 30
    got = sorted(totals.sample_list(sm.METRIC_CALL_RTT_MS))
    assert got == pytest.approx(sorted(c[0] for c in calls), rel=5e-4)  # 4 digits: within 0.05 %


def test_precision_none_sends_every_digit(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600, precision=None)
    calls = full_precision_calls(50)
    for rtt, jitter, loss, mos in calls:
        metrics.observe_call_qos(rtt, jitter, loss, mos)
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_MOS_ESTIMATE)) >= 50)
    assert sorted(totals.sample_list(sm.METRIC_CALL_MOS_ESTIMATE)) == sorted(c[3] for c in calls)  # exactly


def test_an_agent_restarted_on_the_same_path_with_the_same_inode_is_found_at_once(tmp_path, make_metrics):
    """Issue 24 item 4: the old socket closed, the new one bound at once; ext4 gives it the same inode."""
    path = str(tmp_path / "dsd.sock")
    with Receiver(socket_path=path) as old:
        metrics = make_metrics(socket_path=path, flush_interval=3600)
        metrics.dtls_handshake("ok")
        assert metrics.flush()
        old.wait_for(lambda t: t.lines >= 1)
        before = os.stat(path).st_ino
    with Receiver(socket_path=path) as new:
        reused = os.stat(path).st_ino == before
        for _ in range(100):
            metrics.dtls_handshake("fail")
        assert metrics.flush()
        totals = new.wait_for(lambda t: t.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="fail") >= 100, timeout=3)
        assert totals.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result="fail") == 100, f"inode reused: {reused}"
    assert metrics.stats().send_errors == {}
