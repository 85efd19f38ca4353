"""A strict parser for the lines this library (and StatsD clients like it) put on the wire.

DogStatsD: `name:value|type[|@rate][|#k:v,...][|c:container][|e:external][|card:x][|T123]`.
StatsD flavors fold tags into the name: influxdb `name,k=v:1|c`, graphite `name;k=v:1|c`.
A set's value is any string (the Agent counts unique strings). The DogStatsD protocol's two
other datagrams, as datadogpy's `service_check()` and `event()` write them and the Agent's
`parse_service_checks.go` / `parse_events.go` read them:
`_sc|name|status[|d:ts][|h:host][|#tags][|m:message][|c:..][|card:..]` (status 0-3) and
`_e{title bytes,text bytes}:title|text[|d:ts][|h:host][|k:key][|p:priority][|s:source][|t:type][|#tags]...`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

TYPES = frozenset({"c", "d", "ms", "h", "g", "s"})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")  # "-": plain flavor folds values in
# A DogStatsD tag value may itself hold colons (`url:http://x`), dots and slashes.
_TAG = re.compile(r"[^\W\d_][\w./-]*:[\w./:-]+\Z")  # the agent takes UTF-8: letters of any script
_FOLDED = re.compile(r"[A-Za-z0-9_-]+=[A-Za-z0-9_-]+\Z")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_FIELDS = ("c:", "e:", "card:", "T")


class MalformedLineError(ValueError):
    """A line that does not follow the grammar; the message says where."""


@dataclass(frozen=True)
class Line:
    """One parsed metric line."""

    name: str
    kind: str  # c, d, ms, h, g, s
    values: tuple[float, ...]
    tags: tuple[str, ...]  # "k:v", in the order sent (folded tags become "k:v" too)
    rate: float = 1.0
    members: tuple[str, ...] = ()  # a set's value, as sent
    text: str = ""  # a service check's message, an event's text

    @property
    def key(self) -> str:
        return self.name + ("{" + ",".join(self.tags) + "}" if self.tags else "")


def _number(text: str, line: str) -> float:
    if not _NUMBER.match(text):
        raise MalformedLineError(f"value {text!r} is not a number in {line!r}")
    value = float(text)
    if not math.isfinite(value):
        raise MalformedLineError(f"value {text!r} is not finite in {line!r}")
    return value


def parse_line(line: str) -> Line:  # noqa: PLR0912 - one branch per grammar rule reads best
    """Parse one line strictly; raise MalformedLineError on anything off-grammar."""
    if not line or line != line.strip() or "\n" in line:
        raise MalformedLineError(f"empty line or stray white space in {line!r}")
    if line.startswith("_sc|"):
        return _service_check(line)
    if line.startswith("_e{"):
        return _event(line)
    parts = line.split("|")
    if len(parts) < 2:
        raise MalformedLineError(f"no '|type' in {line!r}")
    head, kind, extras = parts[0], parts[1], parts[2:]
    if kind not in TYPES:
        raise MalformedLineError(f"unknown type {kind!r} in {line!r}")
    if ":" not in head:
        raise MalformedLineError(f"no ':value' in {line!r}")
    name, *raw_values = head.split(":")
    members: tuple[str, ...] = ()
    if kind == "s":  # one member, any text (datadogpy sends str(value)); never packed
        members = (head.split(":", 1)[1],)
        values: tuple[float, ...] = ()
    else:
        values = tuple(_number(v, line) for v in raw_values)
    tags: list[str] = []
    if "," in name or ";" in name:
        sep = "," if "," in name else ";"
        name, *folded = name.split(sep)
        for pair in folded:
            if not _FOLDED.match(pair):
                raise MalformedLineError(f"folded tag {pair!r} is not k=v in {line!r}")
            tags.append(pair.replace("=", ":", 1))
    if not _NAME.match(name) or name.endswith("."):
        raise MalformedLineError(f"metric name {name!r} is not valid in {line!r}")
    rate = 1.0
    seen_tags = False
    for extra in extras:
        if extra.startswith("@"):
            rate = _number(extra[1:], line)
            if not 0 < rate <= 1:
                raise MalformedLineError(f"sample rate {extra!r} out of (0, 1] in {line!r}")
        elif extra.startswith("#"):
            if seen_tags or tags:
                raise MalformedLineError(f"a second tag section in {line!r}")
            seen_tags = True
            for tag in extra[1:].split(","):
                if not _TAG.match(tag):
                    raise MalformedLineError(f"tag {tag!r} is not key:value in {line!r}")
                tags.append(tag)
        elif not extra.startswith(_FIELDS):
            raise MalformedLineError(f"unknown field {extra!r} in {line!r}")
    return Line(name, kind, values, tuple(tags), rate, members)


_SC_FIELDS = ("d:", "h:", "m:", "c:", "e:", "card:")
_EVENT_FIELDS = ("d:", "h:", "k:", "p:", "s:", "t:", "c:", "e:", "card:")
_EVENT_HEAD = re.compile(r"_e\{(\d+),(\d+)\}:")
_LOOSE_TAG = re.compile(r"[^\s,|#]+\Z")  # the Agent takes `key:value` and bare tags here


def _loose_tags(section: str, line: str) -> tuple[str, ...]:
    tags = tuple(section.split(","))
    for tag in tags:
        if not _LOOSE_TAG.match(tag):
            raise MalformedLineError(f"tag {tag!r} is not a tag in {line!r}")
    return tags


def _fields(extras: list[str], known: tuple[str, ...], line: str) -> tuple[tuple[str, ...], dict[str, str]]:
    tags: tuple[str, ...] = ()
    found: dict[str, str] = {}
    for extra in extras:
        if extra.startswith("#"):
            tags = _loose_tags(extra[1:], line)
        elif extra.startswith(known):
            key, _, value = extra.partition(":")
            found[key] = value
        else:
            raise MalformedLineError(f"unknown field {extra!r} in {line!r}")
    return tags, found


def _service_check(line: str) -> Line:
    """`_sc|name|status|...`: kind "sc", the status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) as its value."""
    parts = line.split("|")
    if len(parts) < 3 or not parts[1]:
        raise MalformedLineError(f"a service check needs a name and a status in {line!r}")
    if parts[2] not in ("0", "1", "2", "3"):
        raise MalformedLineError(f"service check status {parts[2]!r} is not 0-3 in {line!r}")
    tags, found = _fields(parts[3:], _SC_FIELDS, line)
    message = found.get("m", "").replace("\\n", "\n").replace("m\\:", "m:")  # datadogpy's escapes undone
    return Line(parts[1], "sc", (float(parts[2]),), tags, text=message)


def _event(line: str) -> Line:
    """`_e{a,b}:title|text|...`: kind "e"; the lengths are UTF-8 bytes, so `|` may sit in either."""
    head = _EVENT_HEAD.match(line)
    if head is None:
        raise MalformedLineError(f"an event starts _e{{title length,text length}}: in {line!r}")
    body = line[head.end() :].encode("utf-8")
    title_len, text_len = int(head.group(1)), int(head.group(2))
    if title_len == 0 or len(body) < title_len + 1 + text_len or body[title_len : title_len + 1] != b"|":
        raise MalformedLineError(f"event lengths {title_len},{text_len} do not fit {line!r}")
    try:
        title = body[:title_len].decode("utf-8")
        text = body[title_len + 1 : title_len + 1 + text_len].decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedLineError(f"event lengths cut a character in {line!r}") from error
    rest = body[title_len + 1 + text_len :].decode("utf-8")
    if rest and not rest.startswith("|"):
        raise MalformedLineError(f"event text longer than {text_len} bytes in {line!r}")
    tags, _ = _fields(rest.split("|")[1:] if rest else [], _EVENT_FIELDS, line)
    return Line(title.replace("\\n", "\n"), "e", (), tags, text=text.replace("\\n", "\n"))


def parse_datagram(data: bytes) -> tuple[list[Line], list[tuple[str, str]]]:
    """Parse every line of a datagram: (lines, [(bad line, why), ...])."""
    good: list[Line] = []
    bad: list[tuple[str, str]] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return good, [(repr(data[:80]), f"not UTF-8: {error}")]
    for raw in text.split("\n"):
        if raw == "":
            continue
        try:
            good.append(parse_line(raw))
        except MalformedLineError as error:
            bad.append((raw, str(error)))
    return good, bad
