"""What both examples share: metrics options, the event loop, a clean exit on SIGTERM.

A service configures sip-statsd once at start-up and calls `close()` on the way out, so
the last counts are sent before the process ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import sip_statsd as sm

from sipmsg import Timers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="UDP port to bind (default: a free one)")
    parser.add_argument("--t1-ms", type=float, default=500.0, help="RFC 3261 T1 in ms (default 500)")
    parser.add_argument(
        "--statsd", metavar="HOST:PORT", help="the agent's address (default: from DD_* / localhost:8125)"
    )
    parser.add_argument("--backend", default="datadog", choices=("datadog", "statsd", "off"))
    parser.add_argument(
        "--flavor", choices=("influxdb", "graphite", "plain"), help="tags for --backend statsd (default influxdb)"
    )
    parser.add_argument("--flush-interval", type=float, default=1.0)


def configure_metrics(args: argparse.Namespace) -> None:
    """Once at start-up; with no `--statsd`, the datadog backend reads the DD_* environment."""
    options: dict[str, Any] = {"backend": args.backend, "flush_interval": args.flush_interval}
    if args.flavor:
        options["flavor"] = args.flavor
    if args.statsd:
        host, _, port = args.statsd.rpartition(":")
        options.update(host=host, port=int(port))
    sm.configure(**options)


def timers(args: argparse.Namespace) -> Timers:
    t1 = args.t1_ms / 1000
    return Timers(t1=t1, t2=max(4.0, t1))


def flusher_native_id() -> int | None:
    """The OS thread id of sip-statsd's flusher (for the CPU benchmark), if it runs."""
    return next((t.native_id for t in threading.enumerate() if t.name == "sip-statsd-flusher"), None)


def say(**fields: object) -> None:
    """One JSON line on stdout: how the tests and the benchmark read what the example does."""
    print(json.dumps(fields), flush=True)


def run(main: Callable[[asyncio.Event], Awaitable[dict[str, object]]]) -> None:
    """Run `main(stop)` until it returns (SIGTERM / SIGINT set `stop`), then flush and close
    sip-statsd and print the totals."""

    async def serve() -> dict[str, object]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    summary = asyncio.run(serve())
    stats = sm.stats()  # flushes: what the service counted is on its way to the agent
    sm.close()
    say(**summary, dropped_inputs=sum(stats.dropped_inputs.values()), send_errors=sum(stats.send_errors.values()))
    sys.exit(0)
