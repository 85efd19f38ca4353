"""A small YAML writer for the generated files, so generating them needs no YAML library.

It writes block mappings and sequences; strings are JSON-quoted (a JSON string is a YAML
double-quoted scalar), multi-line strings (PromQL expressions) literal blocks, numbers as
Python writes them. Enough for a mapping config and a rules file; the tests read the output
back with PyYAML, promtool and the structure statsd_exporter expects.
"""

from __future__ import annotations

import json
import math
from typing import Any

_INDENT = "  "


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no place in a generated file")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")


def _block(text: str, depth: int) -> str:
    pad = _INDENT * depth
    return "|-\n" + "\n".join(pad + line if line else "" for line in text.split("\n"))


def _value(value: Any, depth: int) -> list[str]:
    """Lines for `value` as the value of a key or item at `depth` (its first line joins the key)."""
    if isinstance(value, dict) and value:
        return ["", *_mapping(value, depth)]
    if isinstance(value, list) and value:
        return ["", *_sequence(value, depth)]
    if isinstance(value, dict | list):
        return [" {}" if isinstance(value, dict) else " []"]
    if isinstance(value, str) and "\n" in value:
        return [" " + _block(value, depth)]
    return [" " + _scalar(value)]


def _mapping(doc: dict[str, Any], depth: int) -> list[str]:
    lines = []
    pad = _INDENT * depth
    for key, value in doc.items():
        first, *rest = _value(value, depth + 1)
        lines.append(f"{pad}{_key(key)}:{first}")
        lines.extend(rest)
    return lines


def _sequence(items: list[Any], depth: int) -> list[str]:
    lines = []
    pad = _INDENT * depth
    for item in items:
        if isinstance(item, dict) and item:
            # "- key: value", the item's other keys aligned under the first
            inner = _mapping(item, depth + 1)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines.extend(inner[1:])
        else:
            first, *rest = _value(item, depth + 1)
            lines.append(f"{pad}-{first}")
            lines.extend(rest)
    return lines


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a mapping key must be a string, not {key!r}")
    plain = key.replace("_", "a").replace("-", "a").replace(".", "a")
    return key if plain.isascii() and plain.isalnum() and not key[0].isdigit() else json.dumps(key)


def dump(doc: dict[str, Any], header: str = "") -> str:
    """`doc` as a YAML document, after `header` (comment lines, each starting with '# ')."""
    return header + "\n".join(_mapping(doc, 0)) + "\n"
