"""Names and values that are safe on the wire, and the library's own vocabulary: a leaf.

Config (constant tags, prefix) and families (names, label keys and values) check with the
same rules, here, so neither needs the other. The drop reasons and the library's own
metric names are here too: the recorder counts with them and the SIP catalog re-exports them.
"""

from __future__ import annotations

import re
from enum import StrEnum

# The library's own metrics.
METRIC_DROPPED_INPUTS_TOTAL = "sip_statsd_dropped_inputs_total"
METRIC_SEND_ERRORS_TOTAL = "sip_statsd_send_errors_total"
# Distribution samples a full reservoir left out (the kept ones carry their weight): not bad input.
METRIC_SAMPLED_AWAY_TOTAL = "sip_statsd_sampled_away_total"

# Why an input was dropped (the `reason` label of sip_statsd_dropped_inputs_total).
DROP_UNKNOWN_VALUE = "unknown_value"
DROP_INVALID_NUMBER = "invalid_number"
DROP_SAMPLE_OVERFLOW = "sample_overflow"


class DropReason(StrEnum):
    UNKNOWN_VALUE = DROP_UNKNOWN_VALUE
    INVALID_NUMBER = DROP_INVALID_NUMBER
    SAMPLE_OVERFLOW = DROP_SAMPLE_OVERFLOW


DROP_REASONS = tuple(DropReason)

# Safe in every flavor: no `|`, `#`, `,`, `:`, `;`, `=`, `@`, space or newline anywhere.
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*\Z")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
# No dot either: the plain flavor folds values into a dotted name.
_VALUE_RE = re.compile(r"[A-Za-z0-9_\-]+\Z")
_MAX_NAME = 200
_MAX_KEY = 64
_MAX_VALUE = 64
MAX_SERIES_PER_FAMILY = 2000
DEFAULT_MAX_SAMPLES = 100_000
# The most samples a series may keep between flushes: what the exit budget (5 s for every
# recorder) formats and sends with room to spare on a loaded machine (500,000 distinct
# samples missed it on 2 cores at load 8; 1,000,000 took ~3 s at load 5): one full series.
MAX_SAMPLES_LIMIT = 200_000


def check_name(name: object, what: str = "metric name") -> str:
    """Return `name` if it is safe on the wire as a metric name, else raise ValueError."""
    if not isinstance(name, str) or len(name) > _MAX_NAME or not _NAME_RE.match(name):
        raise ValueError(
            f"invalid {what} {name!r}: use letters, digits and '_', dot-separated, "
            f"starting with a letter, at most {_MAX_NAME} characters"
        )
    return name


def check_key(key: object) -> str:
    if not isinstance(key, str) or len(key) > _MAX_KEY or not _KEY_RE.match(key):
        raise ValueError(
            f"invalid label key {key!r}: use lower-case letters, digits and '_', starting with a letter, "
            f"at most {_MAX_KEY} characters"
        )
    return key


def check_value(key: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > _MAX_VALUE or not _VALUE_RE.match(value):
        raise ValueError(
            f"invalid value {value!r} for label {key!r}: use letters, digits, '_' and '-', "
            f"at most {_MAX_VALUE} characters"
        )
    return str(value)  # a StrEnum member becomes its plain string
