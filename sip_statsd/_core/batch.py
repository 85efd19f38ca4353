"""What one flush hands to a backend, and the counts the agent holds exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .names import DROP_SAMPLE_OVERFLOW
from .series import CounterSeries, DistributionSeries, Series

# The largest count the agent holds exactly (it parses values as float64).
MAX_EXACT = 2**53


@dataclass
class Batch:
    """What one flush hands to a backend: summed counters and every distribution sample."""

    counts: list[tuple[CounterSeries, int]] = field(default_factory=list)
    samples: list[tuple[DistributionSeries, list[float]]] = field(default_factory=list)
    gauges: list[tuple[Series, float]] = field(default_factory=list)  # each gauge's level now

    def __bool__(self) -> bool:
        return bool(self.counts or self.samples or self.gauges)

    def merged(self, other: Batch) -> Batch:
        """One batch with both: counts summed per series, samples kept up to each series' cap."""
        counts: dict[CounterSeries, int] = dict(self.counts)
        for series, n in other.counts:
            counts[series] = counts.get(series, 0) + n
        samples: dict[DistributionSeries, list[float]] = {s: list(v) for s, v in self.samples}
        for dist, values in other.samples:
            kept = samples.setdefault(dist, [])
            room = max(dist._cap - len(kept), 0)
            kept.extend(values[:room])
            over = len(values) - room
            drops = dist.family._drops
            if over > 0 and drops:  # counted, never raised nor logged: this runs under our lock
                drops[DROP_SAMPLE_OVERFLOW].inc(over)
        gauges = dict(self.gauges)
        gauges.update(other.gauges)  # a level: the later one holds
        return Batch(list(counts.items()), list(samples.items()), list(gauges.items()))

    @property
    def values(self) -> int:
        """How many metric values: a counter's total is one, every sample is one, a gauge's level one."""
        return len(self.counts) + sum(len(v) for _, v in self.samples) + len(self.gauges)


def exact_counts(n: int) -> Iterator[int]:
    """A count as lines the agent holds exactly (more than 2**53 goes out in parts)."""
    while n > MAX_EXACT:
        yield MAX_EXACT
        n -= MAX_EXACT
    yield n
