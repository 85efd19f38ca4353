"""Taking the cells: what a flush sends, read from every family without stopping an emitter.

Every counter of the recorder is read in one pass in C (`CounterScan`): when nothing was
counted that costs a few C loops over the counts, not a Python step per series. Only the
series that counted, derived series (which count what their sources counted) and series
with queued inc(n) take Python steps. This runs at every flush, and with host delivery at
every handler that recorded something.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import series as _series
from .batch import Batch
from .family import Counter
from .gauge import holds_level_lock, take_levels
from .names import METRIC_SAMPLED_AWAY_TOTAL
from .series import CounterScan, CounterSeries, OwnedLock

if TYPE_CHECKING:
    from .family import Family
    from .recorder import Recorder


class _Plan:
    """The recorder's families sorted by kind, and one scan over all its counters."""

    __slots__ = ("counters", "distributions", "gauges", "scan")
    scan: CounterScan

    def __init__(self, families: list[Family], previous: _Plan | None) -> None:
        if previous is not None:
            previous.scan.keep()  # the series carry their next expected read into the new scan
        self.counters = [f for f in families if f.kind == "count"]
        self.gauges = [f for f in families if f.kind == "gauge"]
        self.distributions = [f for f in families if f.kind == "distribution"]
        series = tuple(s for f in self.counters for s in f._by_values.values())
        self.scan = CounterScan(series)  # type: ignore[arg-type]


def sampled_counter(recorder: Recorder) -> Counter:
    """The recorder's count of samples full reservoirs left out (the kept ones go out weighted)."""
    return Counter(
        METRIC_SAMPLED_AWAY_TOTAL,
        labels={"metric": ()},
        description="Distribution samples a full reservoir left out (the kept ones are sent weighted), by metric.",
        recorder=recorder,
        _allow_empty=True,
    )


class Taking:
    """The recorder's take (see `Recorder`, which is one)."""

    _families: dict[str, Family]
    _lock: OwnedLock

    def _init_taking(self) -> None:
        self._plan: _Plan | None = None
        self._plan_stale = True  # a family was registered (or grew) since the plan was made

    def _families_changed(self) -> None:
        """A family was registered, or the drop counter grew: plan again at the next take."""
        self._plan_stale = True

    def _take(self) -> Batch:
        """Take every cell (hold `_lock`). Runs each flush, and each host_tick that sends: kept tight."""
        plan = self._plan
        if plan is None or self._plan_stale:
            self._plan_stale = False
            plan = self._plan = _Plan(list(self._families.values()), plan)
        batch = Batch()
        counts, samples = batch.counts, batch.samples
        changed = plan.scan.take()
        for family in plan.gauges:  # a level, sent every flush once it has one
            take_levels(family, batch.gauges)
        away: dict[CounterSeries, int] = {}  # samples full reservoirs left out, by family
        for family in plan.distributions:
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
        _take_queued(plan.counters, fed)
        if fed:
            merged = dict(changed)
            for series, n in fed.items():
                merged[series] = merged.get(series, 0) + n
            counts.extend(merged.items())
        else:
            counts.extend(changed)
        counts.extend(away.items())
        return batch

    def _holds_a_take_lock(self) -> bool:
        """True if this thread holds a lock the take waits for (a signal handler interrupted it
        there): the recorder's, the fold lock, or a gauge's. Then configure() and flush() must
        not wait for a take. A few dozen look-ups, on those two calls only."""
        if self._lock.held_here() or _series._FOLD_LOCK.held_here():
            return True
        return any(holds_level_lock(family) for family in tuple(self._families.values()))

    def _discard_cells(self) -> None:
        """A forked child starts from zero: what the cells hold is the parent's (hold `_lock`)."""
        self._take()


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
