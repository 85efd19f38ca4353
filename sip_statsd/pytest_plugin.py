"""pytest fixtures for code that emits SIP metrics (registered through the `pytest11` entry point).

- `sip_metrics`: what the code under test emitted, in memory, strict (see `capture_metrics`).
- `sip_statsd_wire`: the process-wide instance sending real datagrams to a loopback receiver.

sip_statsd itself is imported only when a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._wire.receiver import Receiver, Totals
    from .testing import Capture


@pytest.fixture
def sip_metrics() -> Iterator[Capture]:
    """Capture what the test emits: `count()`, `samples()`, `assert_count()`; bad input raises."""
    from .testing import capture_metrics

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

    from ._wire.receiver import Receiver

    instance = sip_statsd.default()
    previous = instance.config
    with Receiver() as receiver:
        instance.configure(host=receiver.host, port=receiver.port, strict=True)
        try:
            yield WireCapture(receiver, sip_statsd.stats().lines_sent)
        finally:
            instance.recorder.reconfigure(previous)
