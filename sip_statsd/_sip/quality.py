"""Call quality: the ITU-T G.109 grades of a MOS and the thresholds of the quality issues.

`observe_call_qos` counts every call in one grade and in each issue it crosses (see
`qos`); the thresholds are part of the configuration (`configure(quality_thresholds=...)`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .values import (
    QUALITY_GRADE_BEST,
    QUALITY_GRADE_HIGH,
    QUALITY_GRADE_LOW,
    QUALITY_GRADE_MEDIUM,
    QUALITY_GRADE_POOR,
    QUALITY_GRADE_UNKNOWN,
    QUALITY_GRADE_UNUSABLE,
)

# ITU-T G.109 Table 1, speech transmission quality categories: the lowest MOS of each (the
# MOS of R 90, 80, 70, 60 and 50 by G.107 Annex B), best first. Below the last: unusable.
GRADE_FLOORS: tuple[tuple[float, str], ...] = (
    (4.34, QUALITY_GRADE_BEST),
    (4.03, QUALITY_GRADE_HIGH),
    (3.60, QUALITY_GRADE_MEDIUM),
    (3.10, QUALITY_GRADE_LOW),
    (2.58, QUALITY_GRADE_POOR),
)


def grade_of(mos: float | None) -> str:
    """The grade of a MOS: a G.109 category, or `unknown` for None or a MOS outside 1-5.

    The table-driven form of what `observe_call_qos` does inline on its hot path.
    """
    if mos is None or isinstance(mos, bool) or not isinstance(mos, int | float) or not 1.0 <= mos <= 5.0:
        return QUALITY_GRADE_UNKNOWN
    for floor, grade in GRADE_FLOORS:
        if mos >= floor:
            return grade
    return QUALITY_GRADE_UNUSABLE


@dataclass(frozen=True)
class QualityThresholds:
    """Where a call gets a quality issue counted; each key may be set alone.

    `high_rtt` when the RTT is above `rtt_ms` (300: a one-way delay above ITU-T G.114's
    150 ms), `high_jitter` above `jitter_ms` (30), `high_loss` above `loss_fraction`
    (0.05), `low_mos` when the MOS is below `mos` (3.5). `math.inf` for `rtt_ms` or
    `jitter_ms`, 1 for `loss_fraction` and 1 for `mos` turn that issue off.
    """

    rtt_ms: float = 300.0
    jitter_ms: float = 30.0
    loss_fraction: float = 0.05
    mos: float = 3.5

    def __post_init__(self) -> None:
        for name, low, high in (
            ("rtt_ms", 0.0, math.inf),
            ("jitter_ms", 0.0, math.inf),
            ("loss_fraction", 0.0, 1.0),
            ("mos", 1.0, 5.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ValueError(f"quality_thresholds {name}={value!r} must be a number from {low:g} to {high:g}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def of(cls, value: object) -> QualityThresholds:
        """Thresholds from a configuration option: None, a partial mapping, or thresholds."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"quality_thresholds {value!r} must be a mapping such as {{'rtt_ms': 250}}")
        known = [f.name for f in fields(cls)]
        unknown = [key for key in value if key not in known]
        if unknown:
            raise ValueError(f"quality_thresholds keys {unknown!r} are not among {known}")
        return cls(**value)
