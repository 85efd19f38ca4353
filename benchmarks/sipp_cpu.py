"""CPU per SIP call in examples/uas.py under sipp's load: sip-statsd off, and sending.

    python benchmarks/sipp_cpu.py [--rounds 5] [--calls 3000] [--rate 600]

Each round starts the example UAS twice, once with `--backend off` and once sending to an
embedded DogStatsD receiver (`--backend datadog`), in alternating order, and drives each
with the same sipp `uac` load (INVITE, 100, 180, 200, ACK, BYE, 200: four helper calls per
call). The UAS's CPU time is read from /proc (schedstat, nanoseconds; clock ticks where the
kernel keeps no schedstat) just before and just after the load, for the whole process and
for sip-statsd's flusher thread on its own. Needs sipp (Debian: sip-tester) and Linux.
The report is printed and saved under benchmarks/results/. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

ROOT = Path(__file__).parent.parent
RESULTS = Path(__file__).parent / "results"
WARM_UP = 50  # calls before the measured load
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def task_cpu_ns(pid: int, tid: int | str) -> float:
    """CPU time of one thread: schedstat's on-CPU nanoseconds, else utime+stime ticks."""
    base = Path(f"/proc/{pid}/task/{tid}")
    try:
        return float((base / "schedstat").read_text().split()[0])
    except FileNotFoundError:
        if not base.exists():
            return 0.0  # the thread has ended
        fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * TICK_NS


def process_cpu_ns(pid: int) -> float:
    return sum(task_cpu_ns(pid, tid) for tid in os.listdir(f"/proc/{pid}/task"))


def json_line(process: subprocess.Popen[str], timeout: float = 15.0) -> dict[str, Any]:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if readable else ""
    if not line:
        process.kill()
        raise RuntimeError("the example UAS printed nothing")
    result: dict[str, Any] = json.loads(line)
    return result


def sipp(calls: int, rate: int) -> list[str]:
    """sipp's built-in uac: INVITE, ACK, BYE with no pause; bounded in calls and time."""
    command = ["sipp", "-sn", "uac", "-s", "answer", "-d", "0", "-m", str(calls), "-r", str(rate), "-l", "2000"]
    return [*command, "-i", "127.0.0.1", "-nostdin", "-timeout", "300s", "-timeout_error"]


def one_run(mode: str, calls: int, rate: int) -> dict[str, float]:
    """One UAS, one sipp load; CPU ns per call for the process and for the flusher thread."""
    with Receiver(keep_datagrams=False, keep_samples=False) as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        command = [sys.executable, str(ROOT / "examples" / "uas.py"), "--backend", mode]
        command += ["--statsd", receiver.address, "--flush-interval", "1"]
        uas = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        try:
            ready = json_line(uas)
            flusher = ready["flusher_native_id"]
            # Warm up: the first flush makes the backend (imports, socket); that is start-up, not per call.
            subprocess.run([*sipp(WARM_UP, rate), str(ready["sip"])], check=True, stdout=subprocess.DEVNULL, timeout=60)
            if mode != "off":
                receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= WARM_UP, timeout=10)
            time.sleep(1.5)  # one more flush interval, in both modes alike
            before = process_cpu_ns(uas.pid), task_cpu_ns(uas.pid, flusher) if flusher else 0.0
            load = [*sipp(calls, rate), str(ready["sip"])]
            subprocess.run(load, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=330)
            after = process_cpu_ns(uas.pid), task_cpu_ns(uas.pid, flusher) if flusher else 0.0
            uas.send_signal(signal.SIGTERM)
            summary = json_line(uas, 30)
            uas.wait(30)
        finally:
            if uas.poll() is None:
                uas.kill()
                uas.wait()
        if mode != "off":  # every INVITE outcome arrived: the load was real and was counted
            key = "sip_invite_result_total"
            totals = receiver.wait_for(lambda t: t.count(key) >= WARM_UP + calls, timeout=10)
            assert totals.count(key) == WARM_UP + calls, (totals.count(key), calls)
        assert summary["invites"] == WARM_UP + calls, summary
    return {"process": (after[0] - before[0]) / calls, "flusher": (after[1] - before[1]) / calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="calls per run")
    parser.add_argument("--rate", type=int, default=600, help="calls per second")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    modes = ("off", "datadog")
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for n in range(args.rounds):
        for mode in modes if n % 2 == 0 else reversed(modes):  # alternate the order: drift hits both
            runs[mode].append(one_run(mode, args.calls, args.rate))
            print(f"round {n + 1} {mode:8} {runs[mode][-1]['process'] / 1000:8.1f} us/call", file=sys.stderr)

    def med(mode: str, part: str) -> float:
        return statistics.median(r[part] for r in runs[mode]) / 1000

    off, on = med("off", "process"), med("datadog", "process")
    lines = [
        f"sip-statsd CPU per SIP call under sipp, {time.strftime('%Y-%m-%d %H:%M')}",
        f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}, {os.cpu_count()} cores; "
        f"sip-statsd {sm.__version__}",
        f"{args.rounds} interleaved rounds x {args.calls} calls at {args.rate} calls/s per run; medians",
        "",
        "examples/uas.py, library                  us CPU/call   (min - max)      flusher us/call",
    ]
    for mode, label in (("off", "backend off"), ("datadog", "datadog backend -> embedded receiver")):
        procs = [r["process"] / 1000 for r in runs[mode]]
        lines.append(
            f"{label:40} {med(mode, 'process'):12.1f}   ({min(procs):.1f} - {max(procs):.1f})"
            f"   {med(mode, 'flusher'):14.3f}"
        )
    paired = [(d["process"] - o["process"]) / 1000 for o, d in zip(runs["off"], runs["datadog"], strict=True)]
    lines += [
        "",
        f"sending minus off, medians: {on - off:+.1f} us per call ({(on - off) / off * 100:+.1f}% of the UAS's CPU);",
        f"per round (same round, both modes): median {statistics.median(paired):+.1f} us, "
        f"range {min(paired):+.1f} to {max(paired):+.1f} us",
        f"the flusher thread alone: {med('datadog', 'flusher'):.3f} us per call sending, "
        f"{med('off', 'flusher'):.3f} us with the backend off",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stem = f"{time.strftime('%Y-%m-%d')}-sipp-cpu-py{sys.version_info[0]}.{sys.version_info[1]}"
        (RESULTS / f"{stem}.txt").write_text(text + "\n")
        (RESULTS / f"{stem}.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
