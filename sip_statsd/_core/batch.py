"""What one flush hands to a backend, and the counts the agent holds exactly."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from .series import CounterSeries, DistributionSeries, Series

# The largest count the agent holds exactly (it parses values as float64).
MAX_EXACT = 2**53


@dataclass
class Batch:
    """What one flush hands to a backend: summed counters and every distribution sample."""

    counts: list[tuple[CounterSeries, int]] = field(default_factory=list)
    samples: list[tuple[DistributionSeries, list[float]]] = field(default_factory=list)
    gauges: list[tuple[Series, float]] = field(default_factory=list)  # each gauge's level now
    # How many samples a distribution's kept ones stand for, where its reservoir sampled
    # some away (more than `max_samples` between two flushes); absent: each stands for one.
    seen: dict[DistributionSeries, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counts or self.samples or self.gauges)

    def merged(self, other: Batch) -> Batch:
        """One batch with both: counts summed per series, samples kept up to each series' cap.

        Past the cap, a uniform sample of both batches' kept samples stands for all they stood for.
        """
        counts: dict[CounterSeries, int] = dict(self.counts)
        for series, n in other.counts:
            counts[series] = counts.get(series, 0) + n
        samples: dict[DistributionSeries, list[float]] = {s: list(v) for s, v in self.samples}
        seen = {dist: self.seen.get(dist, len(values)) for dist, values in self.samples}
        for dist, values in other.samples:
            kept = samples.setdefault(dist, [])
            kept.extend(values)
            seen[dist] = seen.get(dist, 0) + other.seen.get(dist, len(values))
            if len(kept) > dist._cap:
                samples[dist] = random.sample(kept, dist._cap)
                if dist.family._sampled is not None:  # counted, never raised nor logged: under our lock
                    dist.family._sampled.inc(len(kept) - dist._cap)
        gauges = dict(self.gauges)
        gauges.update(other.gauges)  # a level: the later one holds
        weights = {dist: n for dist, n in seen.items() if n > len(samples[dist])}
        return Batch(list(counts.items()), list(samples.items()), list(gauges.items()), weights)

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
