"""`observe_call_qos`: a call's four RTCP distributions, its quality grade and its quality issues.

One call, once, at cleanup: each value goes into its distribution (the origin's skip
rules), then the call is counted in exactly one grade of `sip_call_quality_total` (the
G.109 category of its MOS, `unknown` without a valid MOS) and once in each issue of
`sip_call_quality_issue_total` whose threshold it crosses. A value that is skipped ("no
data") or dropped (invalid) raises no issue, and a MOS that is either grades the call
`unknown`: what the caller did not validly measure is not judged; the drop is counted in
`sip_statsd_dropped_inputs_total` as always.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from .._core.series import DistributionSeries
from .catalog import SipCatalog
from .quality import GRADE_FLOORS
from .values import (
    QUALITY_GRADE_UNKNOWN,
    QUALITY_GRADE_UNUSABLE,
    QUALITY_ISSUE_HIGH_JITTER,
    QUALITY_ISSUE_HIGH_LOSS,
    QUALITY_ISSUE_HIGH_RTT,
    QUALITY_ISSUE_LOW_MOS,
)

_NONE = math.nan  # "no valid value": every comparison with a threshold or a grade floor is False


def _skip_qos(value: object) -> bool:
    """The origin's rule: None, NaN, +-inf, zero and negative mean "no data", not a sample."""
    if value is None:
        return True
    try:
        return bool(value != value or value <= 0 or value == math.inf)  # type: ignore[operator]  # noqa: PLR0124 - NaN test for any number type
    except Exception:
        return False  # not a number: observe() drops it as invalid


def _is_zero(value: object) -> bool:
    try:
        return type(value) is not bool and value == 0
    except Exception:
        return False


def _qos_slow(series: DistributionSeries, value: object, zero_is_measured: bool = False) -> float:
    """Record `value` the slow way; return it as a float if it was valid, else NaN.

    A valid value dropped only because the series is full (sample_overflow) still counts
    for the grade and the issues: the counters have no such bound. With `zero_is_measured`
    a zero (0, 0.0) is a sample, not "no data".
    """
    if zero_is_measured and _is_zero(value):
        value = 0.0  # a measured zero goes out as 0, whichever zero it was (-0.0 would print its sign)
    elif _skip_qos(value):
        return _NONE
    series.observe(value)  # type: ignore[arg-type]  # observe() drops what is not a number
    # Valid exactly when observe() kept it (or dropped it only for overflow): a real number in range.
    try:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return _NONE
        number = float(value)
    except Exception:  # whatever the object does (a raising __class__ or __float__)
        return _NONE
    return number if series._lo <= number <= series._hi else _NONE


def make_observe_call_qos(  # noqa: PLR0915 - one closure, its look-ups bound once
    cat: SipCatalog, extra: dict[str, str] | None = None
) -> Callable[..., None]:
    """The `observe_call_qos` helper of `cat`, its issue thresholds following the configuration.

    `extra`: the peer label of the series it feeds, on an instance that declares peers.
    """
    extra = extra or {}
    rtt, jitter, loss, mos = (
        f.series(**extra) for f in (cat.call_rtt_ms, cat.call_jitter_ms, cat.call_loss_fraction, cat.call_mos_estimate)
    )
    rtt_s, jitter_s, loss_s, mos_s = rtt._samples, jitter._samples, loss._samples, mos._samples
    cap = cat.call_rtt_ms.max_samples
    # The fast path's bounds are the declarations' (the skip rule adds "> 0" for all).
    rtt_hi, jitter_hi, loss_hi = rtt._hi, jitter._hi, loss._hi
    mos_lo, mos_hi = mos._lo, mos._hi

    grades = cat.call_quality
    (best_at, best), (high_at, high), (medium_at, medium), (low_at, low), (poor_at, poor) = (
        (floor, grades.series(grade=grade, **extra)._count) for floor, grade in GRADE_FLOORS
    )
    unusable = grades.series(grade=QUALITY_GRADE_UNUSABLE, **extra)._count
    unknown = grades.series(grade=QUALITY_GRADE_UNKNOWN, **extra)._count
    issues = cat.call_quality_issue
    high_rtt, high_jitter, high_loss, low_mos = (
        issues.series(issue=issue, **extra)._count
        for issue in (QUALITY_ISSUE_HIGH_RTT, QUALITY_ISSUE_HIGH_JITTER, QUALITY_ISSUE_HIGH_LOSS, QUALITY_ISSUE_LOW_MOS)
    )
    # The thresholds: closure variables, rewritten by `follow` below when the configuration
    # changes. Each issue reads one cell, so a call racing configure() judges each issue by
    # the old or by the new threshold, never by anything else.
    rtt_over = jitter_over = loss_over = mos_under = _NONE

    def observe_call_qos(  # noqa: PLR0912 - four values and a grade, inline: the hot path
        rtt_ms: float | None = None,
        jitter_ms: float | None = None,
        loss_fraction: float | None = None,
        mos_estimate: float | None = None,
        *,
        peer: str | None = None,
        zero_is_measured: bool = False,
    ) -> None:
        """Record one call's RTCP QoS, once, at call cleanup; count its quality grade and issues.

        None, NaN, ±inf, zero and negative values mean "no data" and are skipped (the
        origin's rule); with `zero_is_measured=True` a zero RTT, jitter or loss is a
        measured sample (RTCP reported 0 lost), recorded like any other. Loss_fraction
        above 1 and MOS outside 1-5 are invalid (dropped and counted). Neither raises a
        quality issue; without a valid MOS the grade is `unknown`. `peer` counts only on
        an instance that declares peers.

        >>> observe_call_qos(rtt_ms=38.5, jitter_ms=4.2, loss_fraction=0.003, mos_estimate=4.3)
        """
        # Fast path: a float in range goes straight into the series' sample list (the
        # chained comparisons also reject NaN); anything else takes the slow path, which
        # returns the value if it was valid (NaN if not, which crosses no threshold).
        if rtt_ms is not None:
            if type(rtt_ms) is float and 0.0 < rtt_ms <= rtt_hi and len(rtt_s) < cap:
                rtt_s.append(rtt_ms)
                if rtt_ms > rtt_over:
                    next(high_rtt)
            elif _qos_slow(rtt, rtt_ms, zero_is_measured) > rtt_over:
                next(high_rtt)
        if jitter_ms is not None:
            if type(jitter_ms) is float and 0.0 < jitter_ms <= jitter_hi and len(jitter_s) < cap:
                jitter_s.append(jitter_ms)
                if jitter_ms > jitter_over:
                    next(high_jitter)
            elif _qos_slow(jitter, jitter_ms, zero_is_measured) > jitter_over:
                next(high_jitter)
        if loss_fraction is not None:
            if type(loss_fraction) is float and 0.0 < loss_fraction <= loss_hi and len(loss_s) < cap:
                loss_s.append(loss_fraction)
                if loss_fraction > loss_over:
                    next(high_loss)
            elif _qos_slow(loss, loss_fraction, zero_is_measured) > loss_over:
                next(high_loss)
        if mos_estimate is None:
            next(unknown)
            return
        if type(mos_estimate) is float and mos_lo <= mos_estimate <= mos_hi and len(mos_s) < cap:
            mos_s.append(mos_estimate)
            value = mos_estimate
        else:
            value = _qos_slow(mos, mos_estimate)
        # ITU-T G.109 categories, best first (most calls stop at the first test); NaN fails all.
        if value >= best_at:
            next(best)
        elif value >= high_at:
            next(high)
        elif value >= medium_at:
            next(medium)
        elif value >= low_at:
            next(low)
        elif value >= poor_at:
            next(poor)
        elif value >= mos_lo:
            next(unusable)
        else:
            next(unknown)
        if value < mos_under:
            next(low_mos)

    assert observe_call_qos.__closure__ is not None
    cells = dict(zip(observe_call_qos.__code__.co_freevars, observe_call_qos.__closure__, strict=True))
    recorder = cat.call_quality.recorder

    def follow() -> None:
        thresholds = recorder.config.quality_thresholds
        cells["rtt_over"].cell_contents = thresholds.rtt_ms
        cells["jitter_over"].cell_contents = thresholds.jitter_ms
        cells["loss_over"].cell_contents = thresholds.loss_fraction
        cells["mos_under"].cell_contents = thresholds.mos

    recorder._config_listeners.append(follow)
    follow()
    return observe_call_qos
