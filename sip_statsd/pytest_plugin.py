"""pytest fixtures for code that emits SIP metrics: `sip_metrics` and `sip_statsd_wire`.

pytest loads them through the `pytest11` entry point from the top-level module
`pytest_sip_statsd`, which imports nothing of this package (no catalog, no datadog client,
no flusher thread) until a test uses a fixture; this module re-exports them, so
`-p sip_statsd.pytest_plugin` and `from sip_statsd.pytest_plugin import WireCapture` work too.
"""

from __future__ import annotations

from pytest_sip_statsd import WireCapture, sip_metrics, sip_statsd_wire

__all__ = ["WireCapture", "sip_metrics", "sip_statsd_wire"]
