"""Thread delivery (`delivery="thread"`, the default): our flusher thread sends.

The thread itself, its loop and its schedule are `flusher`'s; this is the recorder's handle on
them and the thread's fork story, in one place.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .flusher import Flushing, Schedule, watch

if TYPE_CHECKING:
    from .config import Config


class ThreadDelivery:
    """Our flusher thread sends, every flush_interval and whenever a flush is asked.

    It owns the schedule: the flush numbers every waiter waits for, on one condition for the
    life of the recorder in this process, whichever delivery serves a flush (a host's thread
    finishes its numbers there too). Fork story: the thread is ended before a fork (so a fork
    never meets it mid-import or mid-send) and started again in the parent; a child gets a new
    schedule (a thread of the parent may have held the old condition) and its own thread.
    """

    def __init__(self, recorder: Flushing, interval: float) -> None:
        """`recorder`: what the thread calls (`flusher.Flushing`); held weakly by the thread."""
        self._recorder = recorder
        self.schedule = Schedule(interval)
        watch(recorder, self.schedule)  # the thread ends when the recorder is collected

    def set_mode(self, config: Config) -> None:
        """Any delivery but "thread" starts no thread: a caller's thread sends (hold the condition)."""
        self.schedule.threadless = config.delivery != "thread"

    def wake(self) -> None:
        """Start the thread if nothing has yet (the first use of a dormant recorder)."""
        self.schedule.rouse(self._recorder)

    def pause_for_fork(self) -> threading.Thread | None:
        """Before a fork: ask the thread to end; return it, to be waited for (see `process`)."""
        return self.schedule.pause()

    # No lock of ours is held from before a fork to after it: a host may fork several times
    # in one bracket and run Python in between (Kamailio's main process calls child_init(0)
    # there), and a child makes its own locks anyway.

    def after_fork_parent(self) -> None:
        self.schedule.resume(self._recorder)

    def after_fork_child(self) -> Schedule:
        """In the child: a new schedule, periodic and dormant as the parent's was; no thread yet."""
        old = self.schedule
        schedule = self.schedule = Schedule(old.interval)
        schedule.periodic = old.periodic
        schedule.dormant = old.dormant
        watch(self._recorder, schedule)
        return schedule

    def start_in_child(self) -> None:
        """The child's own thread, once its delivery is set (hold the condition)."""
        schedule = self.schedule
        if schedule.periodic and not schedule.dormant:
            schedule.start(self._recorder)
