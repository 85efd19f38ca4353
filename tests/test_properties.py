"""Property tests: whatever a caller passes, no exception (soft mode) and no caller byte on the wire."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sip_statsd as sm
from sip_statsd._wire.lines import parse_datagram
from sip_statsd._wire.receiver import Receiver
from sip_statsd.testing import capture_metrics


class Hostile:
    """An object whose every dunder raises."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        raise RuntimeError("hash")

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __float__(self) -> float:
        raise RuntimeError("float")

    def __le__(self, other: object) -> bool:
        raise RuntimeError("le")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("ne")


class SneakyStr(str):
    """A str that hashes like 'inbound' but is not equal to it."""

    def __hash__(self) -> int:
        return hash("inbound")


INJECTIONS = ["inbound|#evil:1", "INVITE\nsip_x:1|c", "ok,env:prod", "a:b", "ok|@0.1", "2xx", "verified#x", "é"]

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(INJECTIONS),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(Hostile),
    st.builds(SneakyStr, st.text(max_size=5)),
    st.sampled_from([*sm.DIRECTIONS, *sm.METHODS, *sm.BYE_REASONS, *sm.REFRESH_RESULTS, 200, 486, True, False]),
    st.floats(min_value=0, max_value=1e6),
)

HELPERS = {
    "invite_result": 2,
    "bye": 3,
    "bye_outbound": 2,
    "transaction_timeout": 1,
    "session_timer_refresh": 1,
    "dtls_handshake": 1,
    "stir_verify": 1,
    "voice_attach": 2,
    "voice_attach_mode_fallback": 2,
    "voice_attach_native": 1,
    "observe_call_qos": 4,
    "request_result": 3,
    "call_started": 1,
    "call_ended": 2,
    "observe_setup_delay": 3,
}

calls = st.sampled_from(sorted(HELPERS)).flatmap(
    lambda name: st.tuples(st.just(name), st.lists(anything, min_size=HELPERS[name], max_size=HELPERS[name]))
)


def allowed_on_wire(metrics: sm.SipMetrics) -> dict[str, dict[str, tuple[str, ...]]]:
    return {f.name: dict(f.allowed) for f in metrics.families}


def test_any_input_never_raises_and_never_reaches_the_wire():
    with Receiver() as receiver:
        metrics = sm.SipMetrics(host=receiver.host, port=receiver.port, flush_interval=3600)
        declared = allowed_on_wire(metrics)
        try:

            @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(st.lists(calls, max_size=20))
            def run(batch):
                for name, args in batch:
                    getattr(metrics, name)(*args)  # soft mode: must never raise
                assert metrics.flush(timeout=10)

            run()
            sent = metrics.stats().lines_sent
            totals = receiver.wait_for(lambda t: t.lines >= sent)
            assert totals.lines == sent
            assert totals.malformed == []
            for data in receiver.datagrams():
                lines, bad = parse_datagram(data)
                assert bad == []
                for line in lines:
                    assert line.name in declared, line
                    for tag in line.tags:
                        key, value = tag.split(":")
                        assert value in declared[line.name][key], line
                    assert all(math.isfinite(v) for v in line.values)
        finally:
            metrics.close()


@settings(max_examples=300, deadline=None)
@given(calls)
def test_strict_mode_raises_only_invalid_input_errors(call):
    name, args = call
    raised: list[BaseException] = []
    with capture_metrics():
        try:
            getattr(sm, name)(*args)
        except Exception as error:
            raised.append(error)
    for error in raised:
        assert type(error) is sm.InvalidInputError, repr(error)
        assert str(error).startswith("sip_")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(100, 699), min_size=1, max_size=30),
    st.sampled_from(sm.DIRECTIONS),
    st.one_of(st.none(), st.lists(st.integers(100, 699), unique=True, max_size=12)),
)
def test_every_code_lands_in_exactly_one_series_of_each_invite_metric(codes, direction, allowlist):
    """Whatever the allowlist, a code counts once in each metric: its class, and its code or class."""
    options = {} if allowlist is None else {"response_codes": allowlist}
    metrics = sm.SipMetrics(backend="memory", **options)
    exact = set(sm.DEFAULT_RESPONSE_CODES if allowlist is None else allowlist)
    try:
        with capture_metrics(metrics=metrics) as cap:
            for code in codes:
                metrics.invite_result(direction, code)
            recorded = cap.recorded()
    finally:
        metrics.close()
    want: dict[str, int] = {}
    for code in codes:
        klass = f"{code // 100}xx"
        for key in (
            f"{sm.METRIC_INVITE_RESULT_TOTAL}{{direction={direction},code_class={klass}}}",
            f"{sm.METRIC_INVITE_RESPONSE_TOTAL}{{direction={direction},code={code if code in exact else klass}}}",
        ):
            want[key] = want.get(key, 0) + 1
    assert recorded == want
