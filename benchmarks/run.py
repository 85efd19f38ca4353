"""sip-statsd against the clients a SIP service would pick instead, in one process.

    python -m pip install -e '.[bench]' && python benchmarks/run.py

Every section runs here, in this order; timings are interleaved rounds, best of N, and
each is also given as a ratio to others measured in the same run (a shared, noisy
machine makes absolute numbers weak). The report is printed and saved under
benchmarks/results/ (text and JSON). Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import socket
import sys
import threading
import time
import timeit
from pathlib import Path
from typing import Any

import prometheus_client
import statsd
from datadog.dogstatsd.base import DogStatsd

import sip_statsd as sm

RESULTS = Path(__file__).parent / "results"
TAGS = ["direction:inbound", "code_class:2xx"]
PEERS = ["carrier-a", "carrier-b", "gw-1", "gw-2", "dispatch-3"]


def sink() -> tuple[socket.socket, int]:
    """A bound UDP socket nobody reads: sends succeed, the kernel drops what overflows."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bare(direction: str, code: int) -> None:
    pass


def hot_path(port: int, rounds: int, number: int) -> dict[str, float]:
    """ns per call of one INVITE outcome (and one QoS record) through each client."""
    sm.configure(backend="off", flush_interval=3600)
    dd_buffered = DogStatsd(port=port, disable_buffering=False, disable_telemetry=True, flush_interval=0)
    dd_aggregating = DogStatsd(port=port, disable_aggregation=False, disable_telemetry=True, flush_interval=0)
    pystatsd = statsd.StatsClient("127.0.0.1", port)
    pipe = pystatsd.pipeline()
    registry = prometheus_client.CollectorRegistry()
    prom = prometheus_client.Counter("sip_invite_result", "x", ["direction", "code_class"], registry=registry)
    prom_child = prom.labels("inbound", "2xx")
    invite_result, transaction_timeout, bye, qos = (
        sm.invite_result,
        sm.transaction_timeout,
        sm.bye,
        sm.observe_call_qos,
    )
    request_result, call_started, call_ended, setup_delay = (
        sm.request_result,
        sm.call_started,
        sm.call_ended,
        sm.observe_setup_delay,
    )
    peered = sm.SipMetrics(backend="off", flush_interval=3600, peers=PEERS)
    names = {
        "peered": peered,
        "peer_invite": peered.invite_result,
        "peer_request": peered.request_result,
        "peer_qos": peered.observe_call_qos,
        "peer_setup_delay": peered.observe_setup_delay,
        "view_invite": peered.peer("carrier-b").invite_result,
        "request_result": request_result,
        "call_started": call_started,
        "call_ended": call_ended,
        "setup_delay": setup_delay,
        "bare": bare,
        "invite_result": invite_result,
        "transaction_timeout": transaction_timeout,
        "bye": bye,
        "qos": qos,
        "dd_buffered": dd_buffered,
        "dd_aggregating": dd_aggregating,
        "pystatsd": pystatsd,
        "pipe": pipe,
        "prom": prom,
        "prom_child": prom_child,
        "TAGS": TAGS,
    }
    # Statements, not lambdas: each case is exactly one call, like the floor.
    cases = {
        "bare function call (floor)": "bare('inbound', 200)",
        "sip_statsd invite_result": "invite_result('inbound', 200)",
        "sip_statsd invite_result, drop": "invite_result('sideways', 200)",
        "sip_statsd transaction_timeout": "transaction_timeout('INVITE')",
        "sip_statsd transaction_timeout, other": "transaction_timeout('FOO')",
        "sip_statsd bye": "bye('inbound', 'remote', 'normal')",
        "sip_statsd observe_call_qos x4": "qos(38.5, 4.2, 0.003, 4.3)",
        "sip_statsd observe_call_qos bad x4": "qos(700.0, 80.0, 0.2, 2.0)",  # every issue, grade unusable
        "sip_statsd request_result": "request_result('inbound', 'REGISTER', 401)",
        "sip_statsd call_started": "call_started('inbound')",
        "sip_statsd call_ended, duration": "call_ended('inbound', 93.5)",
        "sip_statsd observe_setup_delay": "setup_delay('outbound', 182.5, True)",
        # The peer label: on an instance with 5 peers, and peer= on one without.
        "sip_statsd invite_result, peer": "peer_invite('inbound', 200, peer='carrier-b')",
        "sip_statsd invite_result, peer positional": "peer_invite('inbound', 200, 'carrier-b')",
        "sip_statsd invite_result, peer view": "view_invite('inbound', 200)",
        "sip_statsd invite_result, peer other": "peer_invite('inbound', 200, peer='10.0.0.9')",
        "sip_statsd invite_result, peers, none": "peer_invite('inbound', 200)",
        "sip_statsd invite_result, peer= ignored": "invite_result('inbound', 200, peer='carrier-b')",
        "sip_statsd request_result, peer": "peer_request('inbound', 'REGISTER', 401, peer='carrier-b')",
        "sip_statsd observe_setup_delay, peer": "peer_setup_delay('outbound', 182.5, True, peer='carrier-b')",
        "sip_statsd observe_call_qos x4, peer": "peer_qos(38.5, 4.2, 0.003, 4.3, peer='carrier-b')",
        "DogStatsd increment, buffered": "dd_buffered.increment('sip_invite_result_total', tags=TAGS)",
        "DogStatsd increment, aggregating": "dd_aggregating.increment('sip_invite_result_total', tags=TAGS)",
        "DogStatsd distribution, buffered": "dd_buffered.distribution('sip_call_rtt_ms', 38.5)",
        "pystatsd incr (a datagram each)": "pystatsd.incr('sip_invite_result_total.inbound.2xx')",
        "pystatsd pipeline incr": "pipe.incr('sip_invite_result_total.inbound.2xx')",
        "prometheus labels().inc()": "prom.labels('inbound', '2xx').inc()",
        "prometheus bound child inc()": "prom_child.inc()",
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, stmt in cases.items():
            t = timeit.timeit(stmt, globals=names, number=number) / number * 1e9
            best[name] = min(best[name], t)
        sm.flush()
        peered.flush()
        dd_buffered.flush_buffered_metrics()
        dd_aggregating.flush_aggregated_metrics()
        pipe._stats.clear()
    dd_buffered.close_socket()
    dd_aggregating.close_socket()
    pystatsd.close()
    peered.close()
    return best


def contention(threads: int, per_thread: int) -> dict[str, float]:
    """Total invite_result throughput, 1 thread vs `threads` at once (same total events)."""
    sm.configure(backend="memory", flush_interval=0.5)
    total = threads * per_thread

    def run(n_threads: int) -> float:
        barrier = threading.Barrier(n_threads + 1)
        each = total // n_threads

        def work() -> None:
            f = sm.invite_result
            barrier.wait()
            for _ in range(each):
                f("inbound", 200)

        pool = [threading.Thread(target=work) for _ in range(n_threads)]
        for t in pool:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in pool:
            t.join()
        return total / (time.perf_counter() - start)

    from sip_statsd.testing import capture_metrics

    with capture_metrics() as cap:
        one = run(1)
        many = run(threads)
        exact = cap.count(sm.METRIC_INVITE_RESULT_TOTAL) == 2 * total
    return {"one_thread_per_s": one, "many_threads_per_s": many, "ratio": many / one, "exact": float(exact)}


def _drain(sock: socket.socket) -> tuple[int, int]:
    """Datagrams and bytes waiting on `sock`, read until it is empty."""
    datagrams = size = 0
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return datagrams, size
        datagrams += 1
        size += len(data)


def wire(events: int) -> dict[str, float]:
    """Datagrams and bytes for `events` INVITE outcomes over four series, read off a socket."""
    mix = [("inbound", 200), ("outbound", 200), ("inbound", 486), ("outbound", 503)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    sm.configure(host="127.0.0.1", port=port, flush_interval=3600)
    sm.flush()
    _drain(sock)
    for i in range(events):
        sm.invite_result(*mix[i & 3])
    sm.flush()
    ours = _drain(sock)
    dd = DogStatsd(port=port, disable_buffering=False, disable_telemetry=True, flush_interval=0)
    theirs = (0, 0)
    for i in range(events):
        d, code = mix[i & 3]
        dd.increment("sip_invite_result_total", tags=[f"direction:{d}", f"code_class:{code // 100}xx"])
        if i % 10_000 == 9_999:  # read as it goes: the socket's buffer holds a few MB, not all of it
            got = _drain(sock)
            theirs = (theirs[0] + got[0], theirs[1] + got[1])
    dd.flush_buffered_metrics()
    got = _drain(sock)
    theirs = (theirs[0] + got[0], theirs[1] + got[1])
    dd.close_socket()
    sock.close()
    return {"ours_datagrams": ours[0], "ours_bytes": ours[1], "dd_datagrams": theirs[0], "dd_bytes": theirs[1]}


def memory(events: int) -> dict[str, float]:
    """RSS after a warm-up, then after each of two spans of `events` emits (flusher running).

    Flat means the second span adds nothing: no per-event growth, whatever the first
    span's one-time growth (sample lists reaching their working size, allocator pools).
    """
    sm.configure(backend="off", flush_interval=0.2)
    f, q = sm.invite_result, sm.observe_call_qos

    def span(n: int) -> int:
        for i in range(n):
            f("inbound", 200)
            if i % 100 == 0:
                q(40.0, 3.0, 0.01, 4.2)
        sm.flush()
        return rss_kib()

    warm = span(1_000_000)
    first = span(events)
    second = span(events)
    return {"rss_warm_kib": warm, "rss_first_kib": first, "rss_second_kib": second, "events": events}


def task_cpu_s(thread: threading.Thread | None) -> float:
    if thread is None or thread.native_id is None:
        return 0.0
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def flusher_cost(port: int, flushes: int) -> dict[str, float]:
    """CPU per flush with every SIP series dirty: taking the cells, and sending them."""
    results = {}
    for backend in ("off", "datadog"):
        sm.configure(
            backend=backend,
            host="127.0.0.1" if backend == "datadog" else None,
            port=port if backend == "datadog" else None,
            flush_interval=3600,
        )
        recorder = sm.default().recorder
        series = [s for f in sm.catalog.families for s in f.all_series]
        spent = 0.0
        for _ in range(flushes):
            for s in series:
                if isinstance(s, sm.CounterSeries | sm.GaugeSeries):
                    s.inc()
                else:
                    s.observe(1.0)  # type: ignore[attr-defined]
            thread = recorder._schedule.thread
            start = task_cpu_s(thread)
            sm.flush()  # the flusher's CPU, from the kernel's count for its thread
            spent += task_cpu_s(thread) - start
        results[f"{backend}_us_per_flush"] = spent / flushes * 1e6
        results["series"] = len(series)
    return results


def report(data: dict[str, Any]) -> str:
    hp = data["hot_path"]
    floor = hp["bare function call (floor)"]
    ours = hp["sip_statsd invite_result"]
    lines = [
        f"sip-statsd benchmarks, {data['when']}",
        f"Python {data['python']} on {data['machine']}",
        "",
        f"{'client / call':36s} {'ns/call':>9s} {'x floor':>8s} {'x ours':>8s}",
    ]
    for name, ns in hp.items():
        lines.append(f"{name:36s} {ns:9.1f} {ns / floor:8.2f} {ns / ours:8.2f}")
    agg = hp["DogStatsd increment, aggregating"]
    lines += [
        "",
        f"targets (set on Python 3.11; this run is {data['python']}):",
        f"  invite_result vs DogStatsd aggregating increment: {agg / ours:.1f}x faster (want >= 10x)",
        f"  invite_result vs bare function call: {ours / floor:.2f}x (want <= 3.5x)",
        f"  drop path / hit path: {hp['sip_statsd invite_result, drop'] / ours:.2f} (want <= 1.0)",
        f"  invite_result with a peer vs DogStatsd aggregating increment: "
        f"{agg / hp['sip_statsd invite_result, peer']:.1f}x faster (peer=), "
        f"{agg / hp['sip_statsd invite_result, peer view']:.1f}x (a peer view); vs bare call "
        f"{hp['sip_statsd invite_result, peer'] / floor:.2f}x, "
        f"{hp['sip_statsd invite_result, peer view'] / floor:.2f}x",
        f"  observe_call_qos x4 / one DogStatsd.distribution: "
        f"{hp['sip_statsd observe_call_qos x4'] / hp['DogStatsd distribution, buffered']:.2f} (want <= 1.0)",
    ]
    c = data["contention"]
    lines += [
        "",
        f"contention: 1 thread {c['one_thread_per_s']:,.0f}/s, {data['threads']} threads "
        f"{c['many_threads_per_s']:,.0f}/s in total ({c['ratio']:.2f}x), totals exact: {bool(c['exact'])}",
    ]
    w = data["wire"]
    n = data["wire_events"]
    lines.append(
        f"wire, {n:,} INVITE outcomes over 4 series: sip-statsd {w['ours_datagrams']:,} datagram(s), "
        f"{w['ours_bytes']:,} bytes; DogStatsd buffered {w['dd_datagrams']:,} datagrams, {w['dd_bytes']:,} bytes"
    )
    m = data["memory"]
    lines.append(
        f"memory: RSS {m['rss_warm_kib']:,} KiB warm, {m['rss_first_kib']:,} KiB after {m['events']:,} events "
        f"({m['rss_first_kib'] - m['rss_warm_kib']:+,}), {m['rss_second_kib']:,} KiB after {m['events']:,} more "
        f"({m['rss_second_kib'] - m['rss_first_kib']:+,})"
    )
    f = data["flusher"]
    lines.append(
        f"flusher, {f['series']} series dirty: {f['off_us_per_flush']:.0f} us CPU to take them, "
        f"{f['datadog_us_per_flush']:.0f} us to take and send through DogStatsd"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events (a smoke run)")
    args = parser.parse_args()
    rounds, number = (3, 20_000) if args.quick else (15, 50_000)
    threads, per_thread = 8, (50_000 if args.quick else 500_000)
    wire_events = 100_000 if args.quick else 1_000_000
    mem_events = 1_000_000 if args.quick else 10_000_000
    sock, port = sink()
    data: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}, {__import__('os').cpu_count()} cores",
        "threads": threads,
        "wire_events": wire_events,
    }
    data["hot_path"] = hot_path(port, rounds, number)
    data["contention"] = contention(threads, per_thread)
    data["wire"] = wire(wire_events)
    data["memory"] = memory(mem_events)
    data["flusher"] = flusher_cost(port, 200)
    sm.configure(backend="off")
    sock.close()
    text = report(data)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        stem = f"{time.strftime('%Y-%m-%d')}-py{sys.version_info.major}.{sys.version_info.minor}"
        (RESULTS / f"{stem}.txt").write_text(text + "\n")
        (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
