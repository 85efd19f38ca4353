"""The process-wide recorder behind the module-level helpers, made once, dormant."""

from __future__ import annotations

import threading

from .config import Config, env_options
from .family import use_default_recorder
from .recorder import Recorder

_default: Recorder | None = None
_default_lock = threading.Lock()


def default_recorder() -> Recorder:
    """The process-wide recorder behind the module-level helpers."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                # `import sip_statsd` starts no thread: its first use does (sip_statsd.__getattr__).
                _default = Recorder(Config(**env_options(())), dormant=True)
    return _default


def _default_for_a_family() -> Recorder:
    """The process-wide recorder, for a family defined without one: it will record, so wake it."""
    recorder = default_recorder()
    recorder.wake()
    return recorder


use_default_recorder(_default_for_a_family)
