"""What statsd_exporter exposes for the lines it receives, read from its source (not installable here).

A port of the parts that decide the exposed series, each following the Go code it names
(github.com/prometheus/statsd_exporter, 0.30):
- `pkg/line/line.go` `LineToEvents`: `name:value|type|@rate|#tags`, DogStatsD tags (`#k:v,...`),
  extended aggregation (`name:1:2:3|d`, only for ms/h/d), `|ms` divided by 1000, `|h` and `|d` not;
  a line with an unknown `|x:` section is dropped;
- `pkg/mapper/mapper.go` `GetMapping` (glob: a `*` matches one dot-separated segment) and
  `match_metric_type`; `pkg/exporter/exporter.go` `handleEvent`: the mapped name, `scale`, the
  unmapped name escaped (`pkg/mapper/escape.go`), counters summed, gauges set or moved (`+`/`-`),
  observers into a histogram with the mapping's buckets (cumulative, plus `+Inf`, `_sum`, `_count`).

`tests/statsd_exporter/line_cases.json` holds statsd_exporter's own `TestLineToEvents` cases;
`test_prometheus.py` checks that `parse` gives the events they expect.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

Labels = tuple[tuple[str, str], ...]


def escape(name: str) -> str:
    """`mapper.EscapeMetricName` for the names we meet: invalid characters become '_'."""
    out = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + out if out[:1].isdigit() else out


@dataclass
class Event:
    kind: str  # counter, gauge, observer
    name: str
    value: float
    labels: dict[str, str]
    relative: bool = False


def _tags(section: str, labels: dict[str, str]) -> None:
    for tag in section.split(","):
        key, sep, value = tag.removeprefix("#").partition(":")
        if sep and key and value:
            labels[escape(key)] = value  # a malformed tag is counted and skipped, the line kept


def parse(line: str) -> list[Event]:
    """`LineToEvents` with DogStatsD tags on (the exporter's default)."""
    name, sep, rest = line.partition(":")
    if not sep or not name:
        return []
    parts = rest.split("|", 2)
    if len(parts) < 2:
        return []
    if ":" in parts[0]:  # extended aggregation: one sample per value
        if parts[1] not in ("ms", "h", "d"):
            return []
        suffix = rest.split("|", 1)[1]
        samples = [f"{v}|{suffix}" for v in parts[0].split(":")]
    elif "|#" in rest:
        samples = [rest]
    else:
        samples = rest.split(":")
    events = []
    labels: dict[str, str] = {}
    for sample in samples:
        components = sample.split("|")
        if not 2 <= len(components) <= 6:
            continue
        text, kind = components[0], components[1]
        try:
            value = float(text)
        except ValueError:
            continue
        repeat = 1
        ok = True
        for component in components[2:]:
            if not component:
                ok = False
            elif component[0] == "@":
                try:
                    rate = float(component[1:]) or 1.0
                except ValueError:  # counted as an error; the factor is then 0, taken as 1
                    rate = 1.0
                if kind == "c":
                    value /= rate
                elif kind in ("ms", "h", "d"):
                    repeat = int(1 / rate)
            elif component[0] == "#":
                _tags(component[1:], labels)
            elif component.startswith("c:") and len(component) > 2:
                labels["container_id"] = component[2:]
            elif component[0] != "T":
                ok = False  # e.g. |e: or |card:: the sample is dropped
        if not ok:
            continue
        relative = text[:1] in "+-"
        for _ in range(repeat):
            if kind == "c":
                events.append(Event("counter", name, value, dict(labels)))
            elif kind == "g":
                events.append(Event("gauge", name, value, dict(labels), relative))
            elif kind == "ms":
                events.append(Event("observer", name, value / 1000, dict(labels)))
            elif kind in ("h", "d"):
                events.append(Event("observer", name, value, dict(labels)))
    return events


def _glob(pattern: str, name: str) -> bool:
    want, have = pattern.split("."), name.split(".")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1


DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # prometheus.DefBuckets


class Exporter:
    """One statsd_exporter with a mapping config (the parsed YAML), fed line by line."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.mappings = config.get("mappings", [])
        self.defaults = config.get("defaults", {})
        self.counters: dict[tuple[str, Labels], float] = {}
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], Histogram] = {}
        self.unmapped: set[str] = set()

    def _mapping(self, name: str, kind: str) -> dict[str, Any] | None:
        for m in self.mappings:
            if _glob(m["match"], name) and m.get("match_metric_type", kind) == kind:
                return dict(m)
        return None

    def feed(self, datagram: str) -> None:
        for line in datagram.splitlines():
            for event in parse(line.strip()):
                self._handle(event)

    def _handle(self, event: Event) -> None:
        mapping = self._mapping(event.name, event.kind)
        if mapping is None:
            self.unmapped.add(event.name)
            name, scale, buckets = escape(event.name), None, DEFAULT_BUCKETS
        else:
            name = escape(mapping["name"])
            scale = mapping.get("scale")
            options = mapping.get("histogram_options") or self.defaults.get("histogram_options") or {}
            buckets = tuple(options.get("buckets") or DEFAULT_BUCKETS)
        value = event.value * scale if scale is not None else event.value
        key = (name, tuple(sorted(event.labels.items())))
        if event.kind == "counter":
            if value >= 0:
                self.counters[key] = self.counters.get(key, 0.0) + value
        elif event.kind == "gauge":
            self.gauges[key] = self.gauges.get(key, 0.0) + value if event.relative else value
        else:
            self.histograms.setdefault(key, Histogram(buckets)).observe(value)

    def exposition(self) -> dict[str, float]:
        """Every exposed sample: `name{k="v",...}` -> value, as a scrape of /metrics gives them."""
        out: dict[str, float] = {}

        def put(name: str, labels: Labels, value: float) -> None:
            body = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
            out[f"{name}{{{body}}}" if body else name] = value

        for (name, labels), value in self.counters.items():
            put(name, labels, value)
        for (name, labels), value in self.gauges.items():
            put(name, labels, value)
        for (name, labels), h in self.histograms.items():
            for bound, count in zip(h.buckets, h.counts, strict=True):
                put(f"{name}_bucket", (*labels, ("le", _le(bound))), count)
            put(f"{name}_bucket", (*labels, ("le", "+Inf")), h.n)
            put(f"{name}_sum", labels, h.total)
            put(f"{name}_count", labels, h.n)
        return out


def _le(bound: float) -> str:
    """A bucket bound as client_golang writes it (`0.3`, `1`, `14400`)."""
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound)).removesuffix(".0")
