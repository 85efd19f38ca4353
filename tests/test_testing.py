"""The capture API: counts, samples, near misses, strictness and restoring what was there."""

from __future__ import annotations

import pytest

import sip_statsd as sm
from sip_statsd.testing import capture_metrics


def test_count_sums_over_matching_series():
    with capture_metrics() as cap:
        sm.invite_result("inbound", 200)
        sm.invite_result("outbound", 200)
        sm.invite_result("outbound", 404)
        assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL) == 3
        assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx") == 2
        assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL, direction="outbound", code_class="4xx") == 1


def test_assert_count_failure_shows_near_misses():
    with capture_metrics() as cap:
        sm.invite_result("inbound", 486)
        with pytest.raises(AssertionError) as err:
            cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 1, direction="inbound", code_class="2xx")
    text = str(err.value)
    assert "expected 1, got 0" in text
    assert "sip_invite_result_total{direction=inbound,code_class=4xx} = 1" in text


def test_assert_count_when_the_metric_was_not_recorded_lists_what_was():
    with capture_metrics() as cap:
        sm.dtls_handshake("ok")
        with pytest.raises(AssertionError, match=r"nothing recorded for this metric; recorded:\n  sip_dtls"):
            cap.assert_count(sm.METRIC_STIR_VERIFY_TOTAL, 1)


def test_assert_samples_failure_shows_what_was_recorded():
    with capture_metrics() as cap:
        sm.observe_call_qos(rtt_ms=10.0)
        cap.assert_samples(sm.METRIC_CALL_RTT_MS, [10.0])
        with pytest.raises(AssertionError, match=r"expected samples \[11.0\], got \[10.0\]"):
            cap.assert_samples(sm.METRIC_CALL_RTT_MS, [11.0])


def test_typos_in_queries_raise_instead_of_reading_zero():
    with capture_metrics() as cap:
        with pytest.raises(ValueError, match="did you mean"):
            cap.count("sip_invite_results_total")
        with pytest.raises(ValueError, match="has no label 'code'"):
            cap.count(sm.METRIC_INVITE_RESULT_TOTAL, code="2xx")
        with pytest.raises(ValueError, match="not one of"):
            cap.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2XX")


def test_capture_is_strict_by_default_and_soft_on_request():
    with capture_metrics(), pytest.raises(ValueError):
        sm.stir_verify("maybe")
    with capture_metrics(strict=False) as cap:
        sm.stir_verify("maybe")
        cap.assert_count(sm.METRIC_DROPPED_INPUTS_TOTAL, 1, metric=sm.METRIC_STIR_VERIFY_TOTAL)


def test_previous_configuration_is_restored():
    before = sm.default().config
    with capture_metrics():
        assert sm.default().config.backend == "memory"
        assert sm.default().config.strict
    assert sm.default().config == before
    sm.stir_verify("maybe")  # soft again outside the block: no exception


def test_nested_captures_keep_the_outer_capture_whole():
    with capture_metrics() as outer:
        sm.invite_result("inbound", 200)
        with capture_metrics() as inner:
            sm.invite_result("inbound", 200)
            assert inner.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1
        sm.invite_result("inbound", 200)
        assert outer.count(sm.METRIC_INVITE_RESULT_TOTAL) == 2


def test_recorded_and_clear():
    with capture_metrics() as cap:
        sm.voice_attach_native(True)
        sm.observe_call_qos(jitter_ms=3.0)
        assert cap.recorded() == {
            "sip_call_jitter_ms{}": [3.0],
            "sip_call_quality_total{grade=unknown}": 1,
            "sip_voice_attach_native_total{result=ok}": 1,
        }
        cap.clear()
        assert cap.recorded() == {}


def test_assert_gauge_failure_shows_the_levels_sent(make_metrics):
    metrics = make_metrics(backend="memory")
    with capture_metrics(metrics=metrics) as cap:
        metrics.call_started("outbound")
        cap.assert_gauge(sm.METRIC_ACTIVE_CALLS, None, direction="inbound")  # never sent
        with pytest.raises(AssertionError) as err:
            cap.assert_gauge(sm.METRIC_ACTIVE_CALLS, 2, direction="outbound")
        with pytest.raises(ValueError, match="sip_active_calls: direction='sideways'"):
            cap.gauge(sm.METRIC_ACTIVE_CALLS, direction="sideways")
        assert cap.recorded() == {"sip_active_calls{direction=outbound}": 1}
    text = str(err.value)
    assert "expected level 2, got 1" in text
    assert "sip_active_calls{direction=outbound} = 1" in text
