"""The parts a generated Datadog dashboard is made of: queries, widgets, monitors, thresholds.

Plain dicts in the Datadog public API's JSON (v1 dashboards and monitors), so they can be
written, edited and applied without `datadog-api-client`; its models validate them in the
tests and before `--apply` sends anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any


class InvalidDocumentError(ValueError):
    """A document the Datadog models do not accept; `problems` says where and why."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        super().__init__(f"not a valid Datadog {kind}: {shown}")


class ApplyError(Exception):
    """`apply` could not finish; the message is one line, fit for a terminal."""


Widget = dict[str, Any]
Monitor = dict[str, Any]

# The tags the datadog backend adds from DD_ENV / DD_SERVICE / DD_VERSION.
DEFAULT_TAGS = ("env", "service", "version")
DEFAULT_TITLE = "SIP signalling (sip-statsd)"
MANAGED_TAG = "managed-by:sip-statsd"
PERCENTILES = ("p50", "p95", "p99")


@dataclass(frozen=True)
class Thresholds:
    """Monitor thresholds (the critical value of each monitor) and windows.

    Defaults suit a service with a steady flow of calls; tune them to your own baseline
    (`sip-statsd dashboard --threshold asr_percent=35`).
    """

    no_data_minutes: int = 30  # no INVITE outcome counted for this long: a service stopped counting
    asr_percent: float = 30.0  # answer-seizure ratio below this, over 15 minutes
    error_share_percent: float = 10.0  # 5xx + 6xx share of final outcomes above this, over 15 minutes
    transaction_timeouts: float = 20.0  # transaction timeouts in 5 minutes above this
    stir_failure_percent: float = 5.0  # STIR 'failed' share of verifications above this, over 15 minutes
    dtls_failure_percent: float = 5.0  # DTLS handshakes not 'ok' above this share, over 15 minutes
    mos_p50: float = 3.5  # median MOS below this, over 30 minutes
    poor_call_percent: float = 5.0  # poor or unusable share of graded calls above this, over 30 minutes
    isa_percent: float = 10.0  # RFC 6076 ineffective session attempts above this share, over 15 minutes
    peer_min_attempts: float = 20.0  # a peer's ASR is judged (asr_percent) only from this many final outcomes in 15m
    dropped_inputs: float = 0.0  # dropped inputs in 15 minutes above this (any is a bug)
    send_errors: float = 0.0  # datagrams not delivered in 15 minutes above this

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"threshold {f.name}={value!r} must be a finite number >= 0")
        if int(self.no_data_minutes) != self.no_data_minutes or self.no_data_minutes < 20:
            # Datadog recommends a no-data timeframe of at least twice the 10-minute evaluation window.
            raise ValueError(f"threshold no_data_minutes={self.no_data_minutes!r} must be a whole number >= 20")
        percents = ("asr_percent", "error_share_percent", "stir_failure_percent", "dtls_failure_percent")
        for name in (*percents, "poor_call_percent", "isa_percent"):
            if getattr(self, name) > 100:
                raise ValueError(f"threshold {name}={getattr(self, name)!r} must be a percentage from 0 to 100")
        if not 1 <= self.mos_p50 <= 5:
            raise ValueError(f"threshold mos_p50={self.mos_p50!r} must be a MOS from 1 to 5")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Queries:
    """Metric queries as the service sends them: names with the prefix, tags as template variables.

    Dashboard queries scope every metric to the template variables (`$env`); monitor
    queries (`monitor=True`) group by the same tags instead, so each service alerts alone.
    """

    prefix: str | None
    tags: tuple[str, ...]
    monitor: bool = False

    def name(self, metric: str) -> str:
        return f"{self.prefix}.{metric}" if self.prefix else metric  # as configure(prefix=) sends it

    def scope(self, filters: Iterable[str] = ()) -> str:
        items = [*filters, *(() if self.monitor else (f"${t}" for t in self.tags))]
        return "{" + (",".join(items) or "*") + "}"

    def _by(self, by: Sequence[str]) -> str:
        keys = [*(self.tags if self.monitor else ()), *by]
        return f" by {{{','.join(keys)}}}" if keys else ""

    def count(self, metric: str, *filters: str, by: Sequence[str] = (), rate: bool = False) -> str:
        """`sum:` of a counter, `.as_count()` (or `.as_rate()`, per second)."""
        suffix = ".as_rate()" if rate else ".as_count()"
        return f"sum:{self.name(metric)}{self.scope(filters)}{self._by(by)}{suffix}"

    def dist(self, aggregation: str, metric: str, *filters: str, by: Sequence[str] = ()) -> str:
        """A distribution query: `p50:` … `p99:` (percentiles enabled on the metric), `avg:`, `count:`."""
        return f"{aggregation}:{self.name(metric)}{self.scope(filters)}{self._by(by)}"

    def gauge(self, metric: str, *filters: str, by: Sequence[str] = (), aggregation: str = "avg") -> str:
        """A gauge query; `sum` adds the levels of several hosts or workers (calls in progress)."""
        return f"{aggregation}:{self.name(metric)}{self.scope(filters)}{self._by(by)}"


# --- widgets -----------------------------------------------------------------------------


def _queries(queries: dict[str, str], aggregator: str | None = None) -> list[dict[str, str]]:
    out = []
    for name, query in queries.items():
        q = {"data_source": "metrics", "name": name, "query": query}
        if aggregator:
            q["aggregator"] = aggregator
        out.append(q)
    return out


def _formulas(formulas: dict[str, str] | None, queries: dict[str, str]) -> list[dict[str, str]]:
    if formulas is None:
        return [{"formula": name} for name in queries]
    return [{"formula": f, "alias": alias} for alias, f in formulas.items()]


def timeseries(
    title: str,
    queries: dict[str, str],
    formulas: dict[str, str] | None = None,
    *,
    display: str = "line",
    unit: str | None = None,
) -> Widget:
    """A timeseries of metric queries; `formulas` maps a legend alias to a formula over them."""
    definition: dict[str, Any] = {
        "type": "timeseries",
        "title": title,
        "show_legend": True,
        "legend_layout": "auto",
        "requests": [
            {
                "response_format": "timeseries",
                "queries": _queries(queries),
                "formulas": _formulas(formulas, queries),
                "display_type": display,
            }
        ],
    }
    if unit:
        definition["yaxis"] = {"label": unit, "include_zero": True}
    return {"definition": definition}


def value(title: str, queries: dict[str, str], formula: str, *, unit: str = "%", precision: int = 1) -> Widget:
    """One number over the dashboard's time frame (queries summed over it)."""
    return {
        "definition": {
            "type": "query_value",
            "title": title,
            "autoscale": False,
            "precision": precision,
            "custom_unit": unit,
            "requests": [
                {
                    "response_format": "scalar",
                    "queries": _queries(queries, aggregator="sum"),
                    "formulas": [{"formula": formula}],
                }
            ],
        }
    }


def toplist(title: str, query: str) -> Widget:
    """The largest series of one query over the dashboard's time frame."""
    return {
        "definition": {
            "type": "toplist",
            "title": title,
            "requests": [
                {
                    "response_format": "scalar",
                    "queries": _queries({"a": query}, aggregator="sum"),
                    "formulas": [{"formula": "a", "limit": {"count": 10, "order": "desc"}}],
                }
            ],
        }
    }


def note(text: str) -> Widget:
    return {
        "definition": {
            "type": "note",
            "content": text,
            "background_color": "gray",
            "font_size": "14",
            "text_align": "left",
            "vertical_align": "top",
            "show_tick": False,
            "has_padding": True,
        }
    }


def group(title: str, widgets: list[Widget]) -> Widget:
    return {"definition": {"type": "group", "title": title, "layout_type": "ordered", "widgets": widgets}}


# --- monitors ----------------------------------------------------------------------------


def monitor(
    key: str,
    name: str,
    query: str,
    critical: float,
    message: str,
    *,
    no_data_minutes: int | None = None,
    priority: int = 3,
) -> Monitor:
    """A `query alert`: `query` ends with its comparison against `critical`.

    `key` names the monitor in the tags (`sip-statsd-monitor:<key>`), so a user can find or
    mute it whatever its title.
    """
    options: dict[str, Any] = {
        "thresholds": {"critical": critical},
        "notify_no_data": no_data_minutes is not None,
        "require_full_window": False,  # counters are sparse: a quiet minute is not missing data
        "include_tags": True,
        "new_group_delay": 300,  # a new service's first minutes are not an outage
        "renotify_interval": 0,
    }
    if no_data_minutes is not None:
        options["no_data_timeframe"] = no_data_minutes
    return {
        "name": name,
        "type": "query alert",
        "query": query,
        "message": message,
        "tags": [MANAGED_TAG, f"sip-statsd-monitor:{key}"],
        "priority": priority,
        "options": options,
    }


def number(x: float) -> str:
    """`x` as a monitor query writes it: `30` rather than `30.0`, `0.0001` rather than `1e-04`."""
    text = format(Decimal(repr(float(x))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
