"""Taking the cells: what a flush sends, read from every family without stopping an emitter.

Counters are read a family at a time in C (`CounterScan`): a family where nothing was
counted costs a few C loops. Only the series that counted, derived series (which count
what their sources counted) and families with queued inc(n) take Python steps. This runs
at every flush, and with host delivery at every handler that recorded something.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .batch import Batch
from .gauge import take_levels
from .series import CounterScan, CounterSeries

if TYPE_CHECKING:
    from .family import Family


class Taking:
    """The recorder's take (see `Recorder`, which is one)."""

    _families: dict[str, Family]

    def _init_taking(self) -> None:
        self._scans: dict[str, CounterScan] = {}  # per counter family, made at its first take
        self._derived: set[Family] = set()  # counter families whose series count other series

    def _take(self) -> Batch:
        """Take every cell (hold `_lock`). Runs each flush, and each host_tick that sends: kept tight.

        Counters are read a family at a time in C (`CounterScan`); only the series that
        counted, and families with queued inc(n) or derived series, take Python steps.
        """
        batch = Batch()
        counts, samples = batch.counts, batch.samples
        taken: list[tuple[Family, list[tuple[CounterSeries, int]]]] = []
        for family in self._families.values():
            kind = family.kind
            if kind == "count":
                taken.append((family, self._scan(family).take()))
            elif kind == "gauge":  # a level, sent every flush once it has one
                take_levels(family, batch.gauges)
            else:
                for series in family._by_values.values():
                    values = series._take()  # type: ignore[attr-defined]
                    if values:
                        samples.append((series, values))  # type: ignore[arg-type]
        self._merge_counts(taken, counts)
        return batch

    def _merge_counts(
        self, taken: list[tuple[Family, list[tuple[CounterSeries, int]]]], counts: list[tuple[CounterSeries, int]]
    ) -> None:
        """Each family's counted series into `counts`, with what derived series and inc(n) add."""
        # A derived series (sip_invite_result_total's) counts what its sources counted.
        fed: dict[CounterSeries, int] = {}
        for _, changed in taken:
            for series, n in changed:
                for target in series._feeds:
                    fed[target] = fed.get(target, 0) + n
        for family, changed in taken:
            if not (family._extra_pending or (fed and family in self._derived)):
                counts.extend(changed)
                continue
            # Queued inc(n): the flag is cleared before the lists are read (an append after
            # that sets it again, for the next take).
            family._extra_pending = False
            merged = dict(changed)
            for one in family._by_values.values():
                assert isinstance(one, CounterSeries)
                n = fed.get(one, 0) + one._take_extra()
                if n:
                    merged[one] = merged.get(one, 0) + n
            counts.extend(merged.items())

    def _scan(self, family: Family) -> CounterScan:
        """The family's scan, made again when the family has grown (the drop counter does)."""
        scan = self._scans.get(family.name)
        if scan is None or len(scan.series) != len(family._by_values):
            if scan is not None:
                scan.keep()
            scan = self._scans[family.name] = CounterScan(tuple(family._by_values.values()))  # type: ignore[arg-type]
            if any(series._sources for series in scan.series):
                self._derived.add(family)
        return scan
