"""Families: definition-time validation, pre-bound series, soft and strict drops."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from sip_statsd import Counter, Distribution, InvalidInputError, SipMetrics
from sip_statsd._core.backend import MemoryBackend
from sip_statsd._core.config import Config
from sip_statsd._core.recorder import Recorder
from sip_statsd.testing import capture_metrics


@pytest.fixture
def metrics():
    m = SipMetrics(backend="memory")
    yield m
    m.close()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "9lives",
        "has space",
        "pipe|x",
        "hash#x",
        "colon:x",
        "comma,x",
        "semi;x",
        "new\nline",
        "trailing.",
        "x" * 201,
        42,
    ],
)
def test_bad_metric_names_raise_quoting_the_name(metrics, name):
    with pytest.raises(ValueError, match="invalid metric name") as err:
        metrics.counter(name)
    assert repr(name)[:20] in str(err.value)


@pytest.mark.parametrize("value", ["", "a b", "a|b", "a:b", "a,b", "a.b", "a=b", "a;b", "é", "x" * 65, 3])
def test_bad_label_values_raise_at_definition(metrics, value):
    with pytest.raises(ValueError, match="invalid value"):
        metrics.counter("app_total", {"k": ("ok", value)})


@pytest.mark.parametrize("key", ["", "Upper", "1st", "has-dash", "a:b"])
def test_bad_label_keys_raise_at_definition(metrics, key):
    with pytest.raises(ValueError, match="invalid label key"):
        metrics.counter("app_total", {key: ("ok",)})


def test_definition_rejects_empty_repeated_and_string_values(metrics):
    with pytest.raises(ValueError, match="no allowed values"):
        metrics.counter("a_total", {"k": ()})
    with pytest.raises(ValueError, match="repeats"):
        metrics.counter("b_total", {"k": ("x", "x")})
    with pytest.raises(ValueError, match="not the string"):
        metrics.counter("c_total", {"k": "xy"})


def test_duplicate_metric_name_raises(metrics):
    metrics.counter("dup_total")
    with pytest.raises(ValueError, match="already defined"):
        metrics.counter("dup_total")


def test_cardinality_cap_is_enforced_at_definition(metrics):
    many = tuple(f"v{i}" for i in range(50))
    with pytest.raises(ValueError, match="exceed"):
        metrics.counter("wide_total", {"a": many, "b": many})


def test_every_combination_is_a_series_at_definition(metrics):
    fam = metrics.counter("app_total", {"a": ("x", "y"), "b": ("1", "2", "3")})
    assert len(fam.all_series) == 6
    s = fam.series(b="2", a="y")
    assert s.tags == ("a:y", "b:2")
    assert fam.series(a="y", b="2") is s


def test_series_with_unknown_key_or_value_raises(metrics):
    fam = metrics.counter("app_total", {"a": ("x",)})
    with pytest.raises(ValueError, match="not one of"):
        fam.series(a="nope")
    with pytest.raises(ValueError, match="missing"):
        fam.series()
    with pytest.raises(ValueError, match="unknown label keys"):
        fam.series(a="x", b="y")


def test_counter_inc_sums_and_rejects_bad_n(metrics):
    fam = metrics.counter("app_total", {"a": ("x",)})
    with capture_metrics(metrics=metrics, strict=False) as cap:
        s = fam.series(a="x")
        s.inc()
        s.inc(5)
        s.inc(0)
        s.inc(-1)
        s.inc(2.5)  # type: ignore[arg-type]
        fam.inc(a="x")
        fam.inc(3, a="x")
        fam.inc(a="zzz")
        fam.inc(b="x")
        assert cap.count("app_total", a="x") == 10
        assert cap.count("sip_statsd_dropped_inputs_total", metric="app_total", reason="invalid_number") == 2
        assert cap.count("sip_statsd_dropped_inputs_total", metric="app_total", reason="unknown_value") == 2


def test_strict_mode_raises_naming_metric_key_and_value(metrics):
    fam = metrics.counter("app_total", {"outcome": ("ok", "failed")})
    with capture_metrics(metrics=metrics):
        with pytest.raises(InvalidInputError, match=r"app_total: outcome='weird' is not one of \['ok', 'failed'\]"):
            fam.inc(outcome="weird")
        with pytest.raises(ValueError, match=r"app_total: n=-2"):
            fam.series(outcome="ok").inc(-2)


def test_distribution_bounds_and_non_finite_values_drop(metrics):
    d = metrics.distribution("latency_ms", minimum=0, maximum=100)
    with capture_metrics(metrics=metrics, strict=False) as cap:
        s = d.series()
        for v in (0, 1.5, 100, 50):
            s.observe(v)
        for v in (-1, 101, math.nan, math.inf, -math.inf, "7", None, True):
            s.observe(v)  # type: ignore[arg-type]
        assert cap.samples("latency_ms") == [0, 1.5, 100, 50]
        assert cap.count("sip_statsd_dropped_inputs_total", metric="latency_ms", reason="invalid_number") == 8


def test_distribution_accepts_other_real_numbers(metrics):

    d = metrics.distribution("x_ms")
    with capture_metrics(metrics=metrics) as cap:
        d.observe(Fraction(1, 4))
        assert cap.samples("x_ms") == [0.25]


def test_distribution_keeps_at_most_max_samples_between_flushes():
    rec = Recorder()
    try:
        backend = MemoryBackend()
        rec.reconfigure(Config(backend="memory", flush_interval=3600), backend=backend)
        rec.flush()  # the switch is done: no flush can fall between the observes below
        d = Distribution("capped_ms", max_samples=3, recorder=rec)
        rec.flush()  # reconfigure() wakes the flusher at once: let that flush pass before observing
        for v in range(1, 6):
            d.observe(float(v))
        rec.flush()
        counts, samples = backend.snapshot()
        assert len(samples[d.series()]) == 3  # a uniform reservoir of the five
        assert set(samples[d.series()]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        assert counts[rec.sampled.series(metric="capped_ms")] == 2  # sampled away, not dropped
        assert counts.get(rec.dropped.series(metric="capped_ms", reason="sample_overflow"), 0) == 0
    finally:
        rec.close()


def test_distribution_definition_errors(metrics):
    with pytest.raises(ValueError, match="minimum <= maximum"):
        metrics.distribution("a_ms", minimum=5, maximum=1)
    with pytest.raises(ValueError, match="max_samples"):
        Distribution("b_ms", max_samples=0, recorder=metrics.recorder)


def test_user_counter_on_default_recorder_is_captured():
    fam = Counter("testsuite_default_family_total", labels={"k": ("a", "b")})
    with capture_metrics() as cap:
        fam.series(k="b").inc()
        cap.assert_count("testsuite_default_family_total", 1, k="b")
        cap.assert_count("testsuite_default_family_total", 0, k="a")


@pytest.mark.parametrize("name", ["myapp.calls_total", "a" * 65, "b" * 200, "edge.sip.x" + "y" * 150])
def test_every_valid_family_name_gets_its_drop_counter(metrics, name):
    """Item 11: the drop counter's `metric` label takes any valid metric name (dots, 200 chars)."""
    family = metrics.counter(name, {"outcome": ("ok",)})
    with capture_metrics(metrics=metrics, strict=False) as cap:
        family.inc(outcome="nope")
        assert cap.count("sip_statsd_dropped_inputs_total", metric=name, reason="unknown_value") == 1


def test_label_keys_are_bounded(metrics):
    metrics.counter("long_key_total", {"k" * 64: ("a",)})
    with pytest.raises(ValueError, match="at most 64"):
        metrics.counter("too_long_key_total", {"k" * 65: ("a",)})


@pytest.mark.parametrize("key", ["n", "value", "self"])
def test_label_keys_may_be_named_like_the_emit_parameters(metrics, key):
    counter = metrics.counter(f"param_{key}_total", {key: ("a", "b")})
    distribution = metrics.distribution(f"param_{key}_ms", {key: ("a", "b")})
    with capture_metrics(metrics=metrics) as cap:
        counter.inc(**{key: "a"})
        counter.inc(2, **{key: "b"})
        counter.series(**{key: "a"}).inc()
        distribution.observe(1.5, **{key: "a"})
        assert cap.count(f"param_{key}_total", **{key: "a"}) == 2
        assert cap.count(f"param_{key}_total", **{key: "b"}) == 2
        assert cap.samples(f"param_{key}_ms", **{key: "a"}) == [1.5]


@pytest.mark.parametrize("n", [10**400, 2**53 + 1, -1, 2.0, True, None, "3"])
def test_increments_the_agent_cannot_hold_exactly_are_dropped(metrics, n, receiver, make_metrics):
    """Item 10: inc(10**400) used to go out as a 421-digit count, taking 1,000 good increments with it."""
    wire = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    series = wire.counter("big_total").series()
    for _ in range(1000):
        series.inc()
    series.inc(n)
    series.inc(2**53)  # the largest exact increment still counts
    assert wire.flush()
    totals = receiver.wait_for(lambda t: t.count("big_total") >= 1)
    assert totals.count("big_total") == 1000 + 2**53
    assert not totals.malformed
    assert wire.stats().dropped_inputs[("big_total", "invalid_number")] == 1
    strict = metrics.counter("big_strict_total").series()
    with capture_metrics(metrics=metrics), pytest.raises(InvalidInputError, match="big_strict_total"):
        strict.inc(n)
