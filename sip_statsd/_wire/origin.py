"""What the environment adds to every DogStatsD line, checked: tags and the origin fields.

Values from the environment are user data. The datadog client reads them (`DD_ENV`,
`DD_SERVICE`, `DD_VERSION`, `DATADOG_TAGS`/`DD_TAGS`, `DD_EXTERNAL_ENV`, the container ID)
and normalises the tags (anything but letters, digits and `_-:/.` becomes `_`), but keeps
Unicode letters and bounds nothing, and passes `DD_EXTERNAL_ENV` on as it is. Here each
is made safe to put after `|e:` / in `|#`: never a byte that is DogStatsD syntax, bounded,
and whatever is left out is logged once (on the flusher, where backends are made).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

log = logging.getLogger("sip_statsd")

# As the constant tags a user passes (`_core.config`): each tag, and all of them together.
MAX_ENV_TAG = 200
MAX_ENV_TAGS = 512
# The origin fields are short (a container ID is 64 hex digits; DD_EXTERNAL_ENV is
# `it-false,cn-<container name>,pu-<pod uid>`).
MAX_ORIGIN_FIELD = 256
# datadogpy's reading of DD_ORIGIN_DETECTION_ENABLED: on unless one of these.
_OFF = frozenset({"no", "false", "0", "n", "off"})
_logged: set[str] = set()


def _warn_once(what: str, message: str, *args: object) -> None:
    if what not in _logged and len(_logged) < 64:
        _logged.add(what)
        log.warning(message, *args)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def checked_tags(tags: Iterable[str]) -> list[str]:
    """The environment's constant tags (already normalised by the client), bounded; one log line
    for whatever is left out."""
    kept: list[str] = []
    left_out: list[str] = []
    total = -1
    for tag in tags:
        size = _utf8(tag)
        if not tag or size > MAX_ENV_TAG or total + 1 + size > MAX_ENV_TAGS or not tag.isprintable():
            left_out.append(tag)
            continue
        kept.append(tag)
        total += 1 + size
    if left_out:
        first = left_out[0]
        _warn_once(
            f"tags:{first[:40]}",
            "sip-statsd: leaving out %d tag(s) from the DD_* environment, the first %r (at most %d bytes "
            "each, %d in all)",
            len(left_out),
            first[:40] + ("..." if len(first) > 40 else ""),
            MAX_ENV_TAG,
            MAX_ENV_TAGS,
        )
    return kept


def clean_field(value: str | None) -> str:
    """An origin field's value as DogStatsD may carry it: no `|`, nothing non-printable, bounded.

    As datadog-go does for DD_EXTERNAL_ENV (strip the non-printable characters and `|`);
    a value still longer than `MAX_ORIGIN_FIELD` bytes is left out, not cut.
    """
    if not value or len(value) > 4 * MAX_ORIGIN_FIELD:
        return ""
    clean = "".join(c for c in value if c != "|" and c.isprintable())
    return clean if _utf8(clean) <= MAX_ORIGIN_FIELD else ""


def origin_detection_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """DD_ORIGIN_DETECTION_ENABLED as the datadog clients read it: on unless set to a false word."""
    environ = os.environ if environ is None else environ
    return environ.get("DD_ORIGIN_DETECTION_ENABLED", "").strip().lower() not in _OFF


def origin_fields(container_id: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The `|c:<container>` and `|e:<DD_EXTERNAL_ENV>` fields for every line, or "".

    Sent only with origin detection on; each value stripped of DogStatsD syntax and bounded.
    """
    environ = os.environ if environ is None else environ
    if not origin_detection_enabled(environ):
        return ""
    out = ""
    container = clean_field(container_id)
    if container:
        out += f"|c:{container}"
    external = environ.get("DD_EXTERNAL_ENV")
    cleaned = clean_field(external)
    if external and not cleaned:
        _warn_once(
            "external",
            "sip-statsd: leaving out DD_EXTERNAL_ENV: %d characters, nothing printable but '|', or over %d bytes",
            len(external),
            MAX_ORIGIN_FIELD,
        )
    if cleaned:
        out += f"|e:{cleaned}"
    return out
