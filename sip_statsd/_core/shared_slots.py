"""Shared delivery's slots: which process writes where in the shared mapping (see `shared`).

A pipe holds the free slot numbers, one 4-byte record each, so a claim is one atomic read
whichever process makes it; the mapping's first `SLOTS` words say who holds each slot.
"""

from __future__ import annotations

import os
import struct
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: shared delivery is refused there (see Config)
    fcntl = None  # type: ignore[assignment]

SLOTS = 128  # processes that can claim a slot (Kamailio's workers, timers, rtimer, main ...)
_RECORD = struct.Struct("<I")


class Slots:
    """The free slot numbers (a pipe) and the owners' words of one shared mapping."""

    def __init__(self, words: Any) -> None:
        self.words = words
        free, self._free = os.pipe()
        self._claims = free
        os.write(self._free, b"".join(_RECORD.pack(i) for i in range(SLOTS)))
        os.set_blocking(free, False)

    def claim(self, pid: int, lock_fd: int) -> int | None:
        """A free slot for `pid` (one read from the pipe), else None: every slot is held.

        When none is free (workers churning faster than the sender reads), the slots of
        processes gone are handed back here first, as the sender does and under its lock
        (`lock_fd`): a few hundred microseconds, once, in the new process.
        """
        slot = self._take_free(pid)
        if slot is not None:
            return slot
        try:
            fcntl.lockf(lock_fd, fcntl.LOCK_EX)
        except OSError:  # a host that closed the fds it inherited
            return None
        try:
            self.recycle(self.words[:SLOTS].tolist())
        finally:
            fcntl.lockf(lock_fd, fcntl.LOCK_UN)
        return self._take_free(pid)

    def _take_free(self, pid: int) -> int | None:
        try:
            record = os.read(self._claims, _RECORD.size)
        except OSError:  # empty (BlockingIOError), or a host that closed the fds it inherited
            return None
        if len(record) != _RECORD.size:
            return None
        slot: int = _RECORD.unpack(record)[0]
        self.words[slot] = pid  # claimed: the sender reads this slot from now on
        return slot

    def recycle(self, owners: list[int]) -> None:
        """Hand the slot of a process that has exited to the next process (under the sender's lock).

        Nothing in a slot belongs to its process's memory: a new owner goes on from the cells'
        values, so the counts of the dead one stay counted, and a host that replaces workers
        (gunicorn's max_requests, uWSGI's reloads) runs out of slots only when the sender
        does not read between two waves of new processes. The slot stays read (-1: free); a
        pid the system gave to another program since is only not recycled.
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: whether the process exists (a zombie does, until reaped)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: it exists
        return True
    return True
