"""Registration KPIs (RFC 6076 RRD, IRA), the contacts gauge, STIR attestation, a measured zero."""

from __future__ import annotations

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver
from sip_statsd.testing import capture_metrics


@pytest.mark.parametrize(
    ("code", "result"),
    [(200, "success"), (202, "success"), (401, "challenged"), (407, "challenged"), (408, "timeout"),
     (403, "failure"), (302, "failure"), (503, "failure"), (603, "failure")],
)  # fmt: skip
def test_a_register_final_response_counts_as_rfc_6076_reads_it(code: int, result: str):
    metrics = sm.SipMetrics(backend="off")
    with capture_metrics(metrics=metrics) as cap:
        metrics.register_result("inbound", code)
    metrics.close()
    assert cap.count(sm.METRIC_REGISTER_RESULT_TOTAL, direction="inbound", result=result) == 1


@pytest.mark.parametrize("bad", [(("sideways", 200)), (("inbound", 180)), (("inbound", 700)), (("inbound", "200"))])
def test_a_provisional_or_bad_register_result_is_dropped_and_counted(bad: tuple[str, object]):
    metrics = sm.SipMetrics(backend="off")
    with capture_metrics(metrics=metrics, strict=False) as cap:
        metrics.register_result(*bad)  # type: ignore[arg-type]
    assert cap.count(sm.METRIC_REGISTER_RESULT_TOTAL) == 0
    assert metrics.stats().dropped_inputs == {(sm.METRIC_REGISTER_RESULT_TOTAL, "unknown_value"): 1}
    metrics.close()


def test_registration_kpis_on_the_wire(receiver: Receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    for code in (401, 200, 401, 200, 403, 408, 407):
        metrics.register_result("outbound", code)
    metrics.observe_registration_delay("outbound", 41.5, True)
    metrics.observe_registration_delay("outbound", 32000.0, False)
    metrics.registered_contacts(17)
    metrics.stir_verify("verified", attestation="A")
    metrics.stir_verify("verified", attestation="C")
    metrics.stir_verify("verified")
    assert metrics.flush(10)
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_STIR_VERIFY_TOTAL) >= 3 and t.lines >= 9)
    count = totals.count
    assert count(sm.METRIC_REGISTER_RESULT_TOTAL, result="challenged") == 3
    assert count(sm.METRIC_REGISTER_RESULT_TOTAL, result="success") == 2
    assert count(sm.METRIC_REGISTER_RESULT_TOTAL, result="failure") == 1
    assert count(sm.METRIC_REGISTER_RESULT_TOTAL, result="timeout") == 1
    assert totals.sample_list(sm.METRIC_REGISTRATION_REQUEST_DELAY_MS, result="success") == [41.5]
    assert totals.sample_list(sm.METRIC_REGISTRATION_REQUEST_DELAY_MS, result="failure") == [32000.0]
    assert totals.gauge(sm.METRIC_REGISTERED_CONTACTS) == 17
    assert count(sm.METRIC_STIR_VERIFY_TOTAL, result="verified") == 3  # as before: every verification
    assert count(sm.METRIC_STIR_ATTESTATION_TOTAL, result="verified", attestation="A") == 1
    assert count(sm.METRIC_STIR_ATTESTATION_TOTAL, result="verified", attestation="C") == 1
    assert count(sm.METRIC_STIR_ATTESTATION_TOTAL) == 2


def test_an_unknown_attestation_is_dropped_the_verification_still_counted():
    metrics = sm.SipMetrics(backend="off")
    with capture_metrics(metrics=metrics, strict=False) as cap:
        metrics.stir_verify("failed", attestation="D")
    assert cap.count(sm.METRIC_STIR_VERIFY_TOTAL, result="failed") == 1
    assert metrics.stats().dropped_inputs == {(sm.METRIC_STIR_ATTESTATION_TOTAL, "unknown_value"): 1}
    metrics.close()


def test_a_measured_zero_is_a_sample_only_when_the_caller_says_so(receiver: Receiver, make_metrics):
    """The origin's rule (zero is no data) by default; `zero_is_measured=True` records RTCP's 0 lost."""
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.observe_call_qos(rtt_ms=20.0, jitter_ms=0.0, loss_fraction=0.0, mos_estimate=4.4)
    metrics.observe_call_qos(rtt_ms=21.0, jitter_ms=0.0, loss_fraction=0.0, mos_estimate=4.4, zero_is_measured=True)
    metrics.observe_call_qos(rtt_ms=22.0, jitter_ms=3.0, loss_fraction=0, zero_is_measured=True)
    metrics.observe_call_qos(rtt_ms=23.0, loss_fraction=0.02, zero_is_measured=True)
    metrics.observe_call_qos(rtt_ms=-1.0, loss_fraction=None, zero_is_measured=True)  # still no data
    assert metrics.flush(10)
    totals = receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_RTT_MS)) >= 4)
    assert sorted(totals.sample_list(sm.METRIC_CALL_LOSS_FRACTION)) == [0.0, 0.0, 0.02]
    assert sorted(totals.sample_list(sm.METRIC_CALL_JITTER_MS)) == [0.0, 3.0]
    assert totals.sample_list(sm.METRIC_CALL_RTT_MS) == [20.0, 21.0, 22.0, 23.0]
    assert metrics.stats().dropped_inputs == {}


@pytest.mark.parametrize("bad", [-1, 1.5, 2**70, True, float("nan"), "5", None])
def test_registered_contacts_takes_only_a_bounded_non_negative_integer(bad: object) -> None:
    """A count of contacts: a bad one is a counted drop, raised under strict (issue 27 probe)."""
    metrics = sm.SipMetrics(backend="off")
    with pytest.raises(ValueError, match="sip_registered_contacts: count="), capture_metrics(metrics=metrics):
        metrics.registered_contacts(bad)  # type: ignore[arg-type]
    metrics.registered_contacts(bad)  # type: ignore[arg-type]
    assert metrics.stats().dropped_inputs == {(sm.METRIC_REGISTERED_CONTACTS, "invalid_number"): 1}
    metrics.close()


def test_an_attestation_with_no_identity_is_dropped_the_verification_still_counted() -> None:
    """No PASSporT, no attestation: `stir_verify("no-identity", attestation="A")` counts the verification only."""
    metrics = sm.SipMetrics(backend="off")
    with capture_metrics(metrics=metrics, strict=False) as cap:
        metrics.stir_verify("no-identity", attestation="A")
    assert cap.count(sm.METRIC_STIR_VERIFY_TOTAL, result="no-identity") == 1
    assert cap.count(sm.METRIC_STIR_ATTESTATION_TOTAL) == 0
    assert metrics.stats().dropped_inputs == {(sm.METRIC_STIR_ATTESTATION_TOTAL, "unknown_value"): 1}
    metrics.close()


def test_a_measured_negative_zero_goes_out_as_zero(receiver: Receiver, make_metrics) -> None:
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.observe_call_qos(rtt_ms=20.0, jitter_ms=-0.0, loss_fraction=-0.0, zero_is_measured=True)
    assert metrics.flush(10)
    receiver.wait_for(lambda t: len(t.sample_list(sm.METRIC_CALL_LOSS_FRACTION)) >= 1)
    text = b"".join(receiver.datagrams()).decode()
    assert ":-0" not in text, text
    assert "sip_call_loss_fraction:0|" in text or "sip_call_loss_fraction:0.0|" in text, text
