"""Receiver dialects: what each StatsD receiver parses, and so what we send it.

`configure(receiver=...)` names what listens; each `Dialect` below says how its lines are
written: where the labels go, which type letter a distribution gets, whether a flush's
samples may be packed into one line, which DogStatsD extension fields may follow, and
whether every declared counter is sent once as 0. Each choice follows the receiver's own
parser, cited beside it (paths are in each project's repository):

- Datadog Agent: comp/dogstatsd/server/impl/parse.go (`parseMetricSample`: packed values
  `name:v1:v2|d`, optional fields `|@rate`, `|#tags`, `|c:`, `|e:`, `|card:`, `|T` in any order).
- statsd_exporter: pkg/line/line.go (`buildEvent`: `ms` values are divided by 1000, "prometheus
  presumes seconds"; `h` and `d` pass unchanged. `LineToEvents`: a component that is not `@`,
  `#`, `c:` or `T` drops the sample ("invalid_sample_factor"), so `|e:` and `|card:` lose it;
  `|c:` becomes a `container_id` label; `;k=v` is not a tag syntax, so Graphite tags make one
  metric per label set; packed values are read only by 0.27.1 and later).
- Telegraf: plugins/inputs/statsd/statsd.go (`parseStatsdLine`: the line is split on every `:`,
  so `name:1:2|h` fails ("Splitting '|'"); `|#tags` are read only with `datadog_extensions`,
  `name,k=v` always (`parseName`); `d` is kept only with `datadog_distributions`; `ms` and `h`
  both go to the timings, unscaled; the sample rate must be the third field).
- OpenTelemetry collector: receiver/statsdreceiver/internal/protocol/statsd_parser.go
  (`parseMessageToMetric`: the value must parse as one float, so packed lines fail; any field
  other than `@`, `#`, `c:`, `T` is "unrecognized message part" and the line is rejected;
  `ms` is not scaled; timers and histograms are configured apart, `timer_histogram_mapping`).
- Vector: src/sources/statsd/parser.rs (`Parser::parse`: one value per line; tags are read
  only as the field right after the type or the sample rate; `convert_to_base_units` divides
  `ms` by 1000; `h` becomes a histogram, `d` a summary).
- Etsy statsd: stats.js (the line is split on every `:`, so packed values are bad lines;
  `ms` is a timer, `g` a gauge, `s` a set and every other letter, `h` and `d` included, is
  summed as a counter; `@rate` scales a counter's value and a timer's count, never a timer's
  values); keys keep `;` and `=`, so Graphite 1.1 tags (`name;k=v`) survive.

Gauges: every receiver but the Agent reads a leading sign as a change, not a level
(statsd_exporter `pkg/line/line.go`: `GaugeEvent{Relative: true}` when the value starts with
`+` or `-`; Telegraf `statsd.go`: `additive` when `m.value` starts with `+` or `-`; the OTel
receiver's `statsd_parser.go`: `addition` for a signed gauge; Vector's `parser.rs`:
`MetricValue::Gauge` with `Incremental` kind for a sign; Etsy `stats.js`: `gauges[key] += value`
when `fields[0]` matches `^[-+]`). A level below 0 therefore goes to them as `0|g` then the
signed level, in one datagram, as pystatsd's `gauge()` does for the statsd backend.

Sample rates (`|@r`, sent when a distribution's reservoir kept r of its samples) come right
after the type letter, where Telegraf (`pipesplit[2]`), Vector (`parts[2]`) and Etsy
(`fields[2]`) look for them; statsd_exporter, Telegraf and Vector repeat a sample
`int(1 / r)` times, so every rate we send has an integer inverse (see `_core`'s reservoir).
"""

from __future__ import annotations

from dataclasses import dataclass

# Tag syntaxes: DogStatsD `|#k:v`, InfluxDB `name,k=v`, Graphite 1.1 `name;k=v`, or none
# (values folded into a dotted name: the statsd backend's "plain" flavor).
TAGS_DOGSTATSD = "dogstatsd"
TAGS_INFLUXDB = "influxdb"
TAGS_GRAPHITE = "graphite"


@dataclass(frozen=True)
class Dialect:
    """How lines are written for one receiver."""

    name: str
    tags: str  # one of the TAGS_* syntaxes
    time_letter: str  # for a distribution in milliseconds (a name ending `_ms`)
    value_letter: str  # for every other distribution (MOS, loss, seconds, ...)
    packed: bool  # may a flush's samples share one line (`name:v1:v2|d`)
    extensions: bool  # may `|c:`, `|e:` and `|card:` follow
    zeros: bool  # send every declared counter series once as 0, so ratios start at 0
    dd_address: bool  # read the agent's address from DD_DOGSTATSD_URL / DD_AGENT_HOST
    signed_gauge_is_change: bool = True  # `name:-3|g` means "subtract 3": a level below 0 goes as `0|g` first

    def letter(self, metric_name: str) -> str:
        """The type letter of a distribution named `metric_name`."""
        return self.time_letter if is_milliseconds(metric_name) else self.value_letter


def is_milliseconds(metric_name: str) -> bool:
    """Whether a distribution's name says its samples are milliseconds (`..._ms`)."""
    return metric_name.endswith(("_ms", "_milliseconds"))


RECEIVERS: dict[str, Dialect] = {
    # The Agent: DogStatsD v1.1 packing, every extension; `d` for all (a global distribution:
    # the Agent's sketch keeps the unit as sent, so no letter changes a value).
    # The Agent alone reads a signed gauge as a level (parse.go: the value is parsed as a float,
    # no sign test), so only it may get `name:-3|g` on its own.
    "datadog": Dialect("datadog", TAGS_DOGSTATSD, "d", "d", True, True, False, True, False),
    # statsd_exporter: `|ms` turns milliseconds into Prometheus' seconds; `h` keeps a MOS a
    # MOS. Not packed: distributions' Debian and Ubuntu builds predate 0.27.1. No extension:
    # `|e:`/`|card:` drop the sample and `|c:` adds a label the mapping does not expect.
    "statsd_exporter": Dialect("statsd_exporter", TAGS_DOGSTATSD, "ms", "h", False, False, True, False),
    # Telegraf: InfluxDB tags in the name need no `datadog_extensions`; `h` needs no
    # `datadog_distributions`; never packed.
    "telegraf": Dialect("telegraf", TAGS_INFLUXDB, "ms", "h", False, False, True, False),
    # OTel collector: DogStatsD tags; `ms` for times, `h` for the rest (its
    # `timer_histogram_mapping` configures "timing" and "histogram" apart); never packed,
    # no extension field (each rejects the line).
    "otel_collector": Dialect("otel_collector", TAGS_DOGSTATSD, "ms", "h", False, False, True, False),
    # Vector: `ms` becomes seconds as in statsd_exporter; `h` a histogram (`d` would be a summary).
    "vector": Dialect("vector", TAGS_DOGSTATSD, "ms", "h", False, False, True, False),
    # Etsy: only `ms` keeps a distribution's values (anything else is summed as a counter),
    # and it does not scale them; Graphite tags; never packed.
    "etsy": Dialect("etsy", TAGS_GRAPHITE, "ms", "ms", False, False, False, False),
}
RECEIVER_NAMES = tuple(RECEIVERS)
