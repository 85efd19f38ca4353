"""The parts of a generated Grafana dashboard: panels, rows, variables, as plain dicts.

Grafana's dashboard JSON (schema 39, Grafana 10.1 and later); `grafana-foundation-sdk`'s
models read every field written here (the tests load the dashboard into them and compare).
Every panel queries the datasource variable, so one dashboard serves any Prometheus.
"""

from __future__ import annotations

from typing import Any

Panel = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _target(expr: str, ref: str, legend: str, *, instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": DATASOURCE, "refId": ref, "expr": expr, "legendFormat": legend}
    if instant:
        target.update(instant=True, range=False, format="time_series")
    else:
        target.update(range=True)
    return target


def _targets(queries: dict[str, str], *, instant: bool = False) -> list[dict[str, Any]]:
    refs = "ABCDEFGHIJ"
    return [_target(expr, refs[i], legend, instant=instant) for i, (legend, expr) in enumerate(queries.items())]


def timeseries(title: str, queries: dict[str, str], *, unit: str = "short", bars: bool = False) -> Panel:
    """A time series panel; `queries` maps a legend format (`{{code_class}}`) to its PromQL."""
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "fillOpacity": 60 if bars else 10}
    if bars:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "targets": _targets(queries),
        "fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": custom}, "overrides": []},
        "options": {
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title: str, expr: str, *, unit: str = "percentunit", decimals: int = 1) -> Panel:
    """One number over the dashboard's time range (the query uses `$__range`)."""
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "targets": _targets({"": expr}, instant=True),
        "fieldConfig": {"defaults": {"unit": unit, "decimals": decimals}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    }


def toplist(title: str, expr: str, legend: str, *, unit: str = "short") -> Panel:
    """The largest series over the time range, as horizontal bars (Datadog's toplist)."""
    return {
        "type": "bargauge",
        "title": title,
        "datasource": DATASOURCE,
        "targets": _targets({legend: f"topk(10, {expr})"}, instant=True),
        "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
        },
    }


def text(content: str) -> Panel:
    return {"type": "text", "title": "", "options": {"mode": "markdown", "content": content}}


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def place(groups: list[tuple[str, str, list[Panel]]]) -> list[Panel]:
    """Rows in order, each with its note across the width, then its panels two by two."""
    out: list[Panel] = []
    y = 0
    for title, note, panels in groups:
        out.append({**row(title), "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}})
        out.append({**text(note), "gridPos": {"x": 0, "y": y + 1, "w": 24, "h": 3}})
        y += 4
        for i, panel in enumerate(panels):
            small = panel["type"] == "stat"
            height = 4 if small else 8
            out.append({**panel, "gridPos": {"x": 12 * (i % 2), "y": y + 8 * (i // 2), "w": 12, "h": height}})
        y += 8 * ((len(panels) + 1) // 2)
    for i, panel in enumerate(out):
        panel["id"] = i + 1
    return out


def variables(tags: tuple[str, ...], metric: str) -> list[dict[str, Any]]:
    """The datasource variable, then one multi-value variable per tag (All = any value, or none)."""
    out: list[dict[str, Any]] = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
        }
    ]
    for tag in tags:
        query = f"label_values({metric}, {tag})"
        out.append(
            {
                "type": "query",
                "name": tag,
                "label": tag,
                "datasource": DATASOURCE,
                "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {},
                "hide": 0,
                "regex": "",
                "sort": 1,
                "skipUrlSync": False,
            }
        )
    return out
