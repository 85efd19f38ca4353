"""Configuration: one frozen dataclass, validated when made, quoting any bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ._family import check_key, check_name, check_value
from ._quality import QualityThresholds

BACKENDS = ("datadog", "statsd", "memory", "off")
FLAVORS = ("influxdb", "graphite", "plain")
DEFAULT_FLUSH_INTERVAL = 1.0


def _normalise_tags(tags: Mapping[str, str] | Iterable[str] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise ValueError(f"constant_tags must be a mapping or a list of 'key:value', not the string {tags!r}")
    pairs: list[tuple[str, str]] = []
    if isinstance(tags, Mapping):
        pairs = list(tags.items())
    else:
        for tag in tags:
            if not isinstance(tag, str) or tag.count(":") != 1:
                raise ValueError(f"constant tag {tag!r} is not of the form 'key:value'")
            key, value = tag.split(":")
            pairs.append((key, value))
    out = []
    for key, value in pairs:
        checked = check_key(key)
        out.append(f"{checked}:{check_value(checked, value)}")
    return tuple(out)


@dataclass(frozen=True)
class Config:
    """Where and how metrics go. Every field has a default; see README's configuration table."""

    backend: str = "datadog"
    host: str | None = None
    port: int | None = None
    socket_path: str | None = None
    flavor: str = "influxdb"
    prefix: str | None = None
    constant_tags: tuple[str, ...] = field(default=())
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    strict: bool = False
    # Call quality: a partial mapping given to configure() is completed with the defaults.
    quality_thresholds: QualityThresholds = field(default_factory=QualityThresholds)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {list(BACKENDS)}")
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor {self.flavor!r} is not one of {list(FLAVORS)}")
        if self.host is not None and (
            not isinstance(self.host, str) or not self.host or any(c.isspace() for c in self.host)
        ):
            raise ValueError(f"host {self.host!r} must be a non-empty host name or address")
        if self.port is not None and (type(self.port) is not int or not 0 < self.port < 65536):
            raise ValueError(f"port {self.port!r} must be an int from 1 to 65535")
        if self.socket_path is not None:
            if not isinstance(self.socket_path, str) or not self.socket_path:
                raise ValueError(f"socket_path {self.socket_path!r} must be a non-empty path")
            if self.host is not None or self.port is not None:
                raise ValueError(
                    f"give host/port or socket_path, not both (got host={self.host!r}, "
                    f"port={self.port!r}, socket_path={self.socket_path!r})"
                )
        if self.prefix is not None:
            check_name(self.prefix, "prefix")
        object.__setattr__(self, "constant_tags", _normalise_tags(self.constant_tags))
        if self.backend == "statsd" and self.flavor == "plain" and self.constant_tags:
            raise ValueError(
                f"constant_tags {list(self.constant_tags)!r} cannot be carried by the plain flavor "
                "(it has no tags); use prefix, or the influxdb or graphite flavor"
            )
        interval = self.flush_interval
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or not 0.01 <= interval <= 3600
        ):
            raise ValueError(f"flush_interval {interval!r} must be a number of seconds from 0.01 to 3600")
        if not isinstance(self.strict, bool):
            raise ValueError(f"strict {self.strict!r} must be True or False")
        object.__setattr__(self, "quality_thresholds", QualityThresholds.of(self.quality_thresholds))

    def describe_target(self) -> str:
        """Where this configuration sends, for log lines."""
        if self.backend in ("memory", "off"):
            return self.backend
        if self.socket_path is not None:
            return f"{self.backend} unix://{self.socket_path}"
        if self.host is None and self.port is None and self.backend == "datadog":
            return "datadog (address from the DD_* environment)"
        return f"{self.backend} udp://{self.host or 'localhost'}:{self.port or 8125}"
