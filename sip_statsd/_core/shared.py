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
`_recycle`). The sender holds a POSIX record lock
(`lockf`) on a private temporary file while it reads and updates the marks, so two senders
(an `rtimer` and an exit flush) never send one count twice; the kernel drops the lock of a
process that dies.
"""

from __future__ import annotations

import mmap
import operator
import os
import struct
import types
from array import array
from typing import TYPE_CHECKING, Any

from .batch import Batch
from .family import Family
from .gauge import GaugeSeries
from .series import CounterSeries, DistributionSeries
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

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

try:
    import fcntl  # POSIX; shared delivery is refused where there is no fork() (see Config)
except ImportError:  # pragma: no cover - Windows: `import sip_statsd` must work there all the same
    fcntl = None  # type: ignore[assignment]

SLOTS = 128  # processes that can claim a slot (Kamailio's workers, timers, rtimer, main ...)
RING = 512  # samples a process keeps per distribution series between two reads (then a reservoir)
_SPARE_COUNTERS = 512  # room for families defined after configure(), before the fork
_SPARE_GAUGES = 32
_SPARE_DISTRIBUTIONS = 16
_GAUGE_WORDS = GAUGE_WORDS
_RECORD = struct.Struct("<I")


class SharedMapping:
    """The shared mapping of one recorder: its layout, this process's slot, and the sender's read."""

    def __init__(self, families: Iterable[Family]) -> None:
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
        self.creator = os.getpid()
        self.pid = 0
        self.slot = -1
        import tempfile  # here, at configure(): `import sip_statsd` stays light

        self._lock_file = tempfile.TemporaryFile()  # noqa: SIM115 - held for the mapping's life
        free, self._free = os.pipe()  # free slot numbers, one 4-byte record each: claims are atomic
        self._claims = free
        os.write(self._free, b"".join(_RECORD.pack(i) for i in range(SLOTS)))
        os.set_blocking(free, False)
        self.lost_claims = 0  # processes that found no free slot (they count in the creator's)
        self.replaced: dict[int, tuple[object, object]] = {}  # old cell objects, for `rebind`
        self.cells: list[object] = []
        self.claim()
        for family in families:
            self._add(family)

    # --- layout: each series' cells, the same in every process --------------------------------

    def check_can_add(self, name: str) -> None:
        """Families join the layout in the process that made it, before the fork; else ValueError."""
        if os.getpid() != self.creator:
            raise ValueError(
                f"{name}: with delivery='shared', define metrics before the host forks "
                "(the shared mapping's layout is fixed then)"
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
                self.counters.append(series)
            elif isinstance(series, GaugeSeries):
                if len(self.gauges) >= self.g_cap:
                    raise ValueError(f"{family.name}: no room left in the shared mapping for more gauges")
                series.__class__ = SharedGaugeSeries
                self.gauges.append(series)
            elif isinstance(series, DistributionSeries):
                if len(self.distributions) >= self.d_cap:
                    raise ValueError(f"{family.name}: no room left in the shared mapping for more distributions")
                series.__class__ = SharedDistributionSeries
                self.replaced[id(series._samples)] = (series._samples, _FULL)  # helpers' fast paths append there
                series._samples = _FULL  # type: ignore[assignment]
                self.distributions.append(series)
        self._bind(fresh)

    def _made(self, old: object, new: object) -> object:
        self.replaced[id(old)] = (old, new)  # old kept alive: its id stays its own
        self.cells.append(new)
        return new

    def _bind(self, family_series: Sequence[object]) -> None:
        """Cells in this process's slot for series new to the layout (made in the creator, before the fork)."""
        base = self.slots_at + self.slot * self.slot_words
        words, floats = self.words, self.floats
        made = self._made
        for series in family_series:
            if isinstance(series, SharedCounterSeries):
                i = self.counters.index(series)
                series._count = made(series._count, SharedCell(words, base + i))  # type: ignore[assignment]
            elif isinstance(series, SharedGaugeSeries):
                at = base + self.c_cap + _GAUGE_WORDS * self.gauges.index(series)
                series._up = made(series._up, SharedCell(words, at))  # type: ignore[assignment]
                series._down = made(series._down, SharedCell(words, at + 1))  # type: ignore[assignment]
                series._extra = made(series._extra, _GaugeCells(words, floats, at + 2))  # type: ignore[assignment]
            elif isinstance(series, SharedDistributionSeries):
                i = self.distributions.index(series)
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

    # --- claims ---------------------------------------------------------------------------------

    def claim(self) -> None:
        """This process's slot, claimed once (one read from the pipe): called in every new process."""
        pid = os.getpid()
        if self.pid == pid:
            return
        try:
            record = os.read(self._claims, _RECORD.size)
        except OSError:  # empty (BlockingIOError), or a host that closed the fds it inherited
            record = b""
        if len(record) != _RECORD.size:  # every slot is held by a live process: this one counts in the creator's
            self.lost_claims += 1
            self.pid = pid
            return
        slot = _RECORD.unpack(record)[0]
        self.words[slot] = pid  # claimed: the sender reads this slot from now on
        self.pid = pid
        if self.slot < 0:
            self.slot = slot
        else:
            self._shift(slot)

    def _recycle(self, owners: list[int]) -> None:
        """Hand the slot of a process that has exited to the next process (under the sender's lock).

        Nothing in a slot belongs to its process's memory: a new owner goes on from the cells'
        values, so the counts of the dead one stay counted, and a host that replaces workers
        (gunicorn's max_requests, uWSGI's reloads) never runs out of slots. The slot stays
        read (-1: free); a pid the system gave to another program since is only not recycled.
        """
        me = os.getpid()
        for slot, pid in enumerate(owners):
            if pid > 0 and pid != me and not _alive(pid):
                self.words[slot] = -1  # before the slot is free: its next owner writes its own pid
                try:
                    os.write(self._free, _RECORD.pack(slot))
                except OSError:  # this process closed the fds it inherited: the slot stays as it was
                    self.words[slot] = pid
                    return

    # --- the sender --------------------------------------------------------------------------------

    def take(self) -> Batch:
        """Read every claimed slot and return what changed since the last read (any process).

        The marks (counter sums sent, ring read marks) live in the mapping, under a POSIX
        record lock, so whichever process reads next goes on from here.
        """
        fd = self._lock_file.fileno()
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            return self._read()
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)

    def _read(self) -> Batch:
        words, floats = self.words, self.floats
        owners = words[:SLOTS].tolist()
        claimed = [i for i, pid in enumerate(owners) if pid]
        self._recycle(owners)
        n_c, n_g = len(self.counters), len(self.gauges)
        sums = [0] * n_c
        gauge_words = [0] * (_GAUGE_WORDS * n_g)
        adjust = [0.0] * n_g
        for slot in claimed:
            base = self.slots_at + slot * self.slot_words
            sums = list(map(operator.add, sums, words[base : base + n_c].tolist()))
            g = base + self.c_cap
            gauge_words = list(map(operator.add, gauge_words, words[g : g + _GAUGE_WORDS * n_g].tolist()))
            adjust = list(map(operator.add, adjust, floats[g + 2 : g + _GAUGE_WORDS * n_g : _GAUGE_WORDS].tolist()))
        batch = Batch()
        last = words[self.sums_at : self.sums_at + n_c].tolist()
        diffs = list(map(operator.sub, sums, last))
        if diffs.count(0) != n_c:
            words[self.sums_at : self.sums_at + n_c] = array("q", sums)
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
                batch.gauges.append((gauge, ups - downs + adjust[i]))
        self._read_samples(claimed, batch)
        return batch

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: whether the process exists (a zombie does, until reaped)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: it exists
        return True
    return True


def rebind(roots: Iterable[object], replaced: dict[int, tuple[object, object]]) -> None:
    """Put the shared cells where the helpers of `roots` (made before the mapping) hold the old ones.

    The SIP helpers keep each series' cell in tables their closures hold (dicts, lists,
    tuples, a dict's bound `get`): those are walked once, at configure(), and every old
    cell replaced in place (a tuple is made again and put where it was).
    """
    walk = _Rebind(replaced)
    for root in roots:
        for function in vars(root).values():
            walk.sub(function)


class _Rebind:
    def __init__(self, replaced: dict[int, tuple[object, object]]) -> None:
        self.replaced = replaced
        self.done: dict[int, object] = {}
        self.keep: list[object] = []  # what `done` names stays alive during the walk

    def sub(self, obj: object) -> object | None:
        """`obj`'s replacement (an old cell's shared one, a tuple made again), else None; containers in place."""
        hit = self.replaced.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        key = id(obj)
        if key in self.done:
            return self.done[key]
        self.done[key] = None
        self.keep.append(obj)
        if type(obj) is dict:
            self._items(obj, list(obj.items()))
        elif type(obj) is list:
            self._items(obj, list(enumerate(obj)))
        elif type(obj) is tuple:
            items = [self.sub(v) for v in obj]
            if any(v is not None for v in items):
                made = tuple(v if n is None else n for v, n in zip(obj, items, strict=True))
                self.done[key] = made
                return made
        elif isinstance(obj, types.BuiltinMethodType):
            self.sub(obj.__self__)
        elif isinstance(obj, types.FunctionType):
            self._closure(obj)
        return None

    def _items(self, container: Any, items: list[tuple[Any, object]]) -> None:
        for k, v in items:
            new = self.sub(v)
            if new is not None:
                container[k] = new

    def _closure(self, function: types.FunctionType) -> None:
        for cell in function.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # empty
                continue
            new = self.sub(contents)
            if new is not None:
                cell.cell_contents = new
