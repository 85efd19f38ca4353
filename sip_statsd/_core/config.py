"""Configuration: one frozen dataclass, validated when made, quoting any bad value."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._sip.quality import QualityThresholds
from .names import check_key, check_name

log = logging.getLogger("sip_statsd")

BACKENDS = ("datadog", "statsd", "memory", "off")
FLAVORS = ("influxdb", "graphite", "plain")
# What listens (see _wire/dialects.py for what each parses): the datadog backend speaks its dialect.
RECEIVERS = ("datadog", "statsd_exporter", "telegraf", "otel_collector", "vector", "etsy")
# DogStatsD `|card:` values (datadog-go validateCardinality; the Agent 7.64+ reads the field).
CARDINALITIES = ("none", "low", "orchestrator", "high")
DEFAULT_PRECISION = 4  # significant digits of a sample value on the wire (None: every digit)
# Who sends: our flusher thread, or the host's own thread through `host_tick()` (for hosts that
# hold the GIL between calls, as Kamailio's app_python3 does: no thread of ours would run), or
# one sender over counts every process of a prefork host keeps in shared memory (`shared`).
DELIVERIES = ("thread", "host", "shared")
DEFAULT_FLUSH_INTERVAL = 1.0
# A constant tag value may carry what a DogStatsD tag value may (dots, slashes: `1.2.3`,
# `fra1.eu`, `team/voice`): no flavor that has tags folds it into a name. Never a byte
# that means something on the wire (`|`, `#`, `,`, `;`, `=`, `:`, `@`, white space).
_TAG_VALUE_RE = re.compile(r"[A-Za-z0-9_\-./]+\Z")
_MAX_TAG_VALUE = 200
# Every line carries the constant tags: they must leave room in a UDP datagram (1432 bytes).
_MAX_CONSTANT_TAGS = 512


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
        if not isinstance(value, str) or len(value) > _MAX_TAG_VALUE or not _TAG_VALUE_RE.match(value):
            raise ValueError(
                f"invalid value {value!r} for constant tag {checked!r}: use letters, digits, '_', '-', "
                f"'.' and '/', at most {_MAX_TAG_VALUE} characters"
            )
        out.append(f"{checked}:{value}")
    if len(",".join(out)) > _MAX_CONSTANT_TAGS:
        raise ValueError(
            f"constant_tags {out!r} take {len(','.join(out))} characters; at most {_MAX_CONSTANT_TAGS} "
            "(every line carries them, and a UDP datagram holds 1432 bytes)"
        )
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
    packed: bool = True
    delivery: str = "thread"
    receiver: str = "datadog"
    cardinality: str | None = None
    precision: int | None = DEFAULT_PRECISION
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
        if not isinstance(self.packed, bool):
            raise ValueError(f"packed {self.packed!r} must be True or False")
        self._check_dialect()
        object.__setattr__(self, "quality_thresholds", QualityThresholds.of(self.quality_thresholds))
        self._check_delivery()

    def _check_delivery(self) -> None:
        if self.delivery not in DELIVERIES:
            raise ValueError(f"delivery {self.delivery!r} is not one of {list(DELIVERIES)}")
        if self.delivery == "shared" and not hasattr(os, "fork"):
            raise ValueError("delivery='shared' is for hosts that fork their workers: this platform has no fork()")
        if self.delivery == "thread" or self.backend in ("memory", "off") or self.socket_path is not None:
            return
        # The host's thread sends: it must never wait for a resolver, so no name to resolve. An
        # address literal in DD_AGENT_HOST (Kubernetes sets it from status.hostIP) is one.
        name = self.name_to_resolve()
        if name is not None:
            raise ValueError(
                f"delivery={self.delivery!r} sends from the caller's thread, which never resolves a name: give host "
                f"as an IP address (e.g. '127.0.0.1') or a socket_path, not host={self.host!r}"
                + ("" if self.host is not None else f" (the agent's address is {name!r})")
            )

    def name_to_resolve(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The host name that sending with this configuration looks up, or None when it looks up
        nothing (a Unix socket, an IP address literal, the memory and off backends)."""
        if self.backend in ("memory", "off") or self.socket_path is not None:
            return None
        host = self.host
        if host is None and self.port is None and self.backend == "datadog" and self.receiver == "datadog":
            host = _dd_udp_host(os.environ if environ is None else environ)
            if host is None:
                return None  # a Unix socket from DD_DOGSTATSD_URL
        host = host or "localhost"
        try:
            ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        except ValueError:
            return host
        return None

    def _check_dialect(self) -> None:
        """receiver, cardinality and precision: what the lines say and how."""
        if self.receiver not in RECEIVERS:
            raise ValueError(f"receiver {self.receiver!r} is not one of {list(RECEIVERS)}")
        if self.cardinality is not None:
            card = self.cardinality.strip().lower() if isinstance(self.cardinality, str) else None
            if card not in CARDINALITIES:
                raise ValueError(f"cardinality {self.cardinality!r} is not one of {list(CARDINALITIES)} (or None)")
            object.__setattr__(self, "cardinality", card)
        precision = self.precision
        if precision is not None and (type(precision) is not int or not 1 <= precision <= 17):
            raise ValueError(f"precision {precision!r} must be an int from 1 to 17 significant digits, or None")

    def describe_target(self) -> str:
        """Where this configuration sends, for log lines."""
        if self.backend in ("memory", "off"):
            return self.backend
        what = self.backend if self.receiver == "datadog" else f"{self.receiver} ({self.backend} backend)"
        if self.socket_path is not None:
            return f"{what} unix://{self.socket_path}"
        if self.host is None and self.port is None and self.backend == "datadog" and self.receiver == "datadog":
            return f"datadog {datadog_target()[0]}"
        return f"{what} udp://{_host_text(self.host or 'localhost')}:{self.port or 8125}"


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _port_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _dd_udp_host(env: Mapping[str, str]) -> str | None:
    """The UDP host the datadog backend reads from `DD_*` (None: a Unix socket), as `datadog_target`."""
    url = env.get("DD_DOGSTATSD_URL", "").strip()
    if url:
        scheme, sep, rest = url.partition("://")
        if sep and scheme in ("unix", "unixgram", "unixstream") and rest:
            return None
        host = rest[1:].partition("]")[0] if rest.startswith("[") else rest.partition(":")[0]
        if sep and scheme == "udp" and host:
            return host
    return env.get("DD_AGENT_HOST", "").strip() or "localhost"


def datadog_target(environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """Where the datadog backend sends when no address is configured, and what in `DD_*` it ignored.

    As the datadog client reads them: `DD_DOGSTATSD_URL` (`udp://HOST[:PORT]`, `unix://`,
    `unixgram://`, `unixstream://` and a path) before `DD_AGENT_HOST` / `DD_DOGSTATSD_PORT`;
    a URL of another form is ignored (the other two apply), a bad port is 8125. Each ignored
    value is named, quoted, so the flusher can log it instead of falling back in silence.
    """
    env = os.environ if environ is None else environ
    ignored: list[str] = []
    url = env.get("DD_DOGSTATSD_URL", "").strip()
    if url:
        scheme, sep, rest = url.partition("://")
        if sep and scheme in ("unix", "unixgram", "unixstream") and rest:
            return f"{url} (from DD_DOGSTATSD_URL)", ignored
        if rest.startswith("["):  # udp://[::1]:8125
            host, _, tail = rest[1:].partition("]")
            port_text = tail.removeprefix(":")
        else:
            host, _, port_text = rest.partition(":")
        if sep and scheme == "udp" and host:
            port = _port_or_none(port_text) if port_text else 8125
            if port is None:
                ignored.append(f"the port of DD_DOGSTATSD_URL={url[:100]!r} (not a port from 1 to 65535; using 8125)")
            return f"udp://{_host_text(host)}:{port or 8125} (from DD_DOGSTATSD_URL)", ignored
        ignored.append(f"DD_DOGSTATSD_URL={url[:100]!r} (not udp://HOST:PORT nor unix:///PATH)")
    host = env.get("DD_AGENT_HOST", "").strip()
    port_text = env.get("DD_DOGSTATSD_PORT", "").strip()
    port = _port_or_none(port_text) if port_text else 8125
    if port is None:
        ignored.append(f"DD_DOGSTATSD_PORT={port_text[:100]!r} (not a port from 1 to 65535; using 8125)")
    named = [name for name, text in (("DD_AGENT_HOST", host), ("DD_DOGSTATSD_PORT", port_text)) if text]
    source = f"from {' and '.join(named)}" if host or port_text else "the default: no DD_* address is set"
    return f"udp://{_host_text(host or 'localhost')}:{port or 8125} ({source})", ignored


# --- the environment ---------------------------------------------------------------------

ENV_PREFIX = "SIP_STATSD_"


def _port(text: str) -> int:
    if not text.isdigit():  # int() would say "invalid literal for int() with base 10"
        raise ValueError("not a port from 1 to 65535")
    return int(text)


def _interval(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number of seconds") from None


# Option name → how its SIP_STATSD_* variable is read (the Config checks the result).
_ENV_OPTIONS: dict[str, Any] = {
    "backend": str,
    "host": str,
    "port": _port,
    "socket_path": str,
    "flavor": str,
    "receiver": str,
    "prefix": str,
    "flush_interval": _interval,
    "delivery": str,
}
_env_logged: set[tuple[str, str]] = set()


def env_options(named: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Options from `SIP_STATSD_*` for every option not in `named`.

    A bad value is logged once and left out (its default holds): importing or configuring
    the library never fails because of the environment.
    """
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    named = set(named)
    # host/port and socket_path exclude each other: a named one keeps the other out too.
    if named & {"host", "port", "socket_path"}:
        named |= {"host", "port", "socket_path"}
    for option, read in _ENV_OPTIONS.items():
        variable = ENV_PREFIX + option.upper()
        text = environ.get(variable)
        if option in named or text is None or text.strip() == "":
            continue
        try:
            value = read(text.strip())
            Config(**{**out, option: value})  # checks the value, alone and with the others
        except (ValueError, TypeError) as error:
            if (variable, text) not in _env_logged:
                _env_logged.add((variable, text))
                log.warning("sip-statsd: ignoring %s=%r (%s); using the default", variable, text, error)
            continue
        out[option] = value
    return out
