"""What each family becomes in Prometheus: its name, type, unit conversion and histogram buckets.

statsd_exporter keeps a DogStatsD counter or gauge as it is; a distribution (`|d`, also `|h`)
becomes a histogram whose samples the mapping's `scale` multiplies before they are counted in
buckets (statsd_exporter `pkg/exporter/exporter.go`, `handleEvent`: `eventValue *=
mapping.Scale.Val`; `scale` exists since statsd_exporter 0.24.0). So a family in milliseconds
(`sip_call_rtt_ms`) becomes `sip_call_rtt_seconds`, scaled by 0.001, as Prometheus' naming
convention asks for base units; the library keeps sending milliseconds. `|ms` is never what
the library sends for these: statsd_exporter divides `|ms` values by 1000 itself
(`pkg/line/line.go`, `buildEvent`), and the mapping would scale them a second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..._core.family import Family
from ..._sip.quality import GRADE_FLOORS, QualityThresholds
from ..._sip.values import (
    METRIC_CALL_DURATION_S,
    METRIC_CALL_JITTER_MS,
    METRIC_CALL_LOSS_FRACTION,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_RTT_MS,
    METRIC_SESSION_REQUEST_DELAY_MS,
)

# Bucket upper bounds, in the Prometheus unit, chosen per quantity: where its values lie and
# where the alerts and the quality issues draw their lines (added per build, see `buckets`).
_RTT_S = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1.0, 2.0)  # G.114: 150 ms one way
_JITTER_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5)
_SETUP_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)  # post-dial delay
_DURATION_S = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)
_MOS = (1.0, 1.5, 2.0, *sorted(floor for floor, _ in GRADE_FLOORS), 4.5, 5.0)  # G.109 grade floors
_RATIO = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)  # a user's time
_ANY = tuple(m * 10.0**e for e in range(-3, 5) for m in (1.0, 2.5, 5.0))  # a user's number of unknown unit


@dataclass(frozen=True)
class PromMetric:
    """One family as statsd_exporter exposes it through the generated mapping."""

    family: Family
    match: str  # the statsd name the service sends (prefix included)
    name: str  # the Prometheus name (histograms add _bucket, _sum, _count)
    kind: str  # counter, gauge, histogram
    unit: str  # Grafana's unit id for a panel showing the value
    scale: float | None = None
    buckets: tuple[float, ...] = ()

    def help(self) -> str:
        text = self.family.description or self.family.name
        if self.scale is not None:
            text += f" (sent in milliseconds, exposed in seconds: scale {self.scale:g})"
        return text


def prom_name(name: str, prefix: str | None) -> str:
    """A statsd name (dot-separated segments) as a Prometheus name: dots become underscores."""
    full = f"{prefix}.{name}" if prefix else name
    return full.replace(".", "_")


def _rebase(name: str) -> tuple[str, float | None, str, tuple[float, ...]]:
    """A user's distribution by its name's unit suffix: new name, scale, Grafana unit, buckets."""
    if m := re.fullmatch(r"(.+)_(ms|milliseconds)", name):
        return f"{m[1]}_seconds", 0.001, "s", _SECONDS
    if m := re.fullmatch(r"(.+)_(s|seconds)", name):
        return f"{m[1]}_seconds", None, "s", _SECONDS
    if m := re.fullmatch(r"(.+)_(fraction|ratio)", name):
        return f"{m[1]}_ratio", None, "percentunit", _RATIO
    return name, None, "none", _ANY


def _with(bounds: tuple[float, ...], *extra: float) -> tuple[float, ...]:
    return tuple(sorted({round(b, 6) for b in (*bounds, *extra)}))


def buckets(
    quality: QualityThresholds, mos_alert: float
) -> dict[str, tuple[str, float | None, str, tuple[float, ...]]]:
    """The catalog's distributions: Prometheus name stem, scale, Grafana unit, buckets.

    The quality issues' thresholds and the MOS alert's threshold are bucket bounds, so a
    quantile or a share compared with them is exact rather than interpolated.
    """
    return {
        METRIC_CALL_RTT_MS: ("sip_call_rtt_seconds", 0.001, "s", _with(_RTT_S, quality.rtt_ms / 1000)),
        METRIC_CALL_JITTER_MS: ("sip_call_jitter_seconds", 0.001, "s", _with(_JITTER_S, quality.jitter_ms / 1000)),
        METRIC_CALL_LOSS_FRACTION: ("sip_call_loss_ratio", None, "percentunit", _with(_RATIO, quality.loss_fraction)),
        METRIC_CALL_MOS_ESTIMATE: ("sip_call_mos_estimate", None, "none", _with(_MOS, quality.mos, mos_alert)),
        METRIC_CALL_DURATION_S: ("sip_call_duration_seconds", None, "s", _DURATION_S),
        METRIC_SESSION_REQUEST_DELAY_MS: ("sip_session_request_delay_seconds", 0.001, "s", _SETUP_S),
    }


def prom_metric(
    family: Family,
    prefix: str | None,
    known: dict[str, tuple[str, float | None, str, tuple[float, ...]]],
) -> PromMetric:
    match = f"{prefix}.{family.name}" if prefix else family.name
    if family.kind == "count":
        return PromMetric(family, match, prom_name(family.name, prefix), "counter", "short")
    if family.kind == "distribution":
        stem, scale, unit, bounds = known.get(family.name) or _rebase(family.name.replace(".", "_"))
        return PromMetric(family, match, prom_name(stem, prefix), "histogram", unit, scale, bounds)
    return PromMetric(family, match, prom_name(family.name, prefix), "gauge", "short")
