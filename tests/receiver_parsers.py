"""Each StatsD receiver's line parser, transcribed as a test oracle.

Every function takes one line (no newline) and returns what that receiver makes of it, as
`Sample`s (one per value it records, with the weight it gives it), or raises `Rejected`
where the receiver drops the line or the sample. Each follows the source named in its
docstring, rule by rule, for the parts our lines can reach; they are not whole parsers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


class Rejected(ValueError):
    """The receiver drops this line (or its only sample)."""


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # "c", "g", or the distribution's statistic: "timer", "histogram", "distribution", "summary"
    value: float
    weight: float = 1.0  # how many events this sample stands for (1 / rate, as the receiver computes it)
    labels: dict[str, str] = field(default_factory=dict)
    relative: bool = False  # a gauge value read as a change of the level, not the level


def gauge_levels(samples: list[Sample]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Each gauge's level after `samples`, in order, as the receiver keeps it (a change moves it)."""
    levels: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for s in samples:
        if s.kind == "g":
            key = (s.name, frozenset(s.labels.items()))
            levels[key] = levels.get(key, 0.0) + s.value if s.relative else s.value
    return levels


def _signed(text: str) -> bool:
    return text[:1] in ("+", "-")


def _float(text: str) -> float:
    """Go's strconv.ParseFloat / Rust's f64::from_str on what we send: a decimal or exponent form."""
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise Rejected(f"not a number: {text!r}")
    return float(text)


def _tags(text: str, sep: str = ":") -> dict[str, str]:
    out = {}
    for tag in text.split(","):
        key, found, value = tag.partition(sep)
        if not found or not key or not value:
            raise Rejected(f"tag without a value: {tag!r}")
        out[key] = value
    return out


def datadog_agent(line: str) -> list[Sample]:
    """comp/dogstatsd/server/impl/parse.go, parseMetricSample (origin detection on)."""
    fields = line.split("|")
    if len(fields) < 2:
        raise Rejected("invalid dogstatsd message format")
    name, found, raw = fields[0].partition(":")
    if not found or not name or not raw:
        raise Rejected("invalid name and value")
    kind = fields[1]
    if kind not in ("g", "c", "h", "d", "s", "ms"):
        raise Rejected(f"invalid metric type {kind!r}")
    values = [_float(v) for v in raw.split(":") if v]  # parseFloat64List skips empty values
    if not values:
        raise Rejected("no value found")
    rate, labels = 1.0, {}
    for extra in fields[2:]:
        if extra.startswith("#"):
            labels = _tags(extra[1:])
        elif extra.startswith("@"):
            rate = _float(extra[1:])
        elif extra.startswith(("c:", "e:", "card:", "T")):
            pass  # origin detection fields and timestamps
        # any other field is skipped by the Agent
    return [Sample(name, kind, v, 1 / rate, labels) for v in values]


def statsd_exporter(line: str) -> list[Sample]:
    """pkg/line/line.go, LineToEvents and buildEvent (DogStatsD and InfluxDB tags enabled, as by default)."""
    name, found, rest = line.partition(":")
    if not found or not name:
        raise Rejected("malformed_line")
    labels: dict[str, str] = {}
    if "," in name:  # InfluxDB tags in the name
        name, _, tagtext = name.partition(",")
        labels = _tags(tagtext, "=")
        if "|#" in rest:
            raise Rejected("mixed_tagging_styles")
    parts = rest.split("|", 2)
    if len(parts) < 2:
        raise Rejected("not_enough_parts_after_colon")
    if ":" in parts[0]:
        if parts[1] not in ("ms", "h", "d"):
            raise Rejected("invalid_extended_aggregate_type")
        suffix = rest.partition("|")[2]
        samples = [f"{v}|{suffix}" for v in parts[0].split(":")]
    else:
        samples = [rest]
    out = []
    for sample in samples:
        components = sample.split("|")
        if not 2 <= len(components) <= 8:
            raise Rejected("malformed_component")
        value, kind = _float(components[0]), components[1]
        repeat, these = 1, dict(labels)
        for component in components[2:]:
            if not component:
                raise Rejected("malformed_component")
            if component[0] == "@":
                factor = _float(component[1:]) or 1.0
                if kind == "c":
                    value /= factor
                elif kind in ("ms", "h", "d"):
                    repeat = int(1 / factor)
            elif component[0] == "#":
                these.update(_tags(component[1:].lstrip("#")))
            elif component.startswith("c:") and len(component) > 2:
                these["container_id"] = component[2:]
            elif component[0] == "T":
                pass
            else:
                raise Rejected(f"invalid_sample_factor: {component!r}")
        if kind == "ms":
            value /= 1000  # "prometheus presumes seconds, statsd millisecond"
        elif kind not in ("c", "g", "h", "d"):
            raise Rejected(f"illegal_event: {kind!r}")
        statistic = kind if kind in ("c", "g") else "histogram"
        # buildEvent: `GaugeEvent{Relative: relative}`, relative when the value text starts with + or -
        relative = kind == "g" and _signed(components[0])
        out.extend(Sample(name, statistic, value, 1.0, these, relative) for _ in range(repeat))
    return out


def telegraf(line: str, datadog_extensions: bool = False, datadog_distributions: bool = False) -> list[Sample]:
    """plugins/inputs/statsd/statsd.go, parseStatsdLine, parseName and aggregate."""
    labels: dict[str, str] = {}
    if datadog_extensions:
        kept = []
        for segment in line.split("|"):
            if segment.startswith("#"):
                labels.update(dict(t.partition(":")[::2] for t in segment[1:].split(",")))
            elif not segment.startswith("c:"):
                kept.append(segment)
        line = "|".join(kept)
    bits = line.split(":")
    if len(bits) < 2:
        raise Rejected("Splitting ':', unable to parse metric")
    bucket, out = bits[0], []
    for bit in bits[1:]:
        pipesplit = bit.split("|")
        if len(pipesplit) < 2:
            raise Rejected("Splitting '|', unable to parse metric")
        rate = 0.0
        if len(pipesplit) > 2 and "@" in pipesplit[2] and len(pipesplit[2]) > 1:
            rate = _float(pipesplit[2][1:])
        kind = pipesplit[1]
        if kind not in ("g", "c", "s", "ms", "h", "d"):
            raise Rejected(f"Metric type {kind!r} unsupported")
        name, *tagparts = bucket.split(",")
        these = dict(labels)
        for tag in tagparts:
            key, _, value = tag.partition("=")
            these[key] = value
        if kind == "c":
            value = float(int(_float(pipesplit[0])))
            if rate:
                value = float(int(value / rate))
            out.append(Sample(name, "c", value, 1.0, these))
        elif kind in ("ms", "h"):
            repeat = int(1.0 / rate) if rate > 0 else 1
            out.extend(Sample(name, "timer", _float(pipesplit[0]), 1.0, these) for _ in range(repeat))
        elif kind == "d":
            if not (datadog_extensions and datadog_distributions):
                raise Rejected("|d is kept only with datadog_extensions and datadog_distributions")
            out.append(Sample(name, "distribution", _float(pipesplit[0]), 1.0, these))
        else:  # a gauge: `additive` when the value starts with + or - (parseStatsdLine)
            relative = kind == "g" and _signed(pipesplit[0])
            out.append(Sample(name, kind, _float(pipesplit[0]), 1.0, these, relative))
    return out


def otel_collector(line: str) -> list[Sample]:
    """receiver/statsdreceiver/internal/protocol/statsd_parser.go, parseMessageToMetric."""
    parts = line.split("|")
    if len(parts) < 2:
        raise Rejected("invalid message format")
    name, found, raw = parts[0].partition(":")
    if not found:
        raise Rejected("invalid <name>:<value> format")
    if not name:
        raise Rejected("empty metric name")
    if not raw:
        raise Rejected("empty metric value")
    kind = parts[1]
    if kind not in ("c", "g", "h", "ms", "d"):
        raise Rejected(f"unsupported metric type: {kind}")
    rate, labels = 0.0, {}
    for part in parts[2:]:
        if part.startswith("@"):
            rate = _float(part[1:])
        elif part.startswith("#"):
            if part[1:]:
                labels.update(_tags(part[1:]))
        elif part.startswith("c:"):
            if part[2:]:
                labels["container.id"] = part[2:]
        elif part.startswith("T"):
            if kind not in ("c", "g"):
                raise Rejected("only GAUGE and COUNT metrics support a timestamp")
        else:
            raise Rejected(f"unrecognized message part: {part}")
    value = _float(raw)  # one value: `1:2` fails here
    weight = 1 / rate if rate else 1.0  # sampleValue: count = 1 / sampleRate
    statistic = {"ms": "timer", "h": "histogram", "d": "histogram"}.get(kind, kind)
    if kind == "c":
        return [Sample(name, "c", float(int(value / rate)) if rate else value, 1.0, labels)]
    # a gauge: `addition` when the value starts with + or - (parseMessageToMetric)
    return [Sample(name, statistic, value, weight, labels, kind == "g" and _signed(raw))]


def vector(line: str) -> list[Sample]:
    """src/sources/statsd/parser.rs, Parser::parse (sanitize_keys on)."""
    key, found, body = line.partition(":")
    if not found:
        raise Rejected("should be key and body with ':' separator")
    parts = body.split("|")
    if len(parts) < 2:
        raise Rejected("body should have at least two pipe separated components")
    name = re.sub(r"[^a-zA-Z_\-0-9\.]", "", re.sub(r"\s+", "_", key.replace("/", "-")))
    kind = parts[1]
    sampling = parts[2] if len(parts) > 2 and parts[2].startswith("@") else None
    weight = 1.0
    if sampling is not None:
        rate = _float(sampling[1:])
        if rate < 0:
            raise Rejected("sample rate can't be negative")
        weight = 1.0 / (rate or 1.0)
    tagfield = (
        parts[3]
        if sampling is not None and len(parts) > 3
        else (parts[2] if sampling is None and len(parts) > 2 else None)
    )
    labels = {}
    if tagfield is not None and tagfield.startswith("#"):
        for tag in tagfield[1:].split(","):
            k, _, v = tag.partition(":")
            labels[k] = v
    if kind == "c":
        return [Sample(name, "c", _float(parts[0]) * weight, 1.0, labels)]
    if kind in ("h", "ms", "d"):
        value = _float(parts[0])
        if kind == "ms":
            value /= 1000.0  # convert_to_base_units
        statistic = "summary" if kind == "d" else "histogram"
        if not math.isfinite(weight):
            raise Rejected("rate")
        return [Sample(name, statistic, value, float(int(weight)), labels)]  # `sample_rate as u32`
    if kind == "g":
        # `MetricKind::Incremental` when the value starts with + or - (parse: gauge)
        return [Sample(name, "g", _float(parts[0]), 1.0, labels, _signed(parts[0]))]
    raise Rejected(f"UnknownMetricType({kind!r})")


def etsy(line: str) -> list[Sample]:
    """stats.js and lib/helpers.js (statsd 0.9.0): `|#` tags folded into the key as `;k=v`, key
    sanitising, `:`-split values, is_valid_packet, the type switch."""
    bits_and_tags = line.split("|#")
    tags = bits_and_tags[1].split(",") if len(bits_and_tags) > 1 and bits_and_tags[1] else []
    bits = bits_and_tags[0].split(":")
    key = bits.pop(0)
    if tags:
        key += ";" + ";".join(t.replace(";", "_", 1).replace(":", "=", 1) for t in tags)
    key = re.sub(r"[^a-zA-Z_\-0-9\.;=]", "", re.sub(r"/", "-", re.sub(r"\s+", "_", key)))
    if not bits:
        bits = ["1"]
    out = []
    for bit in bits:
        fields = bit.split("|")
        if len(fields) < 2:
            raise Rejected("Bad line")  # is_valid_packet: no type
        if len(fields) > 2 and not re.fullmatch(r"@[\d.]+(e-?\d+)?", fields[2]):
            raise Rejected("Bad line")  # is_valid_packet: a third field must be a sample rate
        # `Number(fields[2].match(/^@([\d\.]+)/)[1])`: an exponent is cut off (`@1e-05` reads as 1)
        rate = float(re.match(r"@([\d.]+)", fields[2]).group(1)) if len(fields) > 2 else 1.0  # type: ignore[union-attr]
        kind = fields[1].strip()
        value = _float(fields[0])
        if kind == "ms":
            if value < 0:
                raise Rejected("Bad line")
            out.append(Sample(key, "timer", value, 1 / rate))  # timer_counters += 1 / sampleRate
        elif kind == "g":
            out.append(Sample(key, "g", value, relative=_signed(fields[0])))  # `gauges[key] += value` on /^[-+]/
        else:  # every other letter is a counter, scaled by the rate
            out.append(Sample(key, "c", value * (1 / rate)))
    return out


PARSERS = {
    "datadog": datadog_agent,
    "statsd_exporter": statsd_exporter,
    "telegraf": telegraf,
    "otel_collector": otel_collector,
    "vector": vector,
    "etsy": etsy,
}
