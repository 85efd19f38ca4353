"""Shared delivery (`delivery="shared"`): every process of a prefork host counts in one shared
mapping (`shared.SharedMapping`), and whoever calls `flush()` (Kamailio's rtimer process, a
prefork master's timer) reads every process's counts and sends them, on its own thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .names import DROP_REASONS
from .shared import SharedMapping, lost_claims_counter, rebind

if TYPE_CHECKING:
    import weakref

    from .config import Config
    from .family import Family
    from .series import OwnedLock
    from .taking import Take


class Owner(Protocol):
    """What shared delivery uses of its recorder: the whole of it."""

    take: Take  # reads the mapping once there is one
    _families: dict[str, Family]
    _helper_roots: weakref.WeakSet[object]  # whose functions hold cells (the SIP helpers)
    _lock: OwnedLock

    def _apply_strict(self, family: Family) -> None: ...


class SharedDelivery:
    """The shared mapping of a recorder, made once, before the host forks, and its processes' slots.

    Nobody ticks: `host_tick()` does nothing, each process only adds to its own cells, and a
    flush (served on the caller's thread, as host delivery's are) takes from the mapping.
    Fork story: a child claims its own slot, from the fork hook or, forked from C (Kamailio,
    uWSGI), from the first call that notices its pid; it discards nothing (the parent's slot
    stays the parent's).
    """

    def __init__(self, recorder: Owner) -> None:
        self._recorder = recorder
        self.mapping: SharedMapping | None = None

    def set_mode(self, config: Config) -> None:
        """With delivery="shared": make the mapping (once), or claim this process's slot in it
        (a child, once) (hold the schedule's condition)."""
        if config.delivery != "shared":
            return
        if self.mapping is not None:
            self.mapping.claim()  # a child forked from C: its own slot from now on (once)
            return
        recorder = self._recorder
        lost = lost_claims_counter(recorder)  # type: ignore[arg-type]  # a Recorder: registers a family
        take = recorder.take
        with recorder._lock:
            # The plan just read by configure(): what threads count in the old cells until the
            # helpers are rebound is read from them again (see `SharedMapping._drain_old`).
            mapping = self.mapping = take.shared = SharedMapping(recorder._families.values(), take._plan)
        mapping.lost = lost
        rebind(recorder._helper_roots, mapping.replaced)  # helpers made before hold the old cells
        for family in recorder._families.values():
            recorder._apply_strict(family)  # the miss: the shared drop counter's cell

    def check_can_add(self, family: Family) -> None:
        """A family joins the mapping in the process that made it, before the fork, if all of its
        series and its drop counters fit; else ValueError, before anything is registered."""
        if self.mapping is not None:
            self.mapping.check_can_add(family, len(DROP_REASONS) + (family.kind == "distribution"))

    def check_config(self, config: Config) -> None:
        """Only the mapping's creator leaves shared delivery (a worker's take would read every slot)."""
        if self.mapping is not None and config.delivery != "shared":
            self.mapping.check_can_leave()

    def add(self, *families: Family | None) -> None:
        """Give the families' series their shared cells (hold the recorder's lock)."""
        if self.mapping is not None:
            self.mapping.add(*families)
