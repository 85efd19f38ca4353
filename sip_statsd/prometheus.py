"""Prometheus and Grafana assets generated from the catalog: a statsd_exporter mapping, rules, a dashboard.

>>> from sip_statsd import SipMetrics
>>> from sip_statsd.prometheus import build, write
>>> assets = build(SipMetrics(backend="off"), tags=("env", "service"))
>>> paths = write("prometheus", assets)

`write` puts `statsd_exporter.yml` (the exporter's `--statsd.mapping-config`),
`sip_statsd.rules.yml` (recording and alerting rules for Prometheus' `rule_files`) and
`grafana-dashboard.json` (import it in Grafana, pick the Prometheus data source) in a
directory. The service sends with `configure(receiver="statsd_exporter")`. Thresholds are
the Datadog monitors' (`sip_statsd.dashboard.Thresholds`). Only `validate` needs the
`prometheus` extra (`python -m pip install '.[prometheus]'`: Grafana's foundation SDK).
"""

from __future__ import annotations

from typing import Any

from ._assets.datadog.parts import DEFAULT_TAGS, DEFAULT_TITLE, InvalidDocumentError, Thresholds
from ._assets.prometheus.build import FILES, Assets, build, queries, write


def validate(dashboard: dict[str, Any]) -> None:
    """Check a Grafana dashboard with `grafana-foundation-sdk`'s models; `InvalidDocumentError` says where.

    Every field must survive a round trip through the SDK's `Dashboard` model (a field it
    does not know is one Grafana's schema does not have) and every unit must be Grafana's.
    """
    from ._assets.prometheus.grafana_sdk import validate as _validate

    _validate(dashboard)


__all__ = [
    "DEFAULT_TAGS",
    "DEFAULT_TITLE",
    "FILES",
    "Assets",
    "InvalidDocumentError",
    "Thresholds",
    "build",
    "queries",
    "validate",
    "write",
]
