"""Check a generated Grafana dashboard with Grafana's own models (`grafana-foundation-sdk`).

Imported only by `sip_statsd.prometheus.validate`: the `prometheus` extra
(`python -m pip install '.[prometheus]'`) pins a build of the SDK; nothing else needs it.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.dashboard import Dashboard

from ..datadog.parts import InvalidDocumentError

_UNITS = {v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str)}


def _lost(ours: Any, theirs: Any, path: str) -> list[str]:
    """Where `theirs` lacks or changes what `ours` has."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [path]
        out = []
        for key, value in ours.items():
            out += (
                [f"{path}/{key}: not in the model"] if key not in theirs else _lost(value, theirs[key], f"{path}/{key}")
            )
        return out
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [f"{path}: changed"]
        return [p for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for p in _lost(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {ours!r} became {theirs!r}"]


def validate(dashboard: dict[str, Any]) -> None:
    """Raise `InvalidDocumentError` unless the SDK's models read back every field, and every unit is Grafana's."""
    plugins.register_default_plugins()
    doc = json.loads(json.dumps(dashboard))
    back = json.loads(json.dumps(Dashboard.from_json(doc), cls=JSONEncoder))
    problems = _lost(doc, back, "")
    for i, panel in enumerate(doc.get("panels", ())):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if unit is not None and unit not in _UNITS:
            problems.append(f"/panels[{i}]: unit {unit!r} is not a Grafana unit")
    if problems:
        raise InvalidDocumentError("Grafana dashboard", problems)
