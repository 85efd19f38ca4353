"""CPU per call of Sippy's B2BUA under sipp, with and without `sip_statsd.integrations.sippy`.

    python benchmarks/sippy_cpu.py [--rounds 5] [--calls 500] [--rate 50]

Each round starts examples/sippy_b2bua.py twice, in alternating order: once with Sippy's own
`UA` (`--plain`: no metrics at all) and once with `MeteredUA` sending to an embedded DogStatsD
receiver, and drives each with the same load: sipp's built-in `uac` (INVITE, 100, 180, 200,
ACK, BYE, 200) to the B2BUA, which calls a sipp callee that answers (tests/sipp/uas_answer.xml).
Per call the metered B2BUA makes some fourteen helper calls over its two legs. Its CPU time is
read from /proc (schedstat) just before and just after the load. Needs sipp (Debian:
sip-tester), Sippy (`pip install "sip-statsd[sippy]"`) and Linux. The report is printed and
saved under benchmarks/results/. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

from sipp_cpu import RESULTS, ROOT, json_line, process_cpu_ns

WARM_UP = 50


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sipp(*args: str) -> list[str]:
    return ["sipp", "-i", "127.0.0.1", "-nostdin", "-timeout", "120s", "-timeout_error", *args]


def one_run(mode: str, calls: int, rate: int, workdir: Path) -> float:
    """One B2BUA and its callee under one sipp load: the B2BUA's CPU ns per call."""
    scenario = workdir / "uas_answer.xml"
    scenario.write_text((ROOT / "tests" / "sipp" / "uas_answer.xml").read_text().replace("@LOST@", "0"))
    callee_port, b2bua_port = free_port(), free_port()
    with Receiver(keep_datagrams=False, keep_samples=False) as receiver:
        callee = subprocess.Popen(
            sipp("-sf", str(scenario), "-p", str(callee_port), "-m", str(WARM_UP + calls)),
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        command = [sys.executable, str(ROOT / "examples" / "sippy_b2bua.py"), "--port", str(b2bua_port)]
        command += ["--next-hop", f"127.0.0.1:{callee_port}", "--statsd", receiver.address, "--flush-interval", "1"]
        if mode == "plain":
            command.append("--plain")
        b2bua = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            ready = json_line(b2bua)
            target = str(ready["sip"])
            caller = ("-sn", "uac", "-s", "answer", "-d", "0", "-r", str(rate), "-l", "2000", target)
            subprocess.run(sipp(*caller, "-m", str(WARM_UP)), check=True, cwd=workdir, stdout=subprocess.DEVNULL)
            if mode != "plain":
                receiver.wait_for(lambda t: t.count("sip_invite_result_total") >= 2 * WARM_UP, timeout=10)
            time.sleep(1.5)  # one more flush interval, in both modes alike
            before = process_cpu_ns(b2bua.pid)
            subprocess.run(sipp(*caller, "-m", str(calls)), check=True, cwd=workdir, stdout=subprocess.DEVNULL)
            after = process_cpu_ns(b2bua.pid)
            callee.wait(60)
            b2bua.terminate()
            summary = json_line(b2bua, 30)
            b2bua.wait(30)
        finally:
            for process in (b2bua, callee):
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert summary["invites"] == WARM_UP + calls, summary
        if mode != "plain":  # both legs of every call arrived: the load was real and was counted
            key = "sip_invite_result_total"
            totals = receiver.wait_for(lambda t: t.count(key) >= 2 * (WARM_UP + calls), timeout=10)
            assert totals.count(key) == 2 * (WARM_UP + calls), totals.count(key)
    return (after - before) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500, help="calls per run")
    parser.add_argument("--rate", type=int, default=50, help="calls per second")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    modes = ("plain", "metered")
    runs: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for mode in modes if n % 2 == 0 else reversed(modes):  # alternate the order: drift hits both
                runs[mode].append(one_run(mode, args.calls, args.rate, Path(tmp)) / 1000)
                print(f"round {n + 1} {mode:8} {runs[mode][-1]:8.1f} us/call", file=sys.stderr)
    plain, metered = statistics.median(runs["plain"]), statistics.median(runs["metered"])
    paired = [m - p for p, m in zip(runs["plain"], runs["metered"], strict=True)]
    lines = [
        f"Sippy B2BUA CPU per call under sipp, with and without sip-statsd, {time.strftime('%Y-%m-%d %H:%M')}",
        f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}, {os.cpu_count()} cores; "
        f"sip-statsd {sm.__version__}",
        f"{args.rounds} interleaved rounds x {args.calls} calls at {args.rate} calls/s per run; medians",
        "",
        "examples/sippy_b2bua.py                      us CPU/call   (min - max)",
        f"{'Sippy UA (no metrics)':44} {plain:12.1f}   ({min(runs['plain']):.1f} - {max(runs['plain']):.1f})",
        f"{'MeteredUA, datadog backend -> receiver':44} {metered:12.1f}   "
        f"({min(runs['metered']):.1f} - {max(runs['metered']):.1f})",
        "",
        f"metered minus plain, medians: {metered - plain:+.1f} us per call ({(metered - plain) / plain * 100:+.1f}%);",
        f"per round: median {statistics.median(paired):+.1f} us, range {min(paired):+.1f} to {max(paired):+.1f} us",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        name = f"{time.strftime('%Y-%m-%d')}-sippy-cpu-py{sys.version_info[0]}.{sys.version_info[1]}.txt"
        (RESULTS / name).write_text(text + "\n")
        print(f"saved to {RESULTS / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
