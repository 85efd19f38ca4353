"""The process-wide recorder behind the module-level helpers, made once, dormant."""

from __future__ import annotations

import threading
from dataclasses import replace

from .config import Config, env_options
from .family import use_default_recorder
from .recorder import Recorder

_default: Recorder | None = None
_default_lock = threading.Lock()
_shared_later: Config | None = None  # SIP_STATSD_DELIVERY=shared: applied once the catalog exists


def default_recorder() -> Recorder:
    """The process-wide recorder behind the module-level helpers."""
    global _default, _shared_later
    if _default is None:
        with _default_lock:
            if _default is None:
                config = Config(**env_options(()))
                if config.delivery == "shared":  # the mapping is sized once the SIP catalog is made
                    _shared_later, config = config, replace(config, delivery="thread")
                # `import sip_statsd` starts no thread: its first use does (sip_statsd.__getattr__).
                _default = Recorder(config, dormant=True)
    return _default


def shared_later() -> Config | None:
    """The shared-delivery configuration the environment asked for, once (see SipMetrics)."""
    global _shared_later
    config, _shared_later = _shared_later, None
    return config


def _default_for_a_family() -> Recorder:
    """The process-wide recorder, for a family defined without one: it will record, so wake it."""
    recorder = default_recorder()
    recorder.wake()
    return recorder


use_default_recorder(_default_for_a_family)
