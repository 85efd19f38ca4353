"""The Datadog Agent as the environment names it: its address and the origin fields it reads.

Read here, not from the datadog client's private attributes (which changed under us in
0.53): datadogpy's `DogStatsd._parse_env_connection_overrides` and datadog-go's
`statsd.New` are followed for the address, datadog-go's `tag_cardinality.go`,
`external_env.go` and `isOriginDetectionEnabled` (with datadogpy's
`_is_origin_detection_enabled` for the values that mean "off") for the origin fields. The
container ID is read by the datadog package's public `datadog.dogstatsd.container.Cgroup`,
loaded from its file alone: importing any part of the package the usual way runs
`datadog/__init__.py`, which imports its HTTP API client and `requests` (~100 ms, ~200 modules).

Everything from the environment is user data: a field that would carry wire syntax
(`|`, `#`, `,`, `:` where not allowed, a newline, any unprintable character) is cleaned as
datadog-go cleans it, or left out.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from .._core.config import CARDINALITIES
from .origin import _warn_once as warn_once
from .origin import checked_tags, origin_detection_enabled
from .origin import origin_fields as _origin_fields  # datadog-go validateCardinality; the Agent 7.64+ reads `|card:`

log = logging.getLogger("sip_statsd")


def _load_alone(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("sip_statsd._wire._datadog_container", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cgroup_module() -> ModuleType:
    """`datadog.dogstatsd.container` without `datadog/__init__.py` (it needs only the standard
    library); the usual import if the file cannot be found or loaded alone."""
    try:
        found = importlib.util.find_spec("datadog")  # a top-level spec: nothing is imported
        places = list(found.submodule_search_locations or ()) if found is not None else []
        module = _load_alone(os.path.join(places[0], "dogstatsd", "container.py"))
        module.Cgroup  # noqa: B018 - the part we use must be there
    except Exception:
        import datadog.dogstatsd.container as module
    return module


# Loaded here, never later: a lazy import on the flusher thread could leave a forked child
# the import lock as it was (STYLE.md, "A thread of ours owns its fork story").
Cgroup: Any = _cgroup_module().Cgroup

# datadog.util.format.normalize_tags (datadogpy 0.49-0.56): every character that is not a
# word character, `-`, `:`, `/` or `.` becomes `_`.
_TAG_INVALID_CHARS = re.compile(r"[^\w\d_\-:/\.]", re.UNICODE)


def normalize_tags(tags: list[str]) -> list[str]:
    return [_TAG_INVALID_CHARS.sub("_", tag) for tag in tags]


DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8125
# The Unix socket kinds a `unix*://` URL allows, in the order they are tried (datadogpy's
# `_get_uds_socket`: `unix://` tries a datagram socket, then a stream one).
UNIX_ANY = "unix"
UNIX_DGRAM = "unixgram"
UNIX_STREAM = "unixstream"
UNIX_SCHEMES = (UNIX_ANY, UNIX_DGRAM, UNIX_STREAM)


def parse_dogstatsd_url(url: str) -> tuple[str, str | None, int | None]:
    """`DD_DOGSTATSD_URL` as (scheme, host or path, port); raises ValueError if unusable.

    `udp://host:port` (port defaults to 8125), `unix:///path`, `unixgram:///path`,
    `unixstream:///path`, as datadogpy and datadog-go accept them.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in UNIX_SCHEMES:
        path = url.strip()[len(scheme) + 3 :]
        if not path or "\x00" in path:
            raise ValueError(f"DD_DOGSTATSD_URL {url!r} names no socket path")
        return scheme, path, None
    if scheme == "udp":
        host = parts.hostname
        port = parts.port  # ValueError for a port out of range or not a number
        if not host:
            raise ValueError(f"DD_DOGSTATSD_URL {url!r} names no host")
        return scheme, host, port or DEFAULT_PORT
    raise ValueError(f"DD_DOGSTATSD_URL {url!r}: the scheme must be udp://, unix://, unixgram:// or unixstream://")


def env_address(environ: Mapping[str, str] | None = None) -> tuple[str | None, int | None, str | None, str]:
    """(host, port, socket path, unix scheme) from `DD_DOGSTATSD_URL`, else `DD_AGENT_HOST`/`DD_DOGSTATSD_PORT`.

    A bad value is skipped, as the datadog clients do: the next source applies. It is logged
    once per process, in one wording, by the sender (`config.datadog_target` names it), not here.
    """
    environ = os.environ if environ is None else environ
    url = environ.get("DD_DOGSTATSD_URL", "")
    if url.strip():
        try:
            scheme, where, port = parse_dogstatsd_url(url)
        except ValueError:
            pass
        else:
            if scheme == "udp":
                return where, port, None, UNIX_ANY
            return None, None, where, scheme
    host = environ.get("DD_AGENT_HOST", "").strip() or DEFAULT_HOST
    text = environ.get("DD_DOGSTATSD_PORT", "").strip()
    agent_port = int(text) if text.isdigit() else 0
    if text and not 0 < agent_port < 65536:
        agent_port = 0
    return host, agent_port or DEFAULT_PORT, None, UNIX_ANY


def check_cardinality(value: object) -> str | None:
    """A cardinality for `|card:` (lower-cased), None for None; raises ValueError quoting a bad one."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in CARDINALITIES:
        return value.strip().lower()
    raise ValueError(f"cardinality {value!r} is not one of {list(CARDINALITIES)}")


def env_cardinality(environ: Mapping[str, str] | None = None) -> str | None:
    """`DD_CARDINALITY`, else `DATADOG_CARDINALITY` (datadog-go `initTagCardinality`); an invalid one is skipped."""
    environ = os.environ if environ is None else environ
    for variable in ("DD_CARDINALITY", "DATADOG_CARDINALITY"):
        text = environ.get(variable, "")
        try:
            card = check_cardinality(text)
        except ValueError:
            if text.strip():
                log.warning("sip-statsd: ignoring %s=%r (not one of %s)", variable, text, list(CARDINALITIES))
            continue
        if card:
            return card
    return None


def _container_id() -> str:
    try:
        found = Cgroup().container_id
    except Exception:  # not Linux, no cgroup file, unreadable: the Agent tags by other means
        return ""
    return found if isinstance(found, str) else ""


# datadogpy DD_ENV_TAGS_MAPPING (datadog-go: the same variables): each becomes a constant tag.
_ENV_TAGS = (
    ("DD_ENTITY_ID", "dd.internal.entity_id"),
    ("DD_ENV", "env"),
    ("DD_SERVICE", "service"),
    ("DD_VERSION", "version"),
)


# Label keys of an instance that declares peers (SipMetrics adds them): a DD_TAGS tag on one of
# them would give its series the key twice (`peer:a,peer:x`); it is left out, logged once.
LABEL_KEYS_WITH_PEERS: set[str] = set()


def env_tags(environ: Mapping[str, str] | None = None) -> list[str]:
    """Constant tags from `DATADOG_TAGS` (comma-separated) and `DD_ENV`, `DD_SERVICE`, `DD_VERSION`, `DD_ENTITY_ID`.

    Normalised by the datadog package's public `normalize_tags`, which keeps no `|`, `,`,
    `#` or white space.
    """
    environ = os.environ if environ is None else environ
    tags = [tag for tag in environ.get("DATADOG_TAGS", "").split(",") if tag]
    tags += [f"{name}:{environ[var]}" for var, name in _ENV_TAGS if environ.get(var)]
    kept = checked_tags(normalize_tags(tags))
    labels = [tag for tag in kept if tag.split(":", 1)[0] in LABEL_KEYS_WITH_PEERS]
    if labels:
        warn_once(
            f"label-tags:{labels[0][:40]}",
            "sip-statsd: leaving out %d tag(s) from the DD_* environment named like a label of the series "
            "(peers are declared), the first %r",
            len(labels),
            labels[0][:40],
        )
    return [tag for tag in kept if tag not in labels]


def origin_fields(cardinality: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The `|c:`, `|e:` and `|card:` fields every DogStatsD line ends with (maybe none).

    `|c:` and `|e:` only while origin detection is on, cleaned (`origin`, as datadog-go does);
    `|card:` only when a cardinality is set (configure(), DD_CARDINALITY or DATADOG_CARDINALITY).
    """
    environ = os.environ if environ is None else environ
    container = _container_id() if origin_detection_enabled(environ) else None
    out = _origin_fields(container, environ)
    card = cardinality if cardinality is not None else env_cardinality(environ)
    if card:
        out += f"|card:{card}"
    return out
