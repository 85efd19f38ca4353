"""Shared fixtures: a real loopback receiver and independent SipMetrics instances."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# First, before the library reads the environment: clears DD_* / SIP_STATSD_* and listens on 8125.
from stray_guard import (  # noqa: F401  # hooks, registered by being here
    pytest_configure,
    pytest_report_header,
    pytest_runtest_protocol,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)

import sip_statsd
from sip_statsd import SipMetrics
from sip_statsd._wire.receiver import Receiver, Totals

# The process-wide instance sends nowhere in this session. Tests that put it on the wire
# configure it (capture_metrics, the sip_statsd_wire fixture) and come back to this; without
# it, a count it made while a test patched socket.getaddrinfo went to localhost:8125 later.
sip_statsd.configure(backend="off")

# (backend, flavor) pairs that put datagrams on a socket.
WIRE_BACKENDS = [
    pytest.param(("datadog", None), id="datadog"),
    pytest.param(("statsd", "influxdb"), id="statsd-influxdb"),
    pytest.param(("statsd", "graphite"), id="statsd-graphite"),
    pytest.param(("statsd", "plain"), id="statsd-plain"),
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def make_metrics() -> Iterator[Callable[..., SipMetrics]]:
    made: list[SipMetrics] = []

    def make(**options: Any) -> SipMetrics:
        metrics = SipMetrics(**options)
        made.append(metrics)
        return metrics

    yield make
    for metrics in made:
        metrics.close(timeout=2)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wire_options(backend: tuple[str, str | None], receiver: Receiver, **extra: Any) -> dict[str, Any]:
    name, flavor = backend
    options: dict[str, Any] = {"backend": name, **extra}
    if receiver.socket_path is not None:
        options["socket_path"] = receiver.socket_path
    else:
        options.update(host=receiver.host, port=receiver.port)
    if flavor is not None:
        options["flavor"] = flavor
    return options


def wire_count(totals: Totals, flavor: str | None, name: str, **labels: str) -> float:
    """A counter's total as it arrived, whatever the flavor folded its labels into."""
    if flavor == "plain":
        return sum(v for k, v in totals.counts.items() if k.split(".")[0] == name and _plain_has(k, labels))
    return totals.count(name, **labels)


def wire_samples(totals: Totals, flavor: str | None, name: str) -> list[float]:
    if flavor == "plain":
        return [v for k, vs in totals.samples.items() if k == name for v in vs]
    return totals.sample_list(name)


def _plain_has(key: str, labels: dict[str, str]) -> bool:
    parts = key.split(".")[1:]
    return all(v in parts for v in labels.values())


@pytest.fixture(scope="session")
def statsd_install() -> None:
    from statsd_daemon import install, require_node_or_skip

    reason = require_node_or_skip()
    if reason:
        pytest.skip(reason)
    install()


@pytest.fixture
def statsd_daemon(statsd_install, tmp_path):
    from statsd_daemon import StatsdDaemon

    daemon = StatsdDaemon(tmp_path)
    yield daemon
    daemon.stop()
