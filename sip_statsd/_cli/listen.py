"""`sip-statsd listen`: the embedded receiver on its own, printing what arrives as the Agent reads it."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import TextIO

from .._wire.receiver import Receiver, Totals, percentile


def render_window(total: Totals, window: Totals, interval: float, address: str, out: TextIO) -> None:
    """One refresh of `listen`: counters with totals and rates, distributions of the window."""
    stamp = time.strftime("%H:%M:%S")
    out.write(
        f"-- {stamp}  {address}  datagrams {total.datagrams:,} (+{window.datagrams:,})  "
        f"lines {total.lines:,} (+{window.lines:,})  malformed {total.malformed_count:,} --\n"
    )
    if not total.lines and not total.malformed:
        out.write("waiting for datagrams...\n\n")
        return
    if total.counts:
        width = max(len("counter"), *(len(k) for k in total.counts))
        out.write(f"{'counter':{width}}  {'total':>12}  {'rate/s':>10}\n")
        for key in sorted(total.counts):
            rate = window.counts.get(key, 0) / interval
            out.write(f"{key:{width}}  {total.counts[key]:>12,.6g}  {rate:>10,.1f}\n")
    if total.gauges:
        width = max(len("gauge (last level)"), *(len(k) for k in total.gauges))
        out.write(f"{'gauge (last level)':{width}}  {'level':>12}\n")
        for key in sorted(total.gauges):
            out.write(f"{key:{width}}  {total.gauges[key]:>12,.6g}\n")
    if window.samples:
        # count: as the Agent counts (a sample sent `|@0.25` stands for 4); sent: the values that arrived
        width = max(len("distribution (this window)"), *(len(k) for k in window.samples))
        out.write(
            f"{'distribution (this window)':{width}}  {'count':>7}  {'sent':>7}  "
            f"{'min':>9}  {'p50':>9}  {'p95':>9}  {'max':>9}\n"
        )
        for key in sorted(window.samples):
            v = window.samples[key]
            row = (min(v), percentile(v, 0.5), percentile(v, 0.95), max(v)) if v else ()
            cells = "  ".join(f"{x:>9.4g}" for x in row)
            out.write(f"{key:{width}}  {window.observed.get(key, 0):>7,.0f}  {len(v):>7,}  {cells}\n")
    _render_others(total, out)
    if window.malformed:
        out.write("malformed (this window, last 5):\n")
        for line, why in window.malformed[-5:]:
            out.write(f"  {line!r}: {why}\n")
    out.write("\n")
    out.flush()


_STATUSES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


def _one_line(text: str) -> str:
    return text.replace("\n", "\\n")


def _render_others(total: Totals, out: TextIO) -> None:
    """Sets (unique members), service checks (last status) and events (count, last text)."""
    rows: list[tuple[str, dict[str, str]]] = [
        ("set (unique members)", {k: f"{len(v):>12,}" for k, v in total.sets.items()}),
        ("service check (last)", {k: f"{_STATUSES[v[0]]:>12}  {_one_line(v[1])}" for k, v in total.checks.items()}),
        ("event", {k: f"{v[0]:>12,}  {_one_line(v[1])}" for k, v in total.events.items()}),
    ]
    for title, table in rows:
        if table:
            width = max(len(title), *(len(k) for k in table))
            out.write(f"{title:{width}}\n")
            for key in sorted(table):
                out.write(f"{key:{width}}  {table[key]}".rstrip() + "\n")
    if total.evicted:
        out.write(
            f"evicted {total.evicted:,} series, oldest first (the latest: {total.last_evicted}); see --max-series\n"
        )


def listen(host: str, port: int, interval: float, out: TextIO, max_series: int = 10_000) -> int:
    try:
        receiver = Receiver(host, port, keep_datagrams=False, keep_samples=False, max_series=max_series)
    except OSError as error:  # socket.gaierror included: a name that does not resolve
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        print(f"sip-statsd listen: cannot listen on {where}: {error.strerror or error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background with SIGINT ignored
        signal.signal(sig, lambda *_: stop.set())
    tty = out.isatty()
    print(f"listening on udp://{receiver.address} (Ctrl-C to stop)", file=out, flush=True)
    try:
        while not stop.wait(interval):
            window = receiver.take_window()
            if tty:  # a refreshed screen
                out.write("\x1b[H\x1b[2J")
            elif not window.datagrams:
                continue  # a log: a new table only when something arrived
            render_window(receiver.totals(), window, interval, receiver.address, out)
    finally:
        receiver.close()
    print("stopped", file=out, flush=True)
    return 0
