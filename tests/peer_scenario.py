"""A fixed mix of every helper that exists without peers, for the byte-for-byte wire check.

`tests/golden/no_peers_*.txt` hold the lines the release before peers sent for it (made
with `python tests/peer_scenario.py OUT BACKEND [FLAVOR]` on that release); an instance
without peers must send exactly them, with or without `peer=` passed to the helpers.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

CODES = (100, 180, 200, 302, 401, 404, 408, 480, 486, 487, 499, 503, 600, 603, 699)
METHODS = ("REGISTER", "OPTIONS", "BYE", "MESSAGE", "KEEPALIVE")


def drive(metrics: Any, peer_kw: bool, seed: int = 27) -> None:
    """The mix; with `peer_kw`, every helper that takes `peer` gets one (a no-op without peers)."""
    rng = random.Random(seed)
    peer = {"peer": "carrier-a"} if peer_kw else {}
    for i in range(400):
        d = rng.choice(("inbound", "outbound"))
        code = rng.choice(CODES)
        metrics.invite_result(d, code, **peer)
        metrics.request_result(d, rng.choice(METHODS), rng.choice(CODES), **peer)
        metrics.observe_setup_delay(d, float(rng.randrange(0, 3000)), code < 300, **peer)
        if i % 7 == 0:
            metrics.transaction_timeout(rng.choice(("INVITE", "BYE", "NOPE")), **peer)
        if code == 200:
            metrics.call_started(d, **peer)
        if code == 487:
            metrics.call_ended(d, float(rng.randrange(0, 600)), **peer)
        if i % 5 == 0:
            metrics.observe_call_qos(
                rtt_ms=float(rng.randrange(1, 300)),
                jitter_ms=float(rng.randrange(0, 40)),
                loss_fraction=rng.choice((0.0, 0.01, 0.2)),
                mos_estimate=rng.choice((None, 4.4, 3.2, 1.5)),
                **peer,
            )
        if i % 11 == 0:
            metrics.bye(d, "remote", "normal")
            metrics.stir_verify(rng.choice(("verified", "failed")))


def lines(receiver: Receiver) -> list[str]:
    """Every line the receiver got, sorted (one flush: the order of lines is not the contract)."""
    return sorted(line for data in receiver.datagrams() for line in data.decode().splitlines() if line)


def record(backend: str, flavor: str | None, peer_kw: bool, peers: Any = None) -> list[str]:
    """The lines of the mix; `backend` is `datadog`, `statsd` (with `flavor`) or `receiver=NAME`."""
    with Receiver() as receiver:
        options: dict[str, Any] = {"host": receiver.host, "port": receiver.port}
        if backend.startswith("receiver="):
            options["receiver"] = backend.partition("=")[2]
        else:
            options["backend"] = backend
        if flavor:
            options["flavor"] = flavor
        if peers is not None:
            options["peers"] = peers
        metrics = sm.SipMetrics(flush_interval=3600, **options)
        try:
            drive(metrics, peer_kw)
            assert metrics.flush(10)
            sent = metrics.stats().lines_sent  # its own flush sends the gauges' levels again
            totals = receiver.wait_for(lambda t: t.lines >= sent, 10)
            assert totals.lines == sent, (totals.lines, sent)
            return lines(receiver)
        finally:
            metrics.close(5)


if __name__ == "__main__":  # on the release before peers: write the golden file
    out, backend, *flavor = sys.argv[1:]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(record(backend, flavor[0] if flavor else None, peer_kw=False)) + "\n")
