"""pytest fixtures for code that emits SIP metrics (the `pytest11` entry point `sip_statsd`).

- `sip_metrics`: what the code under test emitted, in memory, strict (see `capture_metrics`).
- `sip_statsd_wire`: the process-wide instance sending real datagrams to a loopback receiver.

This module lives outside the `sip_statsd` package on purpose: pytest loads every installed
plugin in every run, and importing `sip_statsd` builds the catalog, imports the datadog client
and starts the flusher thread. Here nothing of the library is imported, and nothing started,
until a test asks for one of these fixtures. `sip_statsd.pytest_plugin` re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sip_statsd._wire.receiver import Receiver, Totals
    from sip_statsd.testing import Capture

__all__ = ["WireCapture", "sip_metrics", "sip_statsd_wire"]


@pytest.fixture
def sip_metrics() -> Iterator[Capture]:
    """Capture what the test emits: `count()`, `samples()`, `assert_count()`; bad input raises."""
    from sip_statsd.testing import capture_metrics

    with capture_metrics() as capture:
        yield capture


class WireCapture:
    """A real UDP receiver on 127.0.0.1 that the process-wide instance sends to."""

    def __init__(self, receiver: Receiver, baseline: int) -> None:
        self.receiver = receiver
        self._baseline = baseline

    @property
    def address(self) -> str:
        return self.receiver.address

    def read(self, timeout: float = 10.0) -> Totals:
        """Flush, wait until every line sent has arrived, and return what arrived (parsed)."""
        import sip_statsd

        sip_statsd.flush(timeout)
        sent = sip_statsd.stats().lines_sent - self._baseline
        return self.receiver.wait_for(lambda t: t.lines >= sent, timeout)

    def datagrams(self) -> list[bytes]:
        """The raw datagrams, for byte-level assertions (call `read()` first)."""
        return self.receiver.datagrams()


@pytest.fixture
def sip_statsd_wire() -> Iterator[WireCapture]:
    """Send the process-wide instance's metrics (datadog backend, strict) to a loopback receiver."""
    import sip_statsd
    from sip_statsd._wire.receiver import Receiver

    instance = sip_statsd.default()
    previous = instance.config
    with Receiver() as receiver:
        instance.configure(host=receiver.host, port=receiver.port, strict=True)
        try:
            yield WireCapture(receiver, sip_statsd.stats().lines_sent)
        finally:
            instance.recorder.reconfigure(previous)
