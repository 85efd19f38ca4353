"""observe_call_qos's call quality: one G.109 grade per call, the quality issues, their thresholds."""

from __future__ import annotations

import math
import numbers
import threading

import pytest
from conftest import WIRE_BACKENDS, wire_count, wire_options

import sip_statsd as sm
from sip_statsd.testing import capture_metrics

QUALITY = sm.METRIC_CALL_QUALITY_TOTAL
ISSUE = sm.METRIC_CALL_QUALITY_ISSUE_TOTAL
DROPPED = sm.METRIC_DROPPED_INPUTS_TOTAL

# MOS values and the ITU-T G.109 category each must land in (floors 4.34, 4.03, 3.60, 3.10, 2.58).
GRADED = [
    (5.0, "best"),
    (4.5, "best"),
    (4.34, "best"),
    (4.339, "high"),
    (4.03, "high"),
    (4.0299, "medium"),
    (3.6, "medium"),
    (3.5999, "low"),
    (3.1, "low"),
    (3.0999, "poor"),
    (2.58, "poor"),
    (2.5799, "unusable"),
    (1.0, "unusable"),
    (4, "medium"),  # an int takes the slow path, and is graded the same (4 < 4.03)
    (1, "unusable"),
]
# No valid MOS: skipped as "no data" (None, NaN, inf, zero, negative) or dropped (outside 1-5, not a number).
UNGRADED = [None, math.nan, math.inf, 0.0, -3.0, 0.99, 5.01, "4.2", True]


@pytest.mark.parametrize(("mos", "grade"), GRADED)
def test_each_mos_lands_in_its_g109_grade_and_only_there(mos, grade):
    with capture_metrics() as cap:
        sm.observe_call_qos(mos_estimate=mos)
        cap.assert_count(QUALITY, 1, grade=grade)
        cap.assert_count(QUALITY, 1)


@pytest.mark.parametrize("mos", UNGRADED)
def test_a_call_without_a_valid_mos_is_graded_unknown(mos):
    with capture_metrics(strict=False) as cap:
        sm.observe_call_qos(rtt_ms=40.0, mos_estimate=mos)
        cap.assert_count(QUALITY, 1, grade="unknown")
        cap.assert_count(QUALITY, 1)
        cap.assert_count(ISSUE, 0)  # not even low_mos: an invalid MOS is not a low one


def test_every_call_lands_in_exactly_one_grade():
    calls = [{"mos_estimate": mos} for mos, _ in GRADED] + [{"mos_estimate": mos} for mos in UNGRADED] + [{}]
    with capture_metrics(strict=False) as cap:
        for kwargs in calls:
            sm.observe_call_qos(rtt_ms=10.0, **kwargs)
        cap.assert_count(QUALITY, len(calls))
        cap.assert_count(QUALITY, len(UNGRADED) + 1, grade="unknown")


@pytest.mark.parametrize(
    ("kwargs", "issues"),
    [
        ({"rtt_ms": 300.0}, []),  # at the threshold: not above it
        ({"rtt_ms": 300.01}, ["high_rtt"]),
        ({"rtt_ms": 301}, ["high_rtt"]),  # int: slow path
        ({"jitter_ms": 30.0}, []),
        ({"jitter_ms": 30.5}, ["high_jitter"]),
        ({"loss_fraction": 0.05}, []),
        ({"loss_fraction": 0.0501}, ["high_loss"]),
        ({"loss_fraction": 1}, ["high_loss"]),
        ({"mos_estimate": 3.5}, []),
        ({"mos_estimate": 3.49}, ["low_mos"]),
        ({"mos_estimate": 1}, ["low_mos"]),
        (
            {"rtt_ms": 700.0, "jitter_ms": 80.0, "loss_fraction": 0.2, "mos_estimate": 1.9},
            ["high_rtt", "high_jitter", "high_loss", "low_mos"],
        ),
        ({"rtt_ms": 38.5, "jitter_ms": 4.2, "loss_fraction": 0.003, "mos_estimate": 4.3}, []),
    ],
)
def test_each_issue_counts_once_above_its_default_threshold(kwargs, issues):
    with capture_metrics() as cap:
        sm.observe_call_qos(**kwargs)
        for issue in sm.QUALITY_ISSUES:
            cap.assert_count(ISSUE, int(issue in issues), issue=issue)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rtt_ms": math.inf},
        {"rtt_ms": math.nan},
        {"rtt_ms": -400.0},
        {"rtt_ms": "400"},
        {"jitter_ms": math.inf},
        {"jitter_ms": [50.0]},
        {"loss_fraction": 1.5},
        {"loss_fraction": math.nan},
        {"mos_estimate": 0.5},
        {"mos_estimate": -2.0},
    ],
)
def test_a_skipped_or_dropped_value_raises_no_issue(kwargs):
    with capture_metrics(strict=False) as cap:
        sm.observe_call_qos(**kwargs)
        cap.assert_count(ISSUE, 0)
        cap.assert_count(QUALITY, 1)


def test_the_origins_skip_rules_still_hold_for_the_distributions():
    with capture_metrics(strict=False) as cap:
        sm.observe_call_qos(rtt_ms=0.0, jitter_ms=-1.0, loss_fraction=math.nan, mos_estimate=None)
        sm.observe_call_qos(rtt_ms=500.0, jitter_ms=2.0, loss_fraction=2.0, mos_estimate=6.0)
        cap.assert_samples(sm.METRIC_CALL_RTT_MS, [500.0])
        cap.assert_samples(sm.METRIC_CALL_JITTER_MS, [2.0])
        cap.assert_samples(sm.METRIC_CALL_LOSS_FRACTION, [])
        cap.assert_samples(sm.METRIC_CALL_MOS_ESTIMATE, [])
        cap.assert_count(DROPPED, 1, metric=sm.METRIC_CALL_LOSS_FRACTION, reason="invalid_number")
        cap.assert_count(DROPPED, 1, metric=sm.METRIC_CALL_MOS_ESTIMATE, reason="invalid_number")
        cap.assert_count(ISSUE, 1, issue="high_rtt")
        cap.assert_count(ISSUE, 1)
        cap.assert_count(QUALITY, 2, grade="unknown")


def test_a_value_past_the_sample_cap_still_counts_its_issue(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=3600)
    cap = metrics.catalog.call_rtt_ms.max_samples
    with capture_metrics(metrics=metrics, strict=False) as captured:
        metrics.flush()  # the flush the capture woke; the next is a second away, after the loop
        for _ in range(cap + 3):
            metrics.observe_call_qos(rtt_ms=400.0, mos_estimate=4.4)
        captured.assert_count(sm.METRIC_SAMPLED_AWAY_TOTAL, 3, metric=sm.METRIC_CALL_RTT_MS)
        captured.assert_count(ISSUE, cap + 3, issue="high_rtt")
        captured.assert_count(QUALITY, cap + 3, grade="best")


def test_configured_thresholds_move_the_issues_and_a_partial_mapping_keeps_the_defaults(make_metrics):
    metrics = make_metrics(backend="memory", quality_thresholds={"rtt_ms": 150, "mos": 4.0})
    assert metrics.config.quality_thresholds == sm.QualityThresholds(rtt_ms=150.0, mos=4.0)
    with capture_metrics(metrics=metrics) as cap:  # the capture keeps the configured thresholds
        metrics.observe_call_qos(rtt_ms=200.0, jitter_ms=31.0, loss_fraction=0.04, mos_estimate=3.9)
        for issue, n in (("high_rtt", 1), ("high_jitter", 1), ("high_loss", 0), ("low_mos", 1)):
            cap.assert_count(ISSUE, n, issue=issue)
    metrics.configure(backend="memory", quality_thresholds={"loss_fraction": 0.01})  # the rest back to defaults
    with capture_metrics(metrics=metrics) as cap:
        metrics.observe_call_qos(rtt_ms=200.0, jitter_ms=31.0, loss_fraction=0.04, mos_estimate=3.9)
        for issue, n in (("high_rtt", 0), ("high_jitter", 1), ("high_loss", 1), ("low_mos", 0)):
            cap.assert_count(ISSUE, n, issue=issue)


def test_thresholds_at_their_limits_turn_an_issue_off(make_metrics):
    off = {"rtt_ms": math.inf, "jitter_ms": math.inf, "loss_fraction": 1.0, "mos": 1.0}
    metrics = make_metrics(backend="memory", quality_thresholds=off)
    with capture_metrics(metrics=metrics) as cap:
        metrics.observe_call_qos(rtt_ms=1e300, jitter_ms=1e300, loss_fraction=1.0, mos_estimate=1.0)
        cap.assert_count(ISSUE, 0)


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"rtt_ms": -1}, "rtt_ms=-1"),
        ({"jitter_ms": math.nan}, "jitter_ms=nan"),
        ({"loss_fraction": 1.5}, "loss_fraction=1.5"),
        ({"mos": 0.5}, "mos=0.5"),
        ({"mos": 5.5}, "mos=5.5"),
        ({"mos": True}, "mos=True"),
        ({"rtt_ms": "300"}, "rtt_ms='300'"),
        ({"rtt": 300}, r"keys \['rtt'\] are not among \['rtt_ms', 'jitter_ms', 'loss_fraction', 'mos'\]"),
        ("rtt_ms=300", "quality_thresholds 'rtt_ms=300' must be a mapping"),
        ([("rtt_ms", 300)], "must be a mapping"),
    ],
)
def test_bad_thresholds_raise_quoting_the_value_and_keep_the_old_configuration(thresholds, message, make_metrics):
    metrics = make_metrics(backend="memory", quality_thresholds={"rtt_ms": 123})
    with pytest.raises(ValueError, match=message):
        metrics.configure(backend="memory", quality_thresholds=thresholds)
    assert metrics.config.quality_thresholds.rtt_ms == 123.0
    with pytest.raises(ValueError, match=message):
        sm.Config(quality_thresholds=thresholds)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_grades_and_issues_arrive_exactly_on_the_wire(backend, receiver, make_metrics):
    metrics = make_metrics(**wire_options(backend, receiver), flush_interval=3600)
    # Each grade a different number of times, so a mix-up shows.
    per_grade = {"best": 1, "high": 2, "medium": 3, "low": 4, "poor": 5, "unusable": 6, "unknown": 7}
    mos_of = {"best": 4.4, "high": 4.1, "medium": 3.7, "low": 3.2, "poor": 2.6, "unusable": 1.5, "unknown": None}
    for grade, n in per_grade.items():
        for _ in range(n):
            metrics.observe_call_qos(mos_estimate=mos_of[grade])
    per_issue = {"high_rtt": 11, "high_jitter": 12, "high_loss": 13}
    for _ in range(per_issue["high_rtt"]):
        metrics.observe_call_qos(rtt_ms=450.0)
    for _ in range(per_issue["high_jitter"]):
        metrics.observe_call_qos(jitter_ms=45.0)
    for _ in range(per_issue["high_loss"]):
        metrics.observe_call_qos(loss_fraction=0.3)
    calls = sum(per_grade.values()) + sum(per_issue.values())
    per_grade["unknown"] += sum(per_issue.values())  # those calls gave no MOS
    per_issue["low_mos"] = per_grade["poor"] + per_grade["unusable"] + per_grade["low"]  # MOS below 3.5
    assert metrics.flush()
    flavor = backend[1]
    totals = receiver.wait_for(
        lambda t: (
            wire_count(t, flavor, QUALITY, grade="unknown") >= per_grade["unknown"]
            and wire_count(t, flavor, ISSUE, issue="low_mos") >= per_issue["low_mos"]
        )
    )
    assert totals.malformed == []
    for grade, n in per_grade.items():
        assert wire_count(totals, flavor, QUALITY, grade=grade) == n, grade
    for issue, n in per_issue.items():
        assert wire_count(totals, flavor, ISSUE, issue=issue) == n, issue
    assert sum(wire_count(totals, flavor, QUALITY, grade=g) for g in sm.QUALITY_GRADES) == calls


def test_threads_racing_configure_keep_every_call_in_one_grade(receiver, make_metrics):
    """Grades are exact under a reconfiguration storm; each issue is judged by one threshold or the other."""
    options = {"host": receiver.host, "port": receiver.port, "flush_interval": 0.05}
    metrics = make_metrics(**options)
    threads, per_thread = 4, 5000
    done = threading.Event()

    def emit() -> None:
        for _ in range(per_thread):
            metrics.observe_call_qos(rtt_ms=200.0, mos_estimate=4.4)

    def reconfigure() -> None:
        flip = False
        while not done.is_set():
            flip = not flip
            metrics.configure(**options, quality_thresholds={"rtt_ms": 100 if flip else 1000})

    workers = [threading.Thread(target=emit) for _ in range(threads)]
    changer = threading.Thread(target=reconfigure)
    changer.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    changer.join()
    assert metrics.flush()
    total = threads * per_thread
    totals = receiver.wait_for(lambda t: t.count(QUALITY) >= total)
    assert totals.count(QUALITY, grade="best") == total
    assert totals.count(QUALITY) == total
    assert 0 <= totals.count(ISSUE, issue="high_rtt") <= total
    assert totals.count(ISSUE) == totals.count(ISSUE, issue="high_rtt")


class _RealThatWillNotConvert:
    """Registered as a numbers.Real, yet float() on it raises."""

    def __float__(self) -> float:
        raise RuntimeError("no float")


numbers.Real.register(_RealThatWillNotConvert)


def test_a_hostile_number_is_dropped_and_graded_unknown_without_raising():
    with capture_metrics(strict=False) as cap:
        sm.observe_call_qos(rtt_ms=_RealThatWillNotConvert(), mos_estimate=_RealThatWillNotConvert())
        cap.assert_count(DROPPED, 1, metric=sm.METRIC_CALL_RTT_MS, reason="invalid_number")
        cap.assert_count(DROPPED, 1, metric=sm.METRIC_CALL_MOS_ESTIMATE, reason="invalid_number")
        cap.assert_count(QUALITY, 1, grade="unknown")
        cap.assert_count(ISSUE, 0)
