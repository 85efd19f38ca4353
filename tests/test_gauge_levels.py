"""A gauge's level means the same at every receiver, below 0 too (issue 24 items 1 and 2).

Every receiver but the Agent reads a signed gauge value as a change (the oracles in
receiver_parsers.py transcribe each parser's rule, `relative`); Etsy's own daemon is run too.
The datagrams come off real loopback sockets; the levels are folded here, in order, as each
receiver folds them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
from receiver_parsers import PARSERS, gauge_levels

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

FLUSHES = 10


def gauge_lines(receiver: Receiver) -> list[str]:
    return [line for d in receiver.datagrams() for line in d.decode().split("\n") if "|g" in line]


def folded(name: str, receiver: Receiver) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    lines = [line for d in receiver.datagrams() for line in d.decode().split("\n") if line]
    levels = gauge_levels([s for line in lines for s in PARSERS[name](line)])
    out = {}
    for (key, labels), level in levels.items():  # Etsy folds tags into the key: `name;k=v`
        metric, *pairs = key.split(";")
        out[(metric, labels | frozenset(tuple(p.split("=", 1)) for p in pairs))] = level
    return out


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


@pytest.mark.parametrize("name", list(PARSERS))
def test_a_level_below_zero_stays_that_level_after_many_flushes(name, receiver, make_metrics):
    metrics = make_metrics(receiver=name, host=receiver.host, port=receiver.port, flush_interval=3600)
    depth = sm.Gauge("sip_queue_depth", recorder=metrics.recorder)
    depth.series().set(-3)
    metrics.call_ended("inbound")  # a call that started in another process: -1 here
    for _ in range(FLUSHES):
        assert metrics.flush()
    receiver.wait_for(lambda _: sum(b"sip_queue_depth" in d for d in receiver.datagrams()) >= FLUSHES, timeout=5)
    levels = folded(name, receiver)
    assert levels[_key("sip_queue_depth")] == -3
    assert levels[_key(sm.METRIC_ACTIVE_CALLS, direction="inbound")] == -1


def test_the_agent_gets_a_signed_level_alone(receiver, make_metrics):
    """The Agent reads a level: no `0|g` before it (one line per flush)."""
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    sm.Gauge("sip_queue_depth", recorder=metrics.recorder).series().set(-3)
    assert metrics.flush()
    receiver.wait_for(lambda _: gauge_lines(receiver), timeout=5)
    assert gauge_lines(receiver) == ["sip_queue_depth:-3|g"]


def test_etsy_keeps_a_level_below_zero(statsd_daemon, make_metrics):
    metrics = make_metrics(receiver="etsy", host="127.0.0.1", port=statsd_daemon.port, flush_interval=3600)
    sm.Gauge("sip_queue_depth", recorder=metrics.recorder).series().set(-3)
    metrics.call_ended("inbound")
    for _ in range(FLUSHES):
        assert metrics.flush()
    data = statsd_daemon.read()
    assert data["counters"]["statsd.bad_lines_seen"] == 0
    assert data["gauges"]["sip_queue_depth"] == -3
    assert data["gauges"][f"{sm.METRIC_ACTIVE_CALLS};direction=inbound"] == -1


# One Kamailio-style worker process: its own `kamailio_proc` tag, host delivery, a tick per
# handler. Rank 1 starts every call, rank 2 ends them (Kamailio hands a dialog's requests to
# whichever worker reads them).
WORKER = """
    import sys, sip_statsd
    rank, calls, receiver_name, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    sip_statsd.configure(backend="datadog", receiver=receiver_name, host="127.0.0.1", port=port,
                         delivery="host", flush_interval=3600, constant_tags={"kamailio_proc": rank})
    for _ in range(calls):
        (sip_statsd.call_started if rank == "1" else sip_statsd.call_ended)("inbound")
        sip_statsd.host_tick(True)  # the end of a handler: a full take, every level goes out again
    assert sip_statsd.flush(timeout=10)
"""


@pytest.mark.parametrize("name", ["statsd_exporter", "etsy"])
def test_per_process_levels_add_up_to_the_calls_in_progress(name, receiver, tmp_path):
    """Item 2: a call started in one worker and ended in another leaves 0 in progress, not -410."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    # Host delivery from the start, as a Kamailio pod sets it (a configure() switching the
    # default instance from thread delivery leaves its flusher to end first).
    env = {
        **os.environ,
        "DD_ORIGIN_DETECTION_ENABLED": "false",
        "SIP_STATSD_DELIVERY": "host",
        "SIP_STATSD_HOST": receiver.host,
        "SIP_STATSD_PORT": str(receiver.port),
    }
    for rank in ("1", "2"):
        done = subprocess.run(
            [sys.executable, str(script), rank, "41", name, str(receiver.port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    # Loopback datagrams queue in order: once a datagram sent now is read, every earlier one was.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"sip_h24_sentinel:1|c", (receiver.host, receiver.port))
    assert receiver.wait_for(lambda t: t.count("sip_h24_sentinel") == 1, timeout=10).count("sip_h24_sentinel") == 1
    levels = {labels: v for (metric, labels), v in folded(name, receiver).items() if metric == sm.METRIC_ACTIVE_CALLS}
    assert sorted(levels.values()) == [-41, 41]
    assert sum(levels.values()) == 0
