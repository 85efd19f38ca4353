"""A forked child's new start: its own locks, schedule, backend and delivery (the recorder's fork story).

Runs in the child, from Python's fork hook or, for a child forked from C (Kamailio, uWSGI),
from the first call that notices the new pid (`Recorder._check_pid`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .backend import MemoryBackend
from .series import OwnedLock

if TYPE_CHECKING:
    from .recorder import Recorder


def start_child(recorder: Recorder, keep_cells: bool) -> None:
    """Fresh locks and schedule (no other thread of the parent exists here), then its own delivery."""
    recorder._pid = os.getpid()
    recorder._lock = OwnedLock()
    recorder._configuring = OwnedLock()  # a parent thread may have been inside configure()
    recorder._pending_config.clear()
    recorder.host.after_fork_child()
    schedule = recorder.flusher.after_fork_child()
    recorder.take.after_fork_child(keep_cells)  # the parent sends what it had recorded; the child starts from zero
    recorder._switches.clear()  # their batches are the parent's; their configuration holds here
    # A memory backend starts empty too: what it holds is the parent's.
    sender = recorder.sender
    sender.after_fork_child(recorder.config, isinstance(recorder._intended or sender.backend, MemoryBackend))
    if isinstance(recorder._intended, MemoryBackend):
        recorder._intended = sender.backend
    with schedule.cond:
        recorder._set_delivery(recorder.config)  # shared delivery: the child claims its slot
        recorder.flusher.start_in_child()
