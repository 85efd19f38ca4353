"""`sip-statsd catalog --billing`: the Datadog custom metrics a configuration can send, from the catalog.

Datadog bills a custom metric per distinct metric name and tag values, the host tag included
(docs.datadoghq.com, "Custom Metrics Billing"): a count or a gauge series is one; a
distribution series is five (count, sum, min, max, avg), and with percentiles enabled on the
metric, five more (p50, p75, p90, p95, p99) for every tag value combination that could be
queried: each label may be one of its values or left out, so up to the product of
(values + 1) over its labels. The figure is per host and per value of each constant tag
(`env`, `service`, `version`): a fleet multiplies it by its hosts (and percentiles by hosts + 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from math import prod
from typing import TextIO

from .._core.family import Family

DISTRIBUTION_AGGREGATES = 5  # count, sum, min, max, avg
PERCENTILES = 5  # p50, p75, p90, p95, p99


@dataclass(frozen=True)
class Billed:
    """One metric: its series and the custom metrics they count as."""

    name: str
    kind: str
    origin: str  # "sip", "library" or "yours"
    series: int
    custom: int  # without percentiles
    percentiles: int  # added when percentiles are enabled on it


def billed(family: Family) -> Billed:
    series = len(family.all_series)
    name = family.name
    origin = "library" if name.startswith("sip_statsd_") else "sip" if name.startswith("sip_") else "yours"
    if family.kind != "distribution":
        return Billed(family.name, family.kind, origin, series, series, 0)
    queryable = prod(len(values) + 1 for values in family.allowed.values())
    return Billed(family.name, family.kind, origin, series, DISTRIBUTION_AGGREGATES * series, PERCENTILES * queryable)


def render_billing(families: Iterable[Family], percentiles: bool, fmt: str | None, out: TextIO) -> None:
    rows = sorted((billed(f) for f in families), key=lambda b: (b.origin == "library", b.name))
    by_origin = {o: sum(b.custom for b in rows if b.origin == o) for o in ("sip", "yours", "library")}
    extra = sum(b.percentiles for b in rows)
    total = sum(by_origin.values()) + (extra if percentiles else 0)
    if fmt == "json":
        doc = {
            "metrics": [asdict(b) for b in rows],
            "custom_metrics": by_origin,
            "percentiles": extra,
            "total": total,
            "percentiles_enabled": percentiles,
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
        return
    width = max(len(b.name) for b in rows)
    out.write(f"{'metric':{width}}  {'type':12}  {'series':>6}  {'custom metrics':>14}  {'+ percentiles':>13}\n")
    for b in rows:
        more = f"{b.percentiles:>13}" if b.kind == "distribution" else ""
        out.write(f"{b.name:{width}}  {b.kind:12}  {b.series:>6}  {b.custom:>14}  {more}".rstrip() + "\n")
    labels = {"sip": "SIP", "yours": "yours", "library": "the library's own"}
    parts = ", ".join(f"{n} {labels[origin]}" for origin, n in by_origin.items() if n)
    out.write(
        f"\nDatadog custom metrics per host and env/service/version: at most {total:,} ({parts}"
        + (f", {extra} of percentiles" if percentiles else "")
        + ")\n"
    )
    if not percentiles:
        out.write(f"with percentiles enabled on the distributions: +{extra} (--percentiles)\n")
    out.write(
        "only series that receive a value in an hour count: the library's own appear on drops, send errors "
        "and sampling\n"
    )
