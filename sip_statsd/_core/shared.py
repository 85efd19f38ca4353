"""Shared delivery (`delivery="shared"`): every process counts in one shared mapping, one sender reads all.

For prefork hosts (Kamailio, uWSGI, gunicorn): sending after each handler costs the host more
than the event (inside Kamailio a 12-20 us send became ~100 us). Here, as Kamailio's own C
modules do, each process only adds to cells in memory shared by all processes, and whoever
calls `flush()` (Kamailio: an `rtimer` route; a prefork master: a timer or a thread) reads
every process's cells and sends the differences since the last read.

The mapping is one anonymous `MAP_SHARED` mmap made by `configure(delivery="shared")` before
the host forks, so every child inherits it. It holds a slot per process: a process claims one
once (one read from a pipe of free slot numbers: the only syscall, at the fork hook or the
first configure() in a child forked from C) and from then on writes only there, without a
lock or a syscall. Every cell of a slot has one writer, its process:
- a counter is a monotonic 64-bit cell (`SharedCell`); the sender sums every slot and keeps
  the sums it last sent in the mapping, so nothing is ever reset under a writer;
- a gauge is the process's ups, downs and an adjustment (set, inc(n)); the sender sends the
  sum over processes: one series for the whole host, whichever process a call ends in;
- a distribution keeps samples in a ring per slot with a monotonic write count; the sender
  keeps the read mark. Past the ring's size between two reads, the process keeps a uniform
  reservoir of them (algorithm R, as `DistributionSeries`), and the sender weights them.

Within a process, `view[i] += 1` is one Python statement with no point between the read and
the write where CPython switches threads (the eval breaker is only checked at calls and
backward jumps), so threads of one process do not lose counts either. The sender's reads are
8-byte aligned loads. A process that dies loses nothing it wrote: its slot stays, read like
any other, and the sender hands it to the next process, which goes on from its values (see
`Slots.recycle`). The sender holds a POSIX record lock
(`lockf`) on a private temporary file while it reads and updates the marks, so two senders
(an `rtimer` and an exit flush) never send one count twice; the kernel drops the lock of a
process that dies.
"""

from __future__ import annotations

import mmap
import operator
import os
import time
from array import array
from typing import TYPE_CHECKING

from .batch import Batch
from .family import Counter, Family
from .gauge import GaugeSeries, _finite
from .names import DROP_INVALID_NUMBER
from .series import CounterScan, CounterSeries, DistributionSeries
from .shared_cells import (
    _FULL,
    GAUGE_WORDS,
    SharedCell,
    SharedCounterSeries,
    SharedDistributionSeries,
    SharedGaugeSeries,
    _GaugeCells,
    _Ring,
)
from .shared_rebind import rebind
from .shared_slots import SLOTS, Slots

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .recorder import Recorder
    from .taking import _Plan

try:
    import fcntl  # POSIX; shared delivery is refused where there is no fork() (see Config)
except ImportError:  # pragma: no cover - Windows: `import sip_statsd` must work there all the same
    fcntl = None  # type: ignore[assignment]

RING = 512  # samples a process keeps per distribution series between two reads (then a reservoir)
_SPARE_COUNTERS = 512  # room for families defined after configure(), before the fork
_SPARE_GAUGES = 32
_SPARE_DISTRIBUTIONS = 16
_GAUGE_WORDS = GAUGE_WORDS

__all__ = ["SharedMapping", "lost_claims_counter", "rebind"]
_MASK = 2**64 - 1  # counter cells wrap around (unsigned 64 bits); the sender's differences are mod 2**64
_DRAIN_FOR = 1.0  # seconds the old cells are still read after configure() (emits already under way)


class SharedMapping:
    """The shared mapping of one recorder: its layout, this process's slot, and the sender's read."""

    def __init__(self, families: Iterable[Family], plan: _Plan | None = None) -> None:
        families = list(families)
        self.counters: list[CounterSeries] = []
        self.gauges: list[GaugeSeries] = []
        self.distributions: list[DistributionSeries] = []
        n_c = n_g = n_d = 0
        for family in families:
            n = len(family._by_values)
            if family.kind == "count":
                n_c += n
            elif family.kind == "gauge":
                n_g += n
            else:
                n_d += n
        self.c_cap, self.g_cap, self.d_cap = n_c + _SPARE_COUNTERS, n_g + _SPARE_GAUGES, n_d + _SPARE_DISTRIBUTIONS
        self.slot_words = self.c_cap + _GAUGE_WORDS * self.g_cap + (2 + RING) * self.d_cap
        # Words: the claimed flag of each slot; the counter sums last sent; the sender's two
        # marks per slot and distribution series; then the slots.
        self.sums_at = SLOTS
        self.marks_at = self.sums_at + self.c_cap
        self.slots_at = self.marks_at + SLOTS * self.d_cap * 2
        words = self.slots_at + SLOTS * self.slot_words
        self.map = mmap.mmap(-1, words * 8, flags=mmap.MAP_SHARED)  # anonymous, inherited by every child
        self.words = memoryview(self.map).cast("q")
        self.floats = memoryview(self.map).cast("d")
        self.counts = memoryview(self.map).cast("Q")  # counter cells and sums: unsigned, they wrap
        self._index: dict[int, int] = {}  # id(series) -> its index in counters/gauges/distributions
        self.creator = os.getpid()
        self.pid = 0
        self.slot = -1
        import tempfile  # here, at configure(): `import sip_statsd` stays light

        self._lock_file = tempfile.TemporaryFile()  # noqa: SIM115 - held for the mapping's life
        self.slots = Slots(self.words)
        self.lost: CounterSeries | None = None  # set once the layout is made (see `lost_claims_counter`)
        self.lost_claims = 0  # processes that found no free slot (they count in the creator's)
        self.replaced: dict[int, tuple[object, object]] = {}  # old cell objects, for `rebind`
        self.cells: list[object] = []
        self.claim()
        for family in families:
            self._add(family)
        # What threads count in the old cells between configure()'s read and the rebind (and
        # emits under way then) is read from them again at the takes of the next moments.
        self._old: CounterScan | None = plan.scan if plan is not None else None
        self._old_until = time.monotonic() + _DRAIN_FOR
        # The sender's copy of each slot's counter cells at its last read (see `_counter_sums`).
        self._seen_key: tuple[int, int] = (0, 0)
        self._seen: dict[int, bytes] = {}
        self._total: list[int] = []

    # --- layout: each series' cells, the same in every process --------------------------------

    def check_can_add(self, family: Family, more_counters: int = 0) -> None:
        """Families join the layout in the process that made it, before the fork, if there is room
        for all of their series (and `more_counters` of the library's own); else ValueError."""
        name = family.name
        if os.getpid() != self.creator:
            raise ValueError(
                f"{name}: with delivery='shared', define metrics before the host forks "
                "(the shared mapping's layout is fixed then)"
            )
        n = len(family._by_values)
        c, g, d = (n, 0, 0) if family.kind == "count" else (0, n, 0) if family.kind == "gauge" else (0, 0, n)
        for kind, want, have, cap in (
            ("counters", c + more_counters, len(self.counters), self.c_cap),
            ("gauges", g, len(self.gauges), self.g_cap),
            ("distributions", d, len(self.distributions), self.d_cap),
        ):
            if have + want > cap:
                raise ValueError(
                    f"{name}: no room left in the shared mapping for {want} more {kind} "
                    f"({cap - have} left; define metrics before configure(delivery='shared'))"
                )

    def check_can_leave(self) -> None:
        """Only the mapping's creator leaves shared delivery: a worker's take would read every slot."""
        if os.getpid() != self.creator:
            raise ValueError(
                "configure(): a process forked after configure(delivery='shared') cannot change "
                "delivery (it would take every process's counts); configure the host's main process"
            )

    def add(self, *families: Family | None) -> None:
        """Give the families' new series their cells (before the fork: the layout is the same in every process)."""
        for family in families:
            if family is not None:
                self._add(family)

    def _add(self, family: Family) -> None:
        fresh = [s for s in family._by_values.values() if type(s) in (CounterSeries, GaugeSeries, DistributionSeries)]
        for series in fresh:
            if isinstance(series, CounterSeries):
                if len(self.counters) >= self.c_cap:
                    raise ValueError(f"{family.name}: no room left in the shared mapping for more counters")
                series.__class__ = SharedCounterSeries
                self._index[id(series)] = len(self.counters)
                self.counters.append(series)
            elif isinstance(series, GaugeSeries):
                if len(self.gauges) >= self.g_cap:
                    raise ValueError(f"{family.name}: no room left in the shared mapping for more gauges")
                series.__class__ = SharedGaugeSeries
                self._index[id(series)] = len(self.gauges)
                self.gauges.append(series)
            elif isinstance(series, DistributionSeries):
                if len(self.distributions) >= self.d_cap:
                    raise ValueError(f"{family.name}: no room left in the shared mapping for more distributions")
                series.__class__ = SharedDistributionSeries
                self.replaced[id(series._samples)] = (series._samples, _FULL)  # helpers' fast paths append there
                series._samples = _FULL  # type: ignore[assignment]
                self._index[id(series)] = len(self.distributions)
                self.distributions.append(series)
        self._bind(fresh)

    def _made(self, old: object, new: object) -> object:
        self.replaced[id(old)] = (old, new)  # old kept alive: its id stays its own
        self.cells.append(new)
        return new

    def _bind(self, family_series: Sequence[object]) -> None:
        """Cells in this process's slot for series new to the layout (made in the creator, before the fork)."""
        base = self.slots_at + self.slot * self.slot_words
        words, floats, counts = self.words, self.floats, self.counts
        made, index = self._made, self._index
        for series in family_series:
            if isinstance(series, SharedCounterSeries):
                i = index[id(series)]
                series._count = made(series._count, SharedCell(counts, base + i))  # type: ignore[assignment]
            elif isinstance(series, SharedGaugeSeries):
                at = base + self.c_cap + _GAUGE_WORDS * index[id(series)]
                series._up = made(series._up, SharedCell(counts, at))  # type: ignore[assignment]
                series._down = made(series._down, SharedCell(counts, at + 1))  # type: ignore[assignment]
                series._extra = made(series._extra, _GaugeCells(words, floats, at + 2))  # type: ignore[assignment]
            elif isinstance(series, SharedDistributionSeries):
                i = index[id(series)]
                at = base + self.c_cap + _GAUGE_WORDS * self.g_cap + (2 + RING) * i
                marks = self.marks_at + self.slot * self.d_cap * 2 + 2 * i
                series._over = made(series._over, _Ring(words, floats, at, marks, RING))  # type: ignore[assignment]

    def _shift(self, slot: int) -> None:
        """Move every cell of this process to `slot` (the objects stay: helpers' tables hold them)."""
        delta = (slot - self.slot) * self.slot_words
        mark_delta = (slot - self.slot) * self.d_cap * 2
        for cell in self.cells:
            cell.at += delta  # type: ignore[attr-defined]
            if isinstance(cell, _Ring):
                cell.marks += mark_delta
        self.slot = slot

    def claim(self) -> None:
        """This process's slot, claimed once (see `Slots.claim`): called in every new process."""
        pid = os.getpid()
        if self.pid == pid:
            return
        slot = self.slots.claim(pid, self._lock_file.fileno())
        self.pid = pid
        if slot is None:  # every slot is held by a live process: this one counts in the creator's
            self.lost_claims += 1
            if self.lost is not None:
                self.lost.inc()  # sip_statsd_shared_lost_claims_total: the agent sees it
        elif self.slot < 0:
            self.slot = slot
        else:
            self._shift(slot)

    # --- the sender --------------------------------------------------------------------------------

    def take(self) -> Batch:
        """Read every claimed slot and return what changed since the last read (any process).

        The marks (counter sums sent, ring read marks) live in the mapping, under a POSIX
        record lock, so whichever process reads next goes on from here.
        """
        fd = self._lock_file.fileno()
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            self._drain_old()
            return self._read()
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)

    def _drain_old(self) -> None:
        """Move into this process's slot what threads counted in the cells the shared ones replaced.

        configure() read the old cells before the helpers were pointed at the shared ones:
        what threads counted there in between (and emits under way at the rebind) is read
        again here, until a take a moment after configure() finds nothing new there.
        """
        scan = self._old
        if scan is None or os.getpid() != self.creator:
            return
        found = False
        for series, n in scan.take():
            if n > 0 and isinstance(series, SharedCounterSeries):
                series._count.add(n)  # type: ignore[attr-defined]
                found = True
        for series in scan.series:
            if series._extra and not series._sources:  # inc(n) queued before the class changed
                n = series._take_extra()
                if n and isinstance(series, SharedCounterSeries):
                    series._count.add(n)  # type: ignore[attr-defined]
                    found = True
        if not found and time.monotonic() > self._old_until:
            self._old = None

    def _read(self) -> Batch:
        words, floats, cells = self.words, self.floats, self.counts
        owners = words[:SLOTS].tolist()
        claimed = [i for i, pid in enumerate(owners) if pid]
        self.slots.recycle(owners)
        n_c, n_g = len(self.counters), len(self.gauges)
        sums = self._counter_sums(claimed, n_c)
        gauge_words = [0] * (_GAUGE_WORDS * n_g)
        adjust = [0.0] * n_g
        for slot in claimed:
            g = self.slots_at + slot * self.slot_words + self.c_cap
            gauge_words = list(map(operator.add, gauge_words, words[g : g + _GAUGE_WORDS * n_g].tolist()))
            adjust = list(map(operator.add, adjust, floats[g + 2 : g + _GAUGE_WORDS * n_g : _GAUGE_WORDS].tolist()))
        batch = Batch()
        last = cells[self.sums_at : self.sums_at + n_c].tolist()
        diffs = list(map(operator.sub, sums, last))
        if diffs.count(0) != n_c:  # sums and differences mod 2**64: a cell past 2**64 wraps around
            sums = [n & _MASK for n in sums]
            diffs = [(n - m) & _MASK for n, m in zip(sums, last, strict=True)]
            cells[self.sums_at : self.sums_at + n_c] = array("Q", sums)
            counted: dict[CounterSeries, int] = {}
            for i, n in enumerate(diffs):
                if n:
                    series = self.counters[i]
                    counted[series] = counted.get(series, 0) + n
                    for target in series._feeds:  # a derived series counts what its sources counted
                        counted[target] = counted.get(target, 0) + n
            batch.counts.extend(counted.items())
        for i, gauge in enumerate(self.gauges):
            ups, downs, _, moves = gauge_words[_GAUGE_WORDS * i : _GAUGE_WORDS * (i + 1)]
            if ups or downs or moves:  # sent from its first move or set on, as in one process
                level = ups - downs + adjust[i]
                if _finite(level) is not None:
                    batch.gauges.append((gauge, level))
                elif (drop := gauge.family._drops.get(DROP_INVALID_NUMBER)) is not None:
                    batch.counts.append((drop, 1))  # inf or nan summed: no line a receiver rejects
        self._read_samples(claimed, batch)
        return batch

    def _counter_sums(self, claimed: list[int], n_c: int) -> list[int]:
        """The counter cells summed over the slots: a slot whose bytes did not change since this
        process's last read (a process gone, an idle one) costs a copy and a compare, not a sum."""
        if self._seen_key != (os.getpid(), n_c):
            self._seen_key, self._seen, self._total = (os.getpid(), n_c), {}, [0] * n_c
        seen, total, cells = self._seen, self._total, self.counts
        for slot in claimed:
            base = self.slots_at + slot * self.slot_words
            raw = cells[base : base + n_c].tobytes()
            old = seen.get(slot)
            if old == raw:
                continue
            new = memoryview(raw).cast("Q").tolist()
            if old is not None:
                new = list(map(operator.sub, new, memoryview(old).cast("Q").tolist()))
            total = list(map(operator.add, total, new))
            seen[slot] = raw
        self._total = total
        return total

    def _read_samples(self, claimed: list[int], batch: Batch) -> None:
        words, floats = self.words, self.floats
        kept: dict[DistributionSeries, list[float]] = {}
        seen: dict[DistributionSeries, int] = {}
        n_d, step = len(self.distributions), 2 + RING
        for slot in claimed:
            base = self.slots_at + slot * self.slot_words + self.c_cap + _GAUGE_WORDS * self.g_cap
            marks = self.marks_at + slot * self.d_cap * 2
            # Each series' two counts, then the sender's two marks, one slice each: the counts
            # first, so the samples they count are in the ring.
            end = base + step * n_d
            written_all, over_all = words[base:end:step].tolist(), words[base + 1 : end : step].tolist()
            marked = words[marks : marks + 2 * n_d].tolist()
            if written_all == marked[0::2] and over_all == marked[1::2]:
                continue  # nothing observed in this process since the last read
            for i, dist in enumerate(self.distributions):
                at = base + step * i
                written, over = written_all[i], over_all[i]
                read, over_read = marked[2 * i], marked[2 * i + 1]
                if written == read and over == over_read:
                    continue
                ring = floats[at + 2 : at + 2 + RING]
                values = [ring[j % RING] for j in range(read, written)]
                words[marks + 2 * i] = written
                words[marks + 2 * i + 1] = over
                kept.setdefault(dist, []).extend(values)
                seen[dist] = seen.get(dist, 0) + (written - read) + (over - over_read)
        away: dict[CounterSeries, int] = {}
        for dist, values in kept.items():
            if values:
                batch.samples.append((dist, values))
            if seen[dist] > len(values):
                batch.seen[dist] = seen[dist]
                sampled = dist.family._sampled
                if sampled is not None:
                    away[sampled] = away.get(sampled, 0) + seen[dist] - len(values)
        batch.counts.extend(away.items())


METRIC_SHARED_LOST_CLAIMS_TOTAL = "sip_statsd_shared_lost_claims_total"


def lost_claims_counter(recorder: Recorder) -> CounterSeries:
    """The library's count of processes that found no free slot (made at configure(), before the mapping)."""
    return Counter(
        METRIC_SHARED_LOST_CLAIMS_TOTAL,
        labels={},
        description="Processes that found every shared slot held: they count in the creator's slot.",
        recorder=recorder,
    ).series()
