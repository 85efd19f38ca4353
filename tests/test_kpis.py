"""The helpers beyond the origin: exact codes, non-INVITE outcomes, calls in progress, setup delay."""

from __future__ import annotations

import math
import os
import sys
import threading
import warnings
from fractions import Fraction

import pytest

import sip_statsd as sm
from sip_statsd import InvalidInputError
from sip_statsd._wire.lines import parse_datagram
from sip_statsd.testing import capture_metrics

DROPPED = sm.METRIC_DROPPED_INPUTS_TOTAL
RESPONSE = sm.METRIC_INVITE_RESPONSE_TOTAL
REQUEST = sm.METRIC_REQUEST_RESULT_TOTAL
ACTIVE = sm.METRIC_ACTIVE_CALLS
DURATION = sm.METRIC_CALL_DURATION_S
SRD = sm.METRIC_SESSION_REQUEST_DELAY_MS


# --- sip_invite_response_total ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "series"),
    [(200, "200"), (486, "486"), (487, "487"), (503, "503"), (603, "603"), (180, "1xx"), (499, "4xx"), (699, "6xx")],
)
def test_invite_result_also_counts_the_exact_code_or_its_class(code, series):
    with capture_metrics() as cap:
        sm.invite_result(sm.Direction.OUTBOUND, code)
        cap.assert_count(RESPONSE, 1, direction="outbound", code=series)
        assert cap.count(RESPONSE) == 1
        cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 1, direction="outbound", code_class=f"{code // 100}xx")


def test_default_allowlist_holds_every_code_rfc_6076_needs():
    ser_seer = {200, 480, 486, 600, 603}
    isa = {408, 500, 503, 504}
    assert ser_seer | isa | {487} <= set(sm.DEFAULT_RESPONSE_CODES)
    allowed = sm.catalog.invite_response.allowed["code"]
    assert allowed == (*map(str, sorted(sm.DEFAULT_RESPONSE_CODES)), *sm.CODE_CLASSES)


def test_response_codes_per_instance(make_metrics):
    metrics = make_metrics(backend="memory", response_codes=[183, 486])
    assert metrics.catalog.invite_response.allowed["code"] == ("183", "486", *sm.CODE_CLASSES)
    with capture_metrics(metrics=metrics) as cap:
        for code in (183, 486, 200, 487):
            metrics.invite_result("inbound", code)
        assert cap.recorded() == {
            f"{RESPONSE}{{direction=inbound,code=183}}": 1,
            f"{RESPONSE}{{direction=inbound,code=2xx}}": 1,
            f"{RESPONSE}{{direction=inbound,code=486}}": 1,
            f"{RESPONSE}{{direction=inbound,code=4xx}}": 1,
            f"{sm.METRIC_INVITE_RESULT_TOTAL}{{direction=inbound,code_class=1xx}}": 1,
            f"{sm.METRIC_INVITE_RESULT_TOTAL}{{direction=inbound,code_class=2xx}}": 1,
            f"{sm.METRIC_INVITE_RESULT_TOTAL}{{direction=inbound,code_class=4xx}}": 2,
        }


@pytest.mark.parametrize(
    ("codes", "quoted"),
    [
        ([200, 99], "99"),
        ([700], "700"),
        (["486"], "'486'"),
        ([True], "True"),
        ([486.0], "486.0"),
        ([486, 486], "repeats"),
        (list(range(100, 300)), "at most 100"),
        ("486", "'486'"),
        (486, "486"),
        (None, "None"),
    ],
)
def test_bad_response_codes_raise_quoting_the_value(codes, quoted):
    with pytest.raises(ValueError, match="response_codes") as raised:
        sm.SipMetrics(backend="off", response_codes=codes)
    assert quoted in str(raised.value)


def test_an_empty_allowlist_keeps_classes_only(make_metrics):
    metrics = make_metrics(backend="memory", response_codes=())
    with capture_metrics(metrics=metrics) as cap:
        metrics.invite_result("inbound", 200)
        cap.assert_count(RESPONSE, 1, code="2xx")


def test_invite_counts_made_before_and_after_a_flush_are_in_both_metrics():
    with capture_metrics() as cap:
        sm.invite_result("inbound", 486)
        assert cap.count(RESPONSE, code="486") == 1
        for _ in range(4):
            sm.invite_result("inbound", 486)
        cap.assert_count(RESPONSE, 5, code="486")
        cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 5, code_class="4xx")


def test_a_response_series_inc_n_reaches_the_derived_class_too():
    with capture_metrics() as cap:
        sm.catalog.invite_response.series(direction="inbound", code="503").inc(7)
        cap.assert_count(RESPONSE, 7, code="503")
        cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 7, direction="inbound", code_class="5xx")


def test_an_invite_drop_is_counted_once_under_invite_result():
    with capture_metrics(strict=False) as cap:
        sm.invite_result("inbound", 700)
        assert cap.count(RESPONSE) == 0
        cap.assert_count(DROPPED, 1, metric=sm.METRIC_INVITE_RESULT_TOTAL)
        cap.assert_count(DROPPED, 0, metric=RESPONSE)


# --- request_result -----------------------------------------------------------------------


@pytest.mark.parametrize("method", sm.REQUEST_METHODS)
def test_request_result_every_method(method):
    with capture_metrics() as cap:
        sm.request_result("inbound", method, 200)
        sm.request_result("outbound", method, 481)
        cap.assert_count(REQUEST, 1, direction="inbound", method=str(method), code_class="2xx")
        cap.assert_count(REQUEST, 1, direction="outbound", method=str(method), code_class="4xx")
        assert cap.count(REQUEST) == 2


@pytest.mark.parametrize("method", ["KEEPALIVE", "register", "", None, 42, "INVITE\n"])
def test_request_result_any_other_method_is_other(method):
    with capture_metrics() as cap:
        sm.request_result("inbound", method, 501)
        cap.assert_count(REQUEST, 1, method="other", code_class="5xx")
        cap.assert_count(DROPPED, 0)


def test_request_result_every_code_lands_in_its_class():
    with capture_metrics() as cap:
        for code in range(100, 700):
            sm.request_result("outbound", sm.METHOD_OPTIONS, code)
        for cls in sm.CODE_CLASSES:
            cap.assert_count(REQUEST, 100, method="OPTIONS", code_class=cls)


@pytest.mark.parametrize("method", [sm.METHOD_INVITE, sm.METHOD_ACK, sm.Method.INVITE])
def test_request_result_refuses_invite_and_ack(method):
    with capture_metrics(strict=False) as cap:
        sm.request_result("inbound", method, 200)
        assert cap.count(REQUEST) == 0
        assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL) == 0
        cap.assert_count(DROPPED, 1, metric=REQUEST, reason="unknown_value")
    with capture_metrics(), pytest.raises(InvalidInputError, match=r"sip_request_result_total: method=.*invite_result"):
        sm.request_result("inbound", method, 200)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("sideways", "BYE", 200), "direction"),
        ((None, "BYE", 200), "direction"),
        (([], "BYE", 200), "direction"),
        (("inbound", "BYE", 99), "code"),
        (("inbound", "BYE", 700), "code"),
        (("inbound", "BYE", "200"), "code"),
        (("inbound", "BYE", None), "code"),
        (("inbound", "BYE", 200.5), "code"),
        (("inbound", "BYE", True), "code"),
        (("inbound", "BYE", []), "code"),
    ],
)
def test_request_result_bad_input_is_dropped_and_counted_or_raised_strict(args, key):
    with capture_metrics(strict=False) as cap:
        sm.request_result(*args)
        assert cap.count(REQUEST) == 0
        cap.assert_count(DROPPED, 1, metric=REQUEST, reason="unknown_value")
    with capture_metrics(), pytest.raises(InvalidInputError, match=rf"sip_request_result_total: {key}="):
        sm.request_result(*args)


# --- calls in progress, durations ---------------------------------------------------------


# A gauge is the process's level: a capture reads it as the instance has it, so these tests
# use an instance of their own (calls left in progress by another test would show).


@pytest.fixture
def fresh(make_metrics):
    return make_metrics(backend="memory", flush_interval=3600)


def test_calls_in_progress_go_up_and_back_to_zero_and_zero_is_sent(fresh):
    with capture_metrics(metrics=fresh) as cap:
        assert cap.gauge(ACTIVE) is None  # nothing yet: not sent
        for _ in range(3):
            fresh.call_started("inbound")
        fresh.call_started(sm.Direction.OUTBOUND)
        cap.assert_gauge(ACTIVE, 3, direction="inbound")
        cap.assert_gauge(ACTIVE, 4)
        fresh.call_ended("inbound", duration_s=12.5)
        fresh.call_ended("inbound")
        cap.assert_gauge(ACTIVE, 1, direction="inbound")
        fresh.call_ended("inbound", duration_s=0)
        fresh.call_ended("outbound", duration_s=Fraction(3, 2))
        cap.assert_gauge(ACTIVE, 0, direction="inbound")
        cap.assert_gauge(ACTIVE, 0, direction="outbound")
        assert cap.samples(DURATION, direction="inbound") == [12.5, 0]
        assert cap.samples(DURATION, direction="outbound") == [1.5]
        cap.clear()
        cap.assert_gauge(ACTIVE, 0, direction="inbound")  # still sent on the next flush


@pytest.mark.parametrize("duration", [-1.0, math.nan, math.inf, "12", True, [], object()])
def test_call_ended_with_a_bad_duration_still_ends_the_call(fresh, duration):
    with capture_metrics(metrics=fresh, strict=False) as cap:
        fresh.call_started("inbound")
        fresh.call_ended("inbound", duration_s=duration)
        cap.assert_gauge(ACTIVE, 0, direction="inbound")
        assert cap.samples(DURATION) == []
        cap.assert_count(DROPPED, 1, metric=DURATION, reason="invalid_number")
    with capture_metrics(metrics=fresh), pytest.raises(InvalidInputError, match=r"sip_call_duration_s: value="):
        fresh.call_ended("inbound", duration_s=duration)


@pytest.mark.parametrize("direction", ["sideways", None, [], "Inbound"])
def test_call_started_and_ended_bad_direction_is_dropped_or_raised_strict(fresh, direction):
    with capture_metrics(metrics=fresh, strict=False) as cap:
        fresh.call_started(direction)
        fresh.call_ended(direction, duration_s=3.0)
        assert cap.gauge(ACTIVE) is None
        assert cap.samples(DURATION) == []
        cap.assert_count(DROPPED, 2, metric=ACTIVE, reason="unknown_value")
    for helper in (fresh.call_started, fresh.call_ended):
        with capture_metrics(metrics=fresh), pytest.raises(InvalidInputError, match=r"sip_active_calls: direction="):
            helper(direction)


def test_calls_in_progress_from_eight_threads_are_exact(make_metrics):
    metrics = make_metrics(backend="memory")
    per_thread = 20_000
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        direction = sm.DIRECTIONS[i % 2]
        barrier.wait()
        for n in range(per_thread):
            metrics.call_started(direction)
            metrics.invite_result(direction, 486 if n % 2 else 200)
            if n % 4:  # three of four calls end
                metrics.call_ended(direction, duration_s=1.0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with capture_metrics(metrics=metrics) as cap:
            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cap.assert_gauge(ACTIVE, 4 * per_thread // 4, direction="inbound")
            cap.assert_gauge(ACTIVE, 4 * per_thread // 4, direction="outbound")
            assert len(cap.samples(DURATION)) == 8 * per_thread * 3 // 4
            cap.assert_count(RESPONSE, 4 * per_thread, code="486")
            cap.assert_count(RESPONSE, 4 * per_thread, code="200")
            cap.assert_count(sm.METRIC_INVITE_RESULT_TOTAL, 8 * per_thread)
    finally:
        sys.setswitchinterval(old)


# --- the Gauge family ---------------------------------------------------------------------


def test_gauge_set_inc_dec_and_the_convenient_path(make_metrics):
    metrics = make_metrics(backend="memory")
    depth = metrics.gauge("testsuite_queue_depth", {"queue": ("sip", "media")})
    sip = depth.series(queue="sip")
    with capture_metrics(metrics=metrics) as cap:
        sip.set(10)
        sip.inc()
        sip.inc(2.5)
        sip.dec()
        cap.assert_gauge("testsuite_queue_depth", 12.5, queue="sip")
        sip.set(-3)  # a level may be negative
        cap.assert_gauge("testsuite_queue_depth", -3, queue="sip")
        depth.set(7, queue="media")
        depth.inc(queue="media")
        depth.dec(3, queue="media")
        cap.assert_gauge("testsuite_queue_depth", 5, queue="media")
        assert cap.recorded()["testsuite_queue_depth{queue=sip}"] == -3


def test_gauge_set_overrides_what_came_before_it_in_the_same_flush(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=3600)
    g = metrics.gauge("testsuite_level").series()
    with capture_metrics(metrics=metrics) as cap:
        for _ in range(5):
            g.inc()
        g.inc(4)
        g.dec(2)
        g.set(1)
        g.inc()
        cap.assert_gauge("testsuite_level", 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "3", None, True, [], object()])
def test_gauge_bad_values_are_dropped_and_counted(make_metrics, bad):
    metrics = make_metrics(backend="memory")
    g = metrics.gauge("testsuite_bad_level").series()
    with capture_metrics(metrics=metrics, strict=False) as cap:
        g.set(bad)
        g.inc(bad)
        g.dec(bad)
        g.inc(-1)
        assert cap.gauge("testsuite_bad_level") is None
        cap.assert_count(DROPPED, 4, metric="testsuite_bad_level", reason="invalid_number")
    with (
        capture_metrics(metrics=metrics),
        pytest.raises(InvalidInputError, match=r"value=.* is not a finite number \("),
    ):
        g.set(bad)
    with capture_metrics(metrics=metrics), pytest.raises(InvalidInputError, match=r"n=.* is not a finite number >= 0"):
        g.dec(bad)


def test_gauge_set_racing_inc_from_threads_loses_nothing(make_metrics):
    """Each inc/dec lands before or after a racing set(), exactly once."""
    metrics = make_metrics(backend="memory", flush_interval=0.01)
    g = metrics.gauge("testsuite_raced").series()
    stop = threading.Event()
    per_thread = 20_000

    def setter() -> None:
        while not stop.is_set():
            g.set(0)

    def mover() -> None:
        for _ in range(per_thread):
            g.inc()
            g.inc()
            g.dec()

    with capture_metrics(metrics=metrics) as cap:
        s = threading.Thread(target=setter)
        s.start()
        movers = [threading.Thread(target=mover) for _ in range(4)]
        for t in movers:
            t.start()
        for t in movers:
            t.join()
        stop.set()
        s.join()
        level = cap.gauge("testsuite_raced")
        assert level is not None
        assert 0 <= level <= 4 * per_thread  # what came after the last set(), never more
        g.set(0)
        for t in [threading.Thread(target=mover) for _ in range(8)]:
            t.start()
            t.join()
        cap.assert_gauge("testsuite_raced", 8 * per_thread)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_starts_its_calls_in_progress_at_zero(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=3600)
    with capture_metrics(metrics=metrics) as cap:
        for _ in range(5):
            metrics.call_started("inbound")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads running
            pid = os.fork()
        if pid == 0:
            code = 0
            try:  # the child's recorder sends to a memory backend of its own
                metrics.flush()
                unsent = metrics.recorder.backend.gauge_levels() == {}  # none of its own yet
                metrics.call_started("inbound")
                metrics.flush()
                levels = {s.labels["direction"]: v for s, v in metrics.recorder.backend.gauge_levels().items()}
                code = 0 if unsent and levels == {"inbound": 1} else 3
            except BaseException:
                code = 4
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        metrics.call_ended("inbound")
        cap.assert_gauge(ACTIVE, 4, direction="inbound")


# --- setup delay --------------------------------------------------------------------------


def test_setup_delay_by_direction_and_result():
    with capture_metrics() as cap:
        sm.observe_setup_delay("outbound", 182.5, True)
        sm.observe_setup_delay("outbound", 3000, False)
        sm.observe_setup_delay(sm.Direction.INBOUND, 0.0, True)
        cap.assert_samples(SRD, [182.5], direction="outbound", result=sm.SETUP_RESULT_SUCCESS)
        cap.assert_samples(SRD, [3000], direction="outbound", result=sm.SetupResult.FAILURE)
        cap.assert_samples(SRD, [0.0], direction="inbound", result="success")


@pytest.mark.parametrize(
    ("args", "key", "reason"),
    [
        (("sideways", 10.0, True), "direction", "unknown_value"),
        (([], 10.0, True), "direction", "unknown_value"),
        (("inbound", 10.0, "yes"), "success", "unknown_value"),
        (("inbound", 10.0, None), "success", "unknown_value"),
        (("inbound", -1.0, True), "value", "invalid_number"),
        (("inbound", math.nan, False), "value", "invalid_number"),
        (("inbound", "10", False), "value", "invalid_number"),
    ],
)
def test_setup_delay_bad_input_is_dropped_and_counted_or_raised_strict(args, key, reason):
    with capture_metrics(strict=False) as cap:
        sm.observe_setup_delay(*args)
        assert cap.samples(SRD) == []
        cap.assert_count(DROPPED, 1, metric=SRD, reason=reason)
    with capture_metrics(), pytest.raises(InvalidInputError, match=rf"sip_session_request_delay_ms: {key}="):
        sm.observe_setup_delay(*args)


def test_each_code_from_100_to_699_lands_in_one_series_of_each_invite_metric(fresh):
    with capture_metrics(metrics=fresh) as cap:
        for code in range(100, 700):
            fresh.invite_result("outbound", code)
            recorded = cap.recorded()
            cap.clear()
            exact = str(code) if code in sm.DEFAULT_RESPONSE_CODES else f"{code // 100}xx"
            assert recorded == {
                f"{sm.METRIC_INVITE_RESULT_TOTAL}{{direction=outbound,code_class={code // 100}xx}}": 1,
                f"{RESPONSE}{{direction=outbound,code={exact}}}": 1,
            }, code


def test_a_capture_shows_the_gauges_moved_inside_it_at_the_process_level(receiver, make_metrics):
    """Levels left by earlier code do not fill every later capture, and are sent again after it."""
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.call_started("inbound")
    metrics.call_started("inbound")
    metrics.call_started("outbound")
    with capture_metrics(metrics=metrics) as cap:
        assert cap.recorded() == {}
        assert cap.gauge(ACTIVE) is None
        metrics.call_started("inbound")
        assert cap.recorded() == {f"{ACTIVE}{{direction=inbound}}": 3}  # the process's level
    metrics.flush()
    totals = receiver.wait_for(lambda t: t.lines >= 4)
    assert totals.gauge(ACTIVE, direction="inbound") == 3
    outbound = [
        line.values
        for d in receiver.datagrams()
        for line in parse_datagram(d)[0]
        if line.tags[:1] == ("direction:outbound",)
    ]
    assert outbound == [(1.0,), (1.0,)]  # before the capture, and again after it
