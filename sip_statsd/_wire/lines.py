"""A strict parser for the lines this library (and StatsD clients like it) put on the wire.

DogStatsD: `name:value|type[|@rate][|#k:v,...][|c:container][|e:external][|card:x][|T123]`.
StatsD flavors fold tags into the name: influxdb `name,k=v:1|c`, graphite `name;k=v:1|c`.
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
    parts = line.split("|")
    if len(parts) < 2:
        raise MalformedLineError(f"no '|type' in {line!r}")
    head, kind, extras = parts[0], parts[1], parts[2:]
    if kind not in TYPES:
        raise MalformedLineError(f"unknown type {kind!r} in {line!r}")
    if ":" not in head:
        raise MalformedLineError(f"no ':value' in {line!r}")
    name, *raw_values = head.split(":")
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
    return Line(name, kind, values, tuple(tags), rate)


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
