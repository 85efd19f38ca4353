"""The whole cost of one SIP call's metrics, per client, in one process and one run.

    python -m pip install -e '.[bench]' && python benchmarks/call_cost.py

One call's metrics: `invite_result` + `bye` + `observe_call_qos` with four values, the same
calls for every client. For each client: CPU on the caller's thread (the calls), CPU of the
flush (sip-statsd: its flusher thread, read from /proc/self/task/<tid>/schedstat; datadogpy
and pystatsd flush on the caller's thread, so it is included there), and bytes per call on
the wire, read back from a loopback UDP socket. A flush every `--per-flush` calls (a second
of traffic at that many calls per second); interleaved rounds, best of `--rounds`.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import statsd
from datadog.dogstatsd.base import DogStatsd

import sip_statsd as sm

RESULTS = Path(__file__).parent / "results"
Values = list[tuple[float, float, float, float]]


def call_values(calls: int, seed: int = 7) -> Values:
    """RTCP figures as a service has them: ms to a tenth, loss in steps, MOS to a hundredth."""
    rng = random.Random(seed)
    out = []
    for _ in range(calls):
        rtt = round(max(1.0, rng.gauss(60, 25)), 1)
        jitter = round(max(0.1, rng.gauss(4, 2)), 1)
        loss = rng.choice((0.001, 0.002, 0.004, 0.008, 0.012, 0.03))
        out.append((rtt, jitter, loss, round(rng.uniform(3.6, 4.4), 2)))
    return out


def precise_values(calls: int, seed: int = 7) -> Values:
    """The same at full float precision (RTT from 1/65536 s units, MOS straight from estimate_mos)."""
    rng = random.Random(seed)
    out = []
    for _ in range(calls):
        rtt = max(1, round(rng.gauss(60, 25) * 65.536)) / 65.536
        jitter = max(1, round(rng.gauss(4, 2) * 8)) / 8
        loss = rng.randint(1, 8) / 256
        out.append((rtt, jitter, loss, rng.uniform(3.6, 4.4)))
    return out


class Receiver:
    """A loopback UDP socket drained after each flush: bytes and datagrams that arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def drain(self) -> tuple[int, int]:
        size = datagrams = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return size, datagrams
            size += len(data)
            datagrams += 1


def task_cpu_ns(thread: threading.Thread | None) -> int:
    """CPU time of `thread` so far, from the kernel's per-task schedstat."""
    if thread is None or thread.native_id is None:
        return 0
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
        return int(f.read().split()[0])


class Client:
    """One way of sending the metrics: `calls(values)` on the caller, `flush()` after each batch."""

    name: str

    def calls(self, values: Values) -> None:
        raise NotImplementedError

    def flush(self) -> int:
        """Flush; return CPU ns spent on threads other than the caller's."""
        raise NotImplementedError


class SipStatsd(Client):
    def __init__(self, port: int, packed: bool = True, every_digit: bool = False) -> None:
        self.name = "sip_statsd" + ("" if packed else ", packed=False") + (", precision=None" if every_digit else "")
        options: dict[str, Any] = {} if packed else {"packed": False}
        if every_digit:
            options["precision"] = None  # every digit of every sample, as before 4 significant digits
        self.metrics = sm.SipMetrics(host="127.0.0.1", port=port, flush_interval=3600, **options)
        self.metrics.flush()
        self.invite, self.bye, self.qos = self.metrics.invite_result, self.metrics.bye, self.metrics.observe_call_qos

    def calls(self, values: Values) -> None:
        invite, bye, qos = self.invite, self.bye, self.qos
        for rtt, jitter, loss, mos in values:
            invite("inbound", 200)
            bye("inbound", "remote", "normal")
            qos(rtt, jitter, loss, mos)

    def flush(self) -> int:
        recorder = self.metrics.recorder
        schedule = getattr(recorder, "_schedule", None)  # (versions before 0.2 kept it on the recorder)
        thread = schedule.thread if schedule is not None else recorder._thread
        before = task_cpu_ns(thread)
        self.metrics.flush()
        return task_cpu_ns(thread) - before


class Datadogpy(Client):
    """datadogpy doing the same calls itself: aggregation on, buffered, flushed by the caller."""

    name = "datadogpy DogStatsd (aggregating)"

    def __init__(self, port: int) -> None:
        self.client = DogStatsd(
            host="127.0.0.1",
            port=port,
            disable_aggregation=False,
            disable_buffering=False,
            flush_interval=0,
            disable_telemetry=True,
        )

    def calls(self, values: Values) -> None:
        inc, dist = self.client.increment, self.client.distribution
        invite_tags, bye_tags = ["direction:inbound", "code_class:2xx"], ["direction:inbound", "by:remote"]
        for rtt, jitter, loss, mos in values:
            inc("sip_invite_result_total", tags=invite_tags)
            inc("sip_bye_total", tags=[*bye_tags, "reason_class:normal"])
            dist("sip_call_rtt_ms", rtt)
            dist("sip_call_jitter_ms", jitter)
            dist("sip_call_loss_fraction", loss)
            dist("sip_call_mos_estimate", mos)

    def flush(self) -> int:
        self.client.flush_aggregated_metrics()
        self.client.flush_buffered_metrics()
        return 0


class Pystatsd(Client):
    """pystatsd's pipeline (no aggregation: a line per call), sent by the caller at each flush."""

    name = "pystatsd pipeline"

    def __init__(self, port: int) -> None:
        self.client = statsd.StatsClient("127.0.0.1", port, maxudpsize=1432)
        self.pipe = self.client.pipeline()

    def calls(self, values: Values) -> None:
        pipe = self.pipe
        for rtt, jitter, loss, mos in values:
            pipe.incr("sip_invite_result_total,direction=inbound,code_class=2xx")
            pipe.incr("sip_bye_total,direction=inbound,by=remote,reason_class=normal")
            pipe.timing("sip_call_rtt_ms", rtt)
            pipe.timing("sip_call_jitter_ms", jitter)
            pipe.timing("sip_call_loss_fraction", loss)
            pipe.timing("sip_call_mos_estimate", mos)

    def flush(self) -> int:
        self.pipe.send()
        return 0


def measure(client: Client, receiver: Receiver, values: Values, per_flush: int) -> dict[str, float]:
    caller = other = 0
    for start in range(0, len(values), per_flush):
        batch = values[start : start + per_flush]
        t0 = time.thread_time_ns()
        client.calls(batch)
        t1 = time.thread_time_ns()
        other += client.flush()
        caller += time.thread_time_ns() - t1 + (t1 - t0)
        # the flush's sends are on the wire before flush() returns; read them back
    size, datagrams = receiver.drain()
    calls = len(values)
    return {
        "caller_us": caller / calls / 1000,
        "flusher_us": other / calls / 1000,
        "bytes": size / calls,
        "datagrams": datagrams,
    }


def run(rounds: int, calls: int, per_flush: int, values_of: Callable[[int], Values]) -> dict[str, dict[str, float]]:
    values = values_of(calls)
    receiver = Receiver()
    clients: list[Client] = [SipStatsd(receiver.port)]
    if "packed" in sm.Config.__dataclass_fields__:
        clients.append(SipStatsd(receiver.port, packed=False))
    if "precision" in sm.Config.__dataclass_fields__:
        clients.append(SipStatsd(receiver.port, every_digit=True))
    clients += [Datadogpy(receiver.port), Pystatsd(receiver.port)]
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for client in clients:  # interleaved: every client sees the same machine state
            receiver.drain()
            got = measure(client, receiver, values, per_flush)
            got["total_us"] = got["caller_us"] + got["flusher_us"]
            kept = best.get(client.name)
            if kept is None or got["total_us"] < kept["total_us"]:
                best[client.name] = got
    for client in clients:
        if isinstance(client, SipStatsd):
            client.metrics.close()
    return best


def report(data: dict[str, Any]) -> str:
    lines = [
        f"one SIP call's metrics (invite_result + bye + observe_call_qos x4), {data['calls']:,} calls, "
        f"a flush every {data['per_flush']:,} calls, best of {data['rounds']} interleaved rounds",
        f"Python {data['python']}, {data['machine']}",
        "",
    ]
    for title, key in (("values as services have them", "typical"), ("full float precision", "precise")):
        results = data[key]
        ours = results["sip_statsd"]
        lines.append(f"{title}:")
        lines.append(
            f"  {'client':<36} {'caller us':>10} {'flush us':>9} {'total us':>9} {'bytes/call':>11} "
            f"{'x sip_statsd':>13}"
        )
        for name, r in results.items():
            lines.append(
                f"  {name:<36} {r['caller_us']:>10.3f} {r['flusher_us']:>9.3f} {r['total_us']:>9.3f} "
                f"{r['bytes']:>11.1f} {r['total_us'] / ours['total_us']:>13.2f}"
            )
        dd = results["datadogpy DogStatsd (aggregating)"]
        lines.append(
            f"  flusher / helpers: {ours['flusher_us'] / ours['caller_us']:.2f}x (target <= 1.5); "
            f"datadogpy / sip_statsd in total: {dd['total_us'] / ours['total_us']:.1f}x (target >= 5); "
            f"{ours['bytes']:.1f} bytes per call (target <= 30)"
        )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--per-flush", type=int, default=1_000)
    parser.add_argument("--save", action="store_true", help="write the report under benchmarks/results/")
    args = parser.parse_args()
    data: dict[str, Any] = {
        "calls": args.calls,
        "per_flush": args.per_flush,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()}",
    }
    data["typical"] = run(args.rounds, args.calls, args.per_flush, call_values)
    data["precise"] = run(args.rounds, args.calls, args.per_flush, precise_values)
    text = report(data)
    print(text)
    if args.save:
        stem = f"{time.strftime('%Y-%m-%d')}-call-cost-py{sys.version_info[0]}.{sys.version_info[1]}"
        (RESULTS / f"{stem}.txt").write_text(text + "\n")
        (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
