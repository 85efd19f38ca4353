"""What each family becomes in Prometheus: its name, type, unit and histogram buckets.

statsd_exporter keeps a DogStatsD counter or gauge as it is and makes a distribution a
histogram (the mapping's buckets). Units follow what `configure(receiver="statsd_exporter")`
sends: a distribution in milliseconds (a name ending `_ms`, e.g. `sip_call_rtt_ms`) goes as a
`|ms` timer, which statsd_exporter itself divides by 1000 ("prometheus presumes seconds",
`pkg/line/line.go`, `buildEvent`), so the mapping only renames it `sip_call_rtt_seconds`, as
Prometheus' naming convention asks for base units; every other distribution (a MOS, a loss
fraction, seconds) goes as `|h`, unscaled. No mapping `scale`: it would convert a second time.
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
    buckets: tuple[float, ...] = ()

    def help(self) -> str:
        text = self.family.description or self.family.name
        if self.kind == "histogram" and self.name.endswith("_seconds") and not self.family.name.endswith("_s"):
            # The family says "milliseconds" (what the service records); what this name exposes is seconds.
            text = re.sub(r"\bmilliseconds\b", "seconds", text)
            text += " (sent as |ms timers in milliseconds; statsd_exporter divides by 1000)"
        return text


def prom_name(name: str, prefix: str | None) -> str:
    """A statsd name (dot-separated segments) as a Prometheus name: dots become underscores."""
    full = f"{prefix}.{name}" if prefix else name
    return full.replace(".", "_")


Known = dict[str, tuple[str, str, tuple[float, ...]]]


def _rebase(name: str) -> tuple[str, str, tuple[float, ...]]:
    """A user's distribution by its name's unit suffix: Prometheus name stem, Grafana unit, buckets."""
    if m := re.fullmatch(r"(.+)_(ms|milliseconds|s|seconds)", name):
        return f"{m[1]}_seconds", "s", _SECONDS
    if m := re.fullmatch(r"(.+)_(fraction|ratio)", name):
        return f"{m[1]}_ratio", "percentunit", _RATIO
    return name, "none", _ANY


def _with(bounds: tuple[float, ...], *extra: float) -> tuple[float, ...]:
    return tuple(sorted({round(b, 6) for b in (*bounds, *extra)}))


def buckets(quality: QualityThresholds, mos_alert: float) -> Known:
    """The catalog's distributions: Prometheus name stem, Grafana unit, buckets.

    The quality issues' thresholds and the MOS alert's threshold are bucket bounds, so a
    quantile or a share compared with them is exact rather than interpolated.
    """
    return {
        METRIC_CALL_RTT_MS: ("sip_call_rtt_seconds", "s", _with(_RTT_S, quality.rtt_ms / 1000)),
        METRIC_CALL_JITTER_MS: ("sip_call_jitter_seconds", "s", _with(_JITTER_S, quality.jitter_ms / 1000)),
        METRIC_CALL_LOSS_FRACTION: ("sip_call_loss_ratio", "percentunit", _with(_RATIO, quality.loss_fraction)),
        METRIC_CALL_MOS_ESTIMATE: ("sip_call_mos_estimate", "none", _with(_MOS, quality.mos, mos_alert)),
        METRIC_CALL_DURATION_S: ("sip_call_duration_seconds", "s", _DURATION_S),
        METRIC_SESSION_REQUEST_DELAY_MS: ("sip_session_request_delay_seconds", "s", _SETUP_S),
    }


def prom_metric(family: Family, prefix: str | None, known: Known) -> PromMetric:
    match = f"{prefix}.{family.name}" if prefix else family.name
    if family.kind == "count":
        return PromMetric(family, match, prom_name(family.name, prefix), "counter", "short")
    if family.kind == "distribution":
        stem, unit, bounds = known.get(family.name) or _rebase(family.name.replace(".", "_"))
        return PromMetric(family, match, prom_name(stem, prefix), "histogram", unit, bounds)
    return PromMetric(family, match, prom_name(family.name, prefix), "gauge", "short")
