"""The text of a sample value and of a sample rate, as every receiver parses them.

Sample values: `precision` significant digits (4 by default, `format(value, ".4g")`), or
every digit (`precision=None`: the shortest repr, which reads back to the same float).
The Datadog Agent keeps a distribution in a sketch of about 1 % relative accuracy (plus an
exact sum, count, min and max); a Prometheus histogram keeps bucket counts; Telegraf,
Etsy and the OTel collector keep percentiles and a mean. Four digits (at most 0.05 %
off) are within all of them, and a call's RTCP figures then take about 25 bytes on the
wire instead of 50 (README, "Performance"). A `%g` text may have an exponent (`1.234e+04`):
the Agent, statsd_exporter, Telegraf, the OTel collector (Go's strconv.ParseFloat), Vector
(Rust's f64 parser) and Etsy (JavaScript's Number) all read it.

Sample rates: `|@r` on a distribution whose reservoir kept some of its samples (see
`_core.series`). statsd_exporter (`int(1 / samplingFactor)`), Telegraf (`int(1.0/m.samplerate)`)
and Vector (`sample_rate as u32`) truncate the inverse, and Etsy reads only `@[\\d.]+` (an
exponent would be cut off), so every rate is written in fixed point with an integer
inverse that no receiver rounds down: `rate_text(w)` reads back as exactly `w` samples.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from decimal import ROUND_FLOOR, Context, Decimal
from functools import lru_cache

DEFAULT_PRECISION = 4

# Writing a value's text is most of a flush's cost. Samples often repeat (RTCP figures to a
# tenth of a ms, jitter in timestamp units, loss in 1/256 steps, MOS to a hundredth), so their
# texts are kept, one cache per distribution family (the values of one unit repeat alike: a
# MOS straight from the E-model never does, jitter in 1/8 ms steps always): a hit costs a dict
# look-up. Bounded in entries and in caches, and bypassed while a family's values rarely repeat.
_MAX_TEXTS = 4096
_shuffle = random.Random().shuffle  # which kept values carry the extra weight: not for security
_MAX_CACHES = 16  # families with a cache of their own; any more are formatted uncached
_RETRY_CACHE = 64  # calls without the cache before trying it again


def formatter(precision: int | None) -> Callable[[float], str]:
    """The text of one sample value: `precision` significant digits, or (None) every digit."""
    if precision is None:
        return repr
    return f"{{:.{precision}g}}".format


class Texts(dict[float, str]):
    """The text of each sample value seen lately."""

    __slots__ = ("_format", "_skip")

    def __init__(self, precision: int | None = DEFAULT_PRECISION) -> None:
        super().__init__()
        self._format = formatter(precision)
        self._skip = 0

    def __missing__(self, value: float) -> str:
        if len(self) >= _MAX_TEXTS:
            self.clear()
        text = self[value] = self._format(value)
        return text

    def of(self, values: list[float]) -> list[str] | map[str]:
        """The texts of `values`, from the cache while it pays."""
        if self._skip:
            self._skip -= 1
            return map(self._format, values)
        before = len(self)
        texts = list(map(self.__getitem__, values))
        # Mostly misses once the cache has had room to warm: the values do not repeat.
        if len(self) - before > len(values) // 2 and len(self) > _MAX_TEXTS // 2:
            self._skip = _RETRY_CACHE
        return texts


class FamilyTexts:
    """The texts of sample values, through a `Texts` cache per distribution family."""

    __slots__ = ("_caches", "_plain", "_precision")

    def __init__(self, precision: int | None = DEFAULT_PRECISION) -> None:
        self._precision = precision
        self._plain = formatter(precision)
        self._caches: dict[str, Texts] = {}

    def of(self, family: str, values: list[float]) -> list[str] | map[str]:
        cache = self._caches.get(family)
        if cache is None:
            if len(self._caches) >= _MAX_CACHES:
                return map(self._plain, values)
            cache = self._caches[family] = Texts(self._precision)
        return cache.of(values)


_DECIMAL = Context(prec=60)


@lru_cache(maxsize=256)
def rate_text(weight: int) -> str:
    """`|@` text for a sample that stands for `weight` samples (an int >= 2), in fixed point.

    The shortest decimal at or just below 1/weight whose float inverse is `weight` plus at
    most a billionth: every receiver's truncation reads `weight`, the Agent's float 1/rate
    is off by less than 1e-9 of it.
    """
    rate = _DECIMAL.divide(Decimal(1), Decimal(weight))
    for digits in range(1, 40):
        step = Decimal(1).scaleb(-digits)
        low = rate.quantize(step, rounding=ROUND_FLOOR, context=_DECIMAL)
        for candidate in (low, low - step):
            if candidate > 0:
                text = format(candidate, "f")
                inverse = 1 / float(text)
                if int(inverse) == weight and inverse - weight < 1e-9 * weight:
                    return text
    raise ValueError(f"no rate text for weight {weight}")  # pragma: no cover - none found up to 10**6


def weighted(values: list[float], seen: int) -> Iterator[tuple[list[float], str]]:
    """`values` (a uniform reservoir of `seen` samples) as (values, rate text) groups.

    Whole weights only, so that the weights add up to `seen` exactly: with q = seen // k
    and r = seen % k for k kept values, r of them, drawn at random, stand for q + 1
    samples, the rest for q. At random, not the first r: a reservoir's first slots hold its
    oldest samples more often than not (those never replaced), so a ramp within one
    interval read 7 % low (75 samples into 50 slots). The rate text is "" for a weight of 1.
    """
    kept = len(values)
    if seen <= kept or not kept:
        yield values, ""
        return
    q, r = divmod(seen, kept)
    if r:
        values = values[:]
        _shuffle(values)
        yield values[:r], rate_text(q + 1)
    yield values[r:], rate_text(q) if q > 1 else ""
