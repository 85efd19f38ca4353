"""Taking the cells: what a flush sends, read from every family without stopping an emitter.

Every counter of the recorder is read in one pass in C (`CounterScan`): when nothing was
counted that costs a few C loops over the counts, not a Python step per series. Only the
series that counted, derived series (which count what their sources counted) and series
with queued inc(n) take Python steps. This runs at every flush.

With host delivery a handler that recorded something names the metrics it touched
(`host_tick(True, metrics)`): `Take.some` then takes only those families (with the
families that feed or are fed by them, and their drop counters), a `Part` of the plan,
and leaves the rest for the next full take. Each series' last read lives in the one scan,
so nothing is taken twice, whatever the order of partial and full takes.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from . import series as _series
from .batch import Batch
from .family import Counter
from .gauge import holds_level_lock, take_levels
from .names import METRIC_SAMPLED_AWAY_TOTAL
from .series import CounterScan, CounterSeries

if TYPE_CHECKING:
    from .family import Family
    from .recorder import Recorder
    from .shared import SharedMapping

# Distinct name tuples a recorder keeps parts for (a caller that builds new tuples each call
# gets full takes past this, not unbounded memory).
MAX_PARTS = 256


class Part:
    """The families a partial take reads: counter spans of the plan's scan, gauges, distributions."""

    __slots__ = ("counters", "distributions", "gauges", "spans")

    def __init__(self, plan: _Plan, families: list[Family]) -> None:
        wanted = {f.name: f for f in families}
        queue = list(families)
        while queue:  # derived families and their sources go together: a take computes one from the other
            for series in queue.pop()._by_values.values():
                if isinstance(series, CounterSeries):
                    for other in (*series._feeds, *series._sources):
                        if other.family.name not in wanted:
                            wanted[other.family.name] = other.family
                            queue.append(other.family)
        self.counters = [f for f in plan.counters if f.name in wanted]
        self.gauges = [f for f in plan.gauges if f.name in wanted]
        self.distributions = [f for f in plan.distributions if f.name in wanted]
        # Counter series and every drop counter of the wanted families, as contiguous spans.
        index = plan.index
        at = sorted(
            {index[s] for f in self.counters for s in f._by_values.values()}
            | {index[s] for f in wanted.values() for s in f._drops.values() if s in index}
        )
        self.spans: list[tuple[int, int, tuple[itertools.count[int], ...]]] = []
        for i in at:
            if self.spans and self.spans[-1][1] == i:
                self.spans[-1] = (self.spans[-1][0], i + 1, ())
            else:
                self.spans.append((i, i + 1, ()))
        self.spans = [(a, b, plan.scan.counts[a:b]) for a, b, _ in self.spans]


class _Plan:
    """The recorder's families sorted by kind, and one scan over all its counters."""

    __slots__ = ("counters", "distributions", "families", "gauges", "index", "parts", "scan")
    scan: CounterScan

    def __init__(self, families: list[Family], previous: _Plan | None) -> None:
        if previous is not None:
            previous.scan.keep()  # the series carry their next expected read into the new scan
        self.counters = [f for f in families if f.kind == "count"]
        self.gauges = [f for f in families if f.kind == "gauge"]
        self.distributions = [f for f in families if f.kind == "distribution"]
        series = tuple(s for f in self.counters for s in f._by_values.values())
        self.scan = CounterScan(series)  # type: ignore[arg-type]
        self.families = {f.name: f for f in families}
        self.index: dict[object, int] = {s: i for i, s in enumerate(series)}
        self.parts: dict[tuple[str, ...], Part | None] = {}  # by the names a host_tick gave

    def part(self, names: tuple[str, ...]) -> Part | None:
        """The part for these metric names, made once; None if one is not a family here."""
        try:
            return self.parts[names]
        except KeyError:
            pass
        families = [self.families.get(name) for name in names]
        part = None if None in families or len(self.parts) > MAX_PARTS else Part(self, families)  # type: ignore[arg-type]
        self.parts[names] = part
        return part


def sampled_counter(recorder: Recorder) -> Counter:
    """The recorder's count of samples full reservoirs left out (the kept ones go out weighted)."""
    return Counter(
        METRIC_SAMPLED_AWAY_TOTAL,
        labels={"metric": ()},
        description="Distribution samples a full reservoir left out (the kept ones are sent weighted), by metric.",
        recorder=recorder,
        _allow_empty=True,
    )


class Take:
    """Reads the recorder's cells into a `Batch`: every family, or the families a host names.

    It holds the families (the recorder's own dict, read here, registered there) and, with
    shared delivery, the shared mapping, which is then what is read. Call it holding the
    recorder's lock.
    """

    def __init__(self, families: dict[str, Family]) -> None:
        self._families = families
        self.shared: SharedMapping | None = None  # delivery="shared": every process's cells
        self._plan: _Plan | None = None
        self._plan_stale = True  # a family was registered (or grew) since the plan was made

    def changed(self) -> None:
        """A family was registered, or the drop counter grew: plan again at the next take."""
        self._plan_stale = True

    def _current_plan(self) -> _Plan:
        plan = self._plan
        if plan is None or self._plan_stale:
            self._plan_stale = False
            plan = self._plan = _Plan(list(self._families.values()), plan)
        return plan

    def all(self) -> Batch:
        """Take every cell. Runs each flush: kept tight."""
        if self.shared is not None:
            return self.shared.take()
        plan = self._current_plan()
        return _take_from(plan.scan.take(), plan.gauges, plan.distributions, plan.counters)

    def some(self, names: tuple[str, ...]) -> Batch | None:
        """Take the cells of the families named (see `Part`); None if a name is not a family here."""
        if self.shared is not None:
            return self.shared.take()
        plan = self._current_plan()
        part = plan.part(names)
        if part is None:
            return None
        changed: list[tuple[CounterSeries, int]] = []
        take_span = plan.scan.take_span
        for start, stop, counts in part.spans:
            changed += take_span(start, stop, counts)
        return _take_from(changed, part.gauges, part.distributions, part.counters)

    def holds_a_lock(self) -> bool:
        """True if this thread holds a lock the take waits for besides the recorder's (a signal
        handler interrupted it there): the fold lock, or a gauge's. Then configure() and flush()
        must not wait for a take. A few dozen look-ups, on those two calls only."""
        if _series._FOLD_LOCK.held_here():
            return True
        return any(holds_level_lock(family) for family in tuple(self._families.values()))

    def after_fork_child(self, keep_cells: bool) -> None:
        """A forked child starts from zero: what the cells hold is the parent's, unless the child
        was forked from C and found out late (`keep_cells`: what it recorded cannot be told apart).
        Shared cells: the parent's slot stays the parent's, nothing to discard."""
        if keep_cells or self.shared is not None:
            return
        self.all()
        # A fold that a fork from a signal handler interrupted goes on, in the child, on a
        # list nobody reads.
        for family in self._families.values():
            for series in family._by_values.values():
                if isinstance(series, CounterSeries):
                    series._extra = []


def _take_from(
    changed: list[tuple[CounterSeries, int]], gauges: list[Family], distributions: list[Family], counters: list[Family]
) -> Batch:
    """A batch of what `changed` counted, the gauges' levels, the distributions' samples and
    the counters' queued inc(n), derived series fed by their sources."""
    batch = Batch()
    counts, samples = batch.counts, batch.samples
    for family in gauges:  # a level, sent every flush once it has one
        take_levels(family, batch.gauges)
    away: dict[CounterSeries, int] = {}  # samples full reservoirs left out, by family
    for family in distributions:
        for series in family._by_values.values():
            values, seen = series._take_seen()  # type: ignore[attr-defined]
            if values:
                samples.append((series, values))  # type: ignore[arg-type]
                if seen > len(values):  # a reservoir: the kept samples stand for `seen`
                    batch.seen[series] = seen  # type: ignore[index]
                    if family._sampled is not None:  # counted in this very batch
                        away[family._sampled] = away.get(family._sampled, 0) + seen - len(values)
    # A derived series (sip_invite_result_total's classes) counts what its sources counted.
    fed: dict[CounterSeries, int] = {}
    for series, n in changed:
        for target in series._feeds:
            fed[target] = fed.get(target, 0) + n
    _take_queued(counters, fed)
    if fed:
        merged = dict(changed)
        for series, n in fed.items():
            merged[series] = merged.get(series, 0) + n
        counts.extend(merged.items())
    else:
        counts.extend(changed)
    counts.extend(away.items())
    return batch


def _take_queued(counters: list[Family], fed: dict[CounterSeries, int]) -> None:
    """Add what inc(n) queued to `fed`, for the families that queued something."""
    for family in counters:
        if family._extra_pending:
            # The flag is cleared before the lists are read: an append after that sets it
            # again, for the next take.
            family._extra_pending = False
            for series in family._by_values.values():
                assert isinstance(series, CounterSeries)
                extra = series._take_extra()
                if extra:
                    fed[series] = fed.get(series, 0) + extra
