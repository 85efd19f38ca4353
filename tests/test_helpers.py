"""The eleven SIP helpers: every allowed value, the code and method mappings, QoS rules."""

from __future__ import annotations

import math

import pytest

import sip_statsd as sm
from sip_statsd import InvalidInputError
from sip_statsd.testing import capture_metrics

DROPPED = sm.METRIC_DROPPED_INPUTS_TOTAL


@pytest.mark.parametrize("direction", ["inbound", "outbound", sm.Direction.INBOUND, sm.DIRECTION_OUTBOUND])
@pytest.mark.parametrize(
    ("code", "code_class"),
    [(100, "1xx"), (180, "1xx"), (200, "2xx"), (302, "3xx"), (486, "4xx"), (503, "5xx"), (603, "6xx"), (699, "6xx")],
)
def test_invite_result_maps_code_to_class(direction, code, code_class):
    with capture_metrics() as cap:
        sm.invite_result(direction, code)
        cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 1, direction=str(direction), code_class=code_class)
        assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1


def test_invite_result_every_code_lands_in_its_class():
    with capture_metrics() as cap:
        for code in range(100, 700):
            sm.invite_result("inbound", code)
        for cls in sm.CODE_CLASSES:
            cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 100, direction="inbound", code_class=cls)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("sideways", 200), "direction"),
        (("Inbound", 200), "direction"),
        (("inbound", 99), "code"),
        (("inbound", 700), "code"),
        (("inbound", "200"), "code"),
        (("inbound", None), "code"),
        (("inbound", 200.5), "code"),
        (([], 200), "direction"),
        (("inbound", {}), "code"),
    ],
)
def test_invite_result_bad_input_is_dropped_and_counted_or_raised_strict(args, key):
    with capture_metrics(strict=False) as cap:
        sm.invite_result(*args)
        assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL) == 0
        cap.assert_count(DROPPED, 1, metric=sm.METRIC_INVITE_RESULT_TOTAL, reason="unknown_value")
    with capture_metrics(), pytest.raises(InvalidInputError, match=rf"sip_invite_result_total: {key}="):
        sm.invite_result(*args)


def test_bye_every_combination_and_bye_outbound():
    with capture_metrics() as cap:
        for d in sm.DIRECTIONS:
            for by in sm.BY_SIDES:
                for reason in sm.BYE_REASONS:
                    sm.bye(d, by, reason)
        for by in sm.BY_SIDES:
            for reason in sm.BYE_REASONS:
                sm.bye_outbound(by, reason)
        for by in sm.BY_SIDES:
            for reason in sm.BYE_REASONS:
                cap.assert_count(sm.METRIC_BYE_TOTAL, 1, direction="inbound", by=by, reason_class=reason)
                cap.assert_count(sm.METRIC_BYE_TOTAL, 2, direction="outbound", by=by, reason_class=reason)
        assert cap.count(sm.METRIC_BYE_TOTAL) == 16 + 8


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("inbound", "us", "normal"), "by"),
        (("inbound", "local", "timer_expired"), "reason_class"),
        (("in", "local", "normal"), "direction"),
    ],
)
def test_bye_strict_names_the_bad_argument(args, key):
    with capture_metrics(), pytest.raises(ValueError, match=rf"sip_bye_total: {key}="):
        sm.bye(*args)
    with capture_metrics(), pytest.raises(ValueError, match=r"sip_bye_total: by="):
        sm.bye_outbound("nobody", "normal")


@pytest.mark.parametrize("method", sm.METHODS)
def test_transaction_timeout_every_declared_method(method):
    with capture_metrics() as cap:
        sm.transaction_timeout(method)
        cap.assert_count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, 1, method=method)


@pytest.mark.parametrize("method", ["invite", "Invite", "FOO", "", None, 42, ["INVITE"], "INVITE "])
def test_transaction_timeout_anything_else_is_other_even_strict(method):
    with capture_metrics() as cap:
        sm.transaction_timeout(method)
        cap.assert_count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, 1, method="other")
        cap.assert_count(DROPPED, 0)


@pytest.mark.parametrize(
    ("helper", "metric", "values"),
    [
        (sm.session_timer_refresh, sm.METRIC_SESSION_TIMER_REFRESH_TOTAL, sm.REFRESH_RESULTS),
        (sm.dtls_handshake, sm.METRIC_DTLS_HANDSHAKE_TOTAL, sm.DTLS_RESULTS),
        (sm.stir_verify, sm.METRIC_STIR_VERIFY_TOTAL, sm.STIR_RESULTS),
    ],
)
def test_result_helpers_every_value_and_a_bad_one(helper, metric, values):
    with capture_metrics() as cap:
        for v in values:
            helper(v)
            helper(str(v))
        for v in values:
            cap.assert_count(metric, 2, result=str(v))
        with pytest.raises(ValueError, match=rf"{metric}: result='bogus' is not one of"):
            helper("bogus")
    with capture_metrics(strict=False) as cap:
        helper("bogus")
        helper(None)
        cap.assert_count(DROPPED, 2, metric=metric, reason="unknown_value")
        assert cap.count(metric) == 0


def test_session_timer_refresh_constants():
    with capture_metrics() as cap:
        sm.session_timer_refresh(sm.REFRESH_422_BUMPED)
        sm.session_timer_refresh(sm.RefreshResult.CALL_DOES_NOT_EXIST_481)
        cap.assert_count(sm.METRIC_SESSION_TIMER_REFRESH_TOTAL, 1, result="422-bumped")
        cap.assert_count(sm.METRIC_SESSION_TIMER_REFRESH_TOTAL, 1, result="481")


def test_voice_attach_modes_and_results():
    with capture_metrics() as cap:
        sm.voice_attach("cascaded", True)
        sm.voice_attach(sm.VoiceMode.REALTIME, False)
        sm.voice_attach("realtime", False)
        cap.assert_count(sm.METRIC_VOICE_ATTACH_TOTAL, 1, mode="cascaded", result="ok")
        cap.assert_count(sm.METRIC_VOICE_ATTACH_TOTAL, 2, mode="realtime", result="config_error")
        with pytest.raises(ValueError, match="mode='pipeline'"):
            sm.voice_attach("pipeline", True)
        with pytest.raises(ValueError, match=r"ok='yes' is not True or False"):
            sm.voice_attach("realtime", "yes")  # type: ignore[arg-type]


def test_voice_attach_mode_fallback_and_native():
    with capture_metrics() as cap:
        sm.voice_attach_mode_fallback("pipeline", "realtime")
        sm.voice_attach_native(True)
        sm.voice_attach_native(False)
        sm.voice_attach_native(False)
        cap.assert_count(sm.METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL, 1, **{"from": "pipeline", "to": "realtime"})
        cap.assert_count(sm.METRIC_VOICE_ATTACH_NATIVE_TOTAL, 1, result="ok")
        cap.assert_count(sm.METRIC_VOICE_ATTACH_NATIVE_TOTAL, 2, result="err")
        with pytest.raises(ValueError, match="to='cascaded'"):
            sm.voice_attach_mode_fallback("pipeline", "cascaded")
        with pytest.raises(ValueError, match="sip_voice_attach_native_total: ok="):
            sm.voice_attach_native("maybe")  # type: ignore[arg-type]


def test_observe_call_qos_records_each_value_once():
    with capture_metrics() as cap:
        sm.observe_call_qos(rtt_ms=38.5, jitter_ms=4.2, loss_fraction=0.003, mos_estimate=4.3)
        sm.observe_call_qos(rtt_ms=120, mos_estimate=1)
        cap.assert_samples(sm.METRIC_CALL_RTT_MS, [38.5, 120])
        cap.assert_samples(sm.METRIC_CALL_JITTER_MS, [4.2])
        cap.assert_samples(sm.METRIC_CALL_LOSS_FRACTION, [0.003])
        cap.assert_samples(sm.METRIC_CALL_MOS_ESTIMATE, [4.3, 1])


@pytest.mark.parametrize("no_data", [None, math.nan, math.inf, -math.inf, 0, 0.0, -1, -0.5])
def test_observe_call_qos_skips_no_data_silently(no_data):
    with capture_metrics() as cap:  # strict: a skip must not raise
        sm.observe_call_qos(rtt_ms=no_data, jitter_ms=no_data, loss_fraction=no_data, mos_estimate=no_data)
        for name in (
            sm.METRIC_CALL_RTT_MS,
            sm.METRIC_CALL_JITTER_MS,
            sm.METRIC_CALL_LOSS_FRACTION,
            sm.METRIC_CALL_MOS_ESTIMATE,
        ):
            cap.assert_samples(name, [])
        cap.assert_count(DROPPED, 0)


@pytest.mark.parametrize(
    ("kwargs", "metric"),
    [
        ({"loss_fraction": 1.01}, sm.METRIC_CALL_LOSS_FRACTION),
        ({"mos_estimate": 0.5}, sm.METRIC_CALL_MOS_ESTIMATE),
        ({"mos_estimate": 5.5}, sm.METRIC_CALL_MOS_ESTIMATE),
        ({"rtt_ms": "12"}, sm.METRIC_CALL_RTT_MS),
        ({"jitter_ms": True}, sm.METRIC_CALL_JITTER_MS),
        ({"rtt_ms": 2e308}, None),
    ],
)
def test_observe_call_qos_invalid_values_are_dropped_and_counted(kwargs, metric):
    with capture_metrics(strict=False) as cap:
        sm.observe_call_qos(**kwargs)
        if metric is None:  # 2e308 is inf: skipped, not dropped
            cap.assert_count(DROPPED, 0)
        else:
            cap.assert_count(DROPPED, 1, metric=metric, reason="invalid_number")
            assert cap.samples(metric) == []
    if metric is not None:
        with capture_metrics(), pytest.raises(ValueError, match=rf"{metric}: value="):
            sm.observe_call_qos(**kwargs)


def test_every_metric_name_and_value_is_a_module_constant_and_enum_member():
    assert sm.Direction.INBOUND == sm.DIRECTION_INBOUND == "inbound"
    assert sm.ByeReason.TIMER_EXPIRED == sm.BYE_REASON_TIMER_EXPIRED == "timer-expired"
    assert sm.REFRESH_422_BUMPED == sm.RefreshResult.BUMPED_422 == "422-bumped"
    assert sm.DtlsResult.FINGERPRINT_MISMATCH == "fingerprint-mismatch"
    assert sm.StirResult.NO_IDENTITY == "no-identity"
    names = {f.name for f in sm.catalog.families}
    assert names == {getattr(sm, n) for n in dir(sm) if n.startswith("METRIC_") and "sip_statsd_" not in getattr(sm, n)}
    assert len(names) == 24  # the origin's 13, the 5 KPIs, the 2 call-quality counters, 3 registration, 1 STIR


def test_catalog_declares_label_keys_in_contract_order():
    cat = sm.catalog
    assert cat.invite_result.label_keys == ("direction", "code_class")
    assert cat.bye.label_keys == ("direction", "by", "reason_class")
    assert cat.transaction_timeout.label_keys == ("method",)
    assert cat.voice_attach.label_keys == ("mode", "result")
    assert cat.voice_attach_mode_fallback.label_keys == ("from", "to")
    assert cat.voice_attach_native.label_keys == ("result",)
    assert cat.call_rtt_ms.label_keys == ()
    assert cat.invite_response.label_keys == ("direction", "code")
    assert cat.request_result.label_keys == ("direction", "method", "code_class")
    assert cat.active_calls.label_keys == ("direction",)
    assert cat.call_duration_s.label_keys == ("direction",)
    assert cat.session_request_delay_ms.label_keys == ("direction", "result")
    series = sum(len(f.all_series) for f in cat.families)
    assert cat.call_quality.label_keys == ("grade",)
    assert cat.call_quality_issue.label_keys == ("issue",)
    origin = 12 + 16 + 15 + 5 + 4 + 4 + 4 + 1 + 2 + 4
    beyond = 2 * (len(sm.DEFAULT_RESPONSE_CODES) + 6) + 2 * 13 * 6 + 2 + 2 + 2 * 2
    quality = 7 + 4
    registration = 2 * 4 + 2 * 2 + 1 + 4 * 3  # results, RRD, contacts; STIR attestation
    assert cat.register_result.label_keys == ("direction", "result")
    assert cat.stir_attestation.label_keys == ("result", "attestation")
    assert series == origin + beyond + quality + registration


def test_instances_are_independent():
    a = sm.SipMetrics(backend="memory")
    b = sm.SipMetrics(backend="memory")
    try:
        with capture_metrics(metrics=a) as cap_a, capture_metrics(metrics=b) as cap_b:
            a.invite_result("inbound", 200)
            a.invite_result("inbound", 200)
            b.invite_result("inbound", 200)
            assert cap_a.count(sm.METRIC_INVITE_RESULT_TOTAL) == 2
            assert cap_b.count(sm.METRIC_INVITE_RESULT_TOTAL) == 1
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: sm.bye(sm.Direction.INBOUND, sm.ByeReason.NORMAL, sm.BYE_REASON_NORMAL),
            "sip_bye_total: by='normal' (ByeReason.NORMAL) is not one of ['local', 'remote'] (unknown_value)",
        ),
        (
            lambda: sm.request_result("sideways", "BYE", 200),
            "sip_request_result_total: direction='sideways' is not one of ['inbound', 'outbound'] (unknown_value)",
        ),
        (
            lambda: sm.call_ended(sm.DIRECTION_INBOUND, duration_s=-1.0),
            "sip_call_duration_s: value=-1.0 is not a finite number >= 0 (invalid_number)",
        ),
        (
            lambda: sm.observe_call_qos(mos_estimate=7.0),
            "sip_call_mos_estimate: value=7.0 is not a finite number from 1 to 5 (invalid_number)",
        ),
    ],
    ids=["enum-value", "allowed-values", "unbounded", "bounded"],
)
def test_strict_messages_show_values_as_a_user_writes_them(call, message):
    """No enum reprs (<ByeReason.NORMAL: 'normal'>), no 1.7976931348623157e+308 for 'no upper bound'."""
    with capture_metrics(), pytest.raises(InvalidInputError) as raised:
        call()
    assert str(raised.value) == message
