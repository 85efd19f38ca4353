"""The private CPython APIs the library relies on, each in one place, each tested per Python.

No public API answers these questions; each function here says what it relies on, and
tests/test_cpython.py checks that reliance on every Python in tox (3.11, 3.12, 3.13), so a
release that moves one fails there loudly, not at a user's exit.

- `held_by_this_thread(lock)`: `threading.RLock._is_owned()` and `threading.Condition._is_owned()`
  (threading's own test, used by `Condition.wait` and `notify`): whether a signal handler
  interrupted this thread inside the lock. A C `RLock` answers from its owner field, set by
  the acquire itself; eventlet's and gevent's patched locks keep the method.
- `exit_handler_count()`: `atexit._ncallbacks()`, which never goes down while handlers are
  registered (unregistering leaves a hole that is counted): whether a handler was registered
  after ours.
- `run_exit_handlers()`: `atexit._run_exitfuncs()`, the run the interpreter itself does at
  exit: last registered first, each error printed, the list cleared at the end.
"""

from __future__ import annotations

import atexit
from typing import Any


def held_by_this_thread(lock: Any) -> bool:
    """True if this thread holds `lock` (a `threading.RLock` or `threading.Condition`)."""
    return bool(lock._is_owned())


def exit_handler_count() -> int:
    """How many atexit handlers were registered (a handler unregistered still counts)."""
    return int(atexit._ncallbacks())


def run_exit_handlers() -> None:
    """Run every atexit handler now, last registered first, and clear them."""
    atexit._run_exitfuncs()
