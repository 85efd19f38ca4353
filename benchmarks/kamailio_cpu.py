"""Kamailio under sipp: CPU per call with no metrics, with sip-statsd from KEMI, with Kamailio's C statsd module.

    python benchmarks/kamailio_cpu.py [--rounds 3] [--calls 2000] [--rate 400] [--no-micro]

Also the host hook's cost next to invite_result's, and a recording handler's tick with a full
flush against a partial one (`host_tick(True, metrics)`) (timeit, interleaved rounds, best of N).

Each round starts Debian's Kamailio (the stateful proxy of tests/test_kamailio.py, KEMI in
Python) once per variant, in rotating order, and drives it with the same sipp load of answered
calls (INVITE, 200, ACK, BYE, 200 through the proxy to a sipp UAS; no hold). The CPU time of
every Kamailio process (schedstat, nanoseconds, every task) is read just before and just after
the load and again once what the load recorded has arrived at the receiver (so a sender's
last read is in). Variants, in the issue's names:
- `none`: the same script, no metrics, no dialog tracking;
- `dialog`: no metrics, `dlg_manage()` on initial INVITEs (the tracking the integration needs:
  the baseline every metrics variant is compared with);
- `statsd-module`: the integration's events and KEMI logic, sent by Kamailio's C statsd module
  through `KSR.statsd` (a datagram per event);
- `host`: `sip_statsd.integrations.kamailio` with `delivery="host"` configured in child_init
  (one datagram per recording handler, sent by that handler);
- `shared`: the integration's default, `delivery="shared"` from mod_init, with rtimer running
  the sender every second in a process of its own (counted: it is one of Kamailio's processes).
Needs kamailio, kamailio-python3-modules, sipp, and this Python's minor version
equal to Debian's /usr/bin/python3. Saved under benchmarks/results/. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kamailio_harness import RTIMER, Kamailio, require_kamailio_or_skip  # noqa: E402
from sipp_harness import finish_sipp, scenario, start_sipp  # noqa: E402

import sip_statsd as sm  # noqa: E402
from sip_statsd._wire.receiver import Receiver, Totals  # noqa: E402

RESULTS = Path(__file__).parent / "results"
VARIANTS = ("none", "dialog", "statsd-module", "host", "shared")
BASELINE = "dialog"
WARM_UP = 50


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hook_cost(rounds: int, number: int) -> dict[str, float]:
    """ns per call: host_tick() with nothing due, next to invite_result and a bare call."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))

    def bare(direction: str, code: int) -> None:
        pass

    names = {"sm": sm, "bare": bare}
    stmts = {
        "bare function call": "bare('inbound', 200)",
        "invite_result": "sm.invite_result('inbound', 200)",
        "host_tick() (host delivery, nothing due)": "sm.host_tick()",
        "host_tick() (thread delivery)": "sm.host_tick()",
    }
    best = dict.fromkeys(stmts, float("inf"))
    for _ in range(rounds):
        for label, stmt in stmts.items():
            delivery = "thread" if "thread" in label else "host"
            sm.configure(host="127.0.0.1", port=sink.getsockname()[1], delivery=delivery, flush_interval=3600)
            sm.host_tick(True)  # what configure() left is sent; nothing is due for an hour
            t = timeit.timeit(stmt, globals=names, number=number) / number * 1e9
            best[label] = min(best[label], t)
    sm.configure(backend="off")
    sink.close()
    return best


def tick_cost(rounds: int, number: int) -> dict[str, dict[str, float]]:
    """us per recording handler (its helper calls, then its tick): a full flush against a partial tick."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    invite = (sm.METRIC_INVITE_RESPONSE_TOTAL, sm.METRIC_INVITE_RESULT_TOTAL, sm.METRIC_SESSION_REQUEST_DELAY_MS)
    handlers: dict[str, tuple[Any, tuple[str, ...]]] = {
        "invite_result, observe_setup_delay": (
            lambda: (sm.invite_result("inbound", 200), sm.observe_setup_delay("inbound", 80.0, True)),
            invite,
        ),
        "request_result": (lambda: sm.request_result("inbound", "BYE", 200), (sm.METRIC_REQUEST_RESULT_TOTAL,)),
        "bye": (lambda: sm.bye("inbound", "remote", "user-hangup"), (sm.METRIC_BYE_TOTAL,)),
        "call_ended": (lambda: sm.call_ended("inbound", 1.5), (sm.METRIC_ACTIVE_CALLS, sm.METRIC_CALL_DURATION_S)),
    }
    best = {label: {"full": float("inf"), "partial": float("inf")} for label in handlers}
    sm.configure(host="127.0.0.1", port=sink.getsockname()[1], delivery="host", flush_interval=3600)
    sm.host_tick(True)
    for _ in range(rounds):
        for label, (record, metrics) in handlers.items():
            for kind in ("full", "partial"):

                def handler(record: Any = record, names: Any = metrics if kind == "partial" else None) -> None:
                    record()
                    sm.host_tick(True, names)

                t = timeit.timeit(handler, number=number) / number * 1e6
                best[label][kind] = min(best[label][kind], t)
    sm.configure(backend="off")
    sm.flush()  # what was left goes to the sink (the gauge's level), before it closes
    sink.close()
    return best


def recorded(t: Totals) -> float:
    """Answered INVITEs sip-statsd's variants delivered."""
    return t.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx")


def cpu_ns(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with open(task / "schedstat") as f:
                total += float(f.read().split()[0])
    return total


def one_run(variant: str, calls: int, rate: int, receiver: Receiver) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kamailio-cpu-") as tmp:
        workdir = Path(tmp)
        port, uas_port = free_port(), free_port()
        mode = {"none": "none", "dialog": "none", "statsd-module": "statsd", "host": "child_init", "shared": "mod_init"}
        env = {
            **os.environ,
            "KEMI_CONFIGURE_IN": mode[variant],
            "KEMI_DELIVERY": "shared" if variant == "shared" else "host",
            "KEMI_DIALOG": "1" if variant == "dialog" else "0",
            "KEMI_HOST": receiver.host,
            "KEMI_PORT": str(receiver.port),
        }
        extra = ""
        if variant == "statsd-module":
            extra = 'loadmodule "statsd.so"\n--\n'
            extra += f'modparam("statsd", "ip", "{receiver.host}")\nmodparam("statsd", "port", "{receiver.port}")'
        if variant == "shared":
            extra = RTIMER
        proxy = Kamailio(workdir, port, env, extra=extra)
        uas_dir = workdir / "uas"
        uas_dir.mkdir()
        uas_scenario = str(scenario("kamailio_uas_answer", uas_dir))
        uas = start_sipp(uas_dir, "-sf", uas_scenario, "-p", str(uas_port), timeout=600)
        try:

            def load(n: int, name: str) -> None:
                where = workdir / name
                where.mkdir()
                uac = scenario("kamailio_uac_answer", where, hold_ms=0)
                args = ["-sf", str(uac), "-p", str(free_port()), "-rsa", f"127.0.0.1:{port}", f"127.0.0.1:{uas_port}"]
                run = finish_sipp(start_sipp(where, *args, "-m", str(n), "-r", str(rate), timeout=600), where)
                if run.returncode != 0 or run.calls("FailedCall"):
                    raise RuntimeError(f"sipp failed: {run.log}")

            load(WARM_UP, "warm")
            pids = proxy.pids()
            arrived = receiver.wait_for(lambda t: recorded(t) >= WARM_UP if variant in ("host", "shared") else True)
            before_dgrams, before_calls = arrived.datagrams, recorded(arrived)
            before = cpu_ns(pids)
            load(calls, "load")
            # Until what the load recorded has arrived (or 5 s), then the CPU: no sleep.
            want = before_dgrams + 8 * calls if variant == "statsd-module" else 0

            def complete(t: Totals) -> bool:
                if variant in ("host", "shared"):
                    return recorded(t) >= before_calls + calls
                return t.datagrams >= want

            totals = receiver.wait_for(complete, timeout=5)
            used = cpu_ns(pids) - before
            datagrams = totals.datagrams - before_dgrams
            return {"cpu_us_per_call": used / calls / 1000, "datagrams_per_call": datagrams / calls}
        finally:
            uas.kill()
            uas.communicate()
            log = proxy.log()
            proxy.close()
            if "Traceback" in log or "ERROR:" in log:
                print(log, file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=400)
    parser.add_argument("--hook-number", type=int, default=1_000_000)
    parser.add_argument("--tick-number", type=int, default=5_000)
    parser.add_argument("--no-micro", action="store_true", help="only Kamailio: skip the timeit hook and tick costs")
    args = parser.parse_args()
    skip = require_kamailio_or_skip()
    if skip:
        sys.exit(skip)
    hook = {} if args.no_micro else hook_cost(5, args.hook_number)
    ticks = {} if args.no_micro else tick_cost(5, args.tick_number)
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with Receiver(keep_datagrams=False, keep_samples=False) as receiver:
        for r in range(args.rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for variant in order:
                runs[variant].append(one_run(variant, args.calls, args.rate, receiver))
    cpu = {v: statistics.median(x["cpu_us_per_call"] for x in runs[v]) for v in VARIANTS}
    data: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs (loaded)",
        "args": vars(args),
        "hook_ns": hook,
        "recording_handler_us": ticks,
        "load_average_before": load_before,
        "load_average": os.getloadavg(),
        "runs": runs,
        "cpu_us_per_call_median": cpu,
        "ratio_to_dialog": {v: cpu[v] / cpu[BASELINE] for v in VARIANTS},
        "ratio_to_none": {v: cpu[v] / cpu["none"] for v in VARIANTS},
    }
    lines = ["host hook next to invite_result (ns per call, best of 5 interleaved rounds):"]
    lines += [f"  {label:42} {ns:8.1f}" for label, ns in hook.items()]
    lines.append("a recording handler and its host_tick (us, best of 5 interleaved rounds): full flush, partial tick")
    lines += [f"  {label:42} {t['full']:8.1f} {t['partial']:8.1f}" for label, t in ticks.items()]
    load = f"{args.calls} calls at {args.rate}/s, median of {args.rounds} rounds"
    lines.append(f"Kamailio CPU per answered call ({load}):")
    for v in VARIANTS:
        per = [f"{x['cpu_us_per_call']:.1f}" for x in runs[v]]
        dg = statistics.median(x["datagrams_per_call"] for x in runs[v])
        ratio = cpu[v] / cpu[BASELINE]
        lines.append(f"  {v:14} {cpu[v]:8.1f} us  x{ratio:.2f} of {BASELINE}  rounds {per}  datagrams/call {dg:.2f}")
    lines.append(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    lines.append(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    py = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    stem = RESULTS / f"{time.strftime('%Y-%m-%d')}-kamailio-cpu-{args.calls}at{args.rate}-{py}"
    Path(f"{stem}.txt").write_text(text + "\n")  # not with_suffix: ".11" is no suffix
    Path(f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
