"""sipp (Debian's `sip-tester`) against the examples, and sipp's own counts read back.

An example runs as a subprocess on 127.0.0.1 and prints one JSON line when it listens and
one when it exits (after sip-statsd's last flush). sipp runs bounded in calls (`-m`) and
time (`-timeout`, `-timeout_error`) and writes its per-message counts (`-trace_counts`) and
call statistics (`-trace_stat`) as CSV files, which the tests compare with what arrived.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).parent / "sipp"
EXAMPLES = Path(__file__).parent.parent / "examples"
T1_MS = 20  # RFC 3261 T1 for the examples under test: every 64*T1 timeout is 1.28 s


def require_sipp_or_skip() -> str | None:
    """None when sipp is usable; else the reason to skip (never in CI, where it must run)."""
    if shutil.which("sipp") is not None:
        return None
    if os.environ.get("CI"):
        raise RuntimeError("sipp (Debian package sip-tester) is required in CI for the example tests")
    return "sipp not installed (apt-get install sip-tester): the example tests need it"


@dataclass
class SippRun:
    returncode: int
    counts: dict[str, int]  # -trace_counts, last row: "4_200_Recv" → n
    stats: dict[str, str]  # -trace_stat, last row: "SuccessfulCall(C)" → "10"
    log: str

    def messages(self, message: str, column: str = "Recv") -> list[int]:
        """One count per scenario step for `message` (`200`, `INVITE`, ...), in scenario order."""
        return [n for key, n in self.counts.items() if key.split("_", 1)[1] == f"{message}_{column}"]

    def calls(self, kind: str) -> int:
        """`SuccessfulCall` or `FailedCall`, cumulated."""
        return int(self.stats[f"{kind}(C)"])


def _last_row(path: Path) -> dict[str, str]:
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    header = rows[0].rstrip(";").split(";")
    return dict(zip(header, rows[-1].rstrip(";").split(";"), strict=False))


def scenario(name: str, workdir: Path, **marks: object) -> Path:
    """A scenario from tests/sipp, with its @MARKS@ replaced, written where sipp may leave traces."""
    text = (SCENARIOS / f"{name}.xml").read_text()
    for mark, value in marks.items():
        text = text.replace(f"@{mark.upper()}@", str(value))
    assert not re.search("@[A-Z]+@", text), f"a mark left unset in {name}: {marks}"
    path = workdir / f"{name}.xml"
    path.write_text(text)
    return path


def start_sipp(workdir: Path, *args: str, timeout: int = 20) -> subprocess.Popen[str]:
    """sipp bounded in time; it stops by itself after `-m` calls. Its files go to `workdir`."""
    command = ["sipp", "-i", "127.0.0.1", "-nostdin", "-trace_counts", "-trace_stat", "-stf", "sipp-stat.csv"]
    command += ["-timeout", f"{timeout}s", "-timeout_error", *args]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_sipp(workdir: Path, *args: str) -> SippRun:
    return finish_sipp(start_sipp(workdir, *args), workdir)


def finish_sipp(process: subprocess.Popen[str], workdir: Path) -> SippRun:
    """Wait for sipp's end and read its counts back (the last row of each CSV)."""
    try:
        output, _ = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    counts_files = sorted(workdir.glob("*_counts.csv"), key=lambda p: p.stat().st_mtime)
    counts = {k: int(v) for k, v in _last_row(counts_files[-1]).items() if k[0].isdigit() and v.isdigit()}
    for leftover in counts_files:
        leftover.unlink()
    return SippRun(process.returncode, counts, _last_row(workdir / "sipp-stat.csv"), output[-4000:])


class Example:
    """An example program (uas.py, uac.py) as a subprocess; `stop()` returns its exit summary."""

    def __init__(
        self, workdir: Path, script: str, *args: str, env: dict[str, str] | None = None, t1_ms: float | None = T1_MS
    ) -> None:
        self._stderr = (workdir / f"{script}.stderr").open("w+")
        timers = ["--t1-ms", str(t1_ms)] if t1_ms is not None else []  # None: the stack's own timers
        command = [sys.executable, str(EXAMPLES / script), *timers, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        self.ready: dict[str, Any] = self._line(15.0)
        host, _, port = str(self.ready["sip"]).rpartition(":")
        self.address = f"{host}:{port}"

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if readable else ""
        if not line:
            self.kill()
            raise RuntimeError(f"{self.process.args[1]} printed nothing; stderr: {self.errors()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def errors(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-3000:]

    def wait(self, timeout: float = 20.0) -> dict[str, Any]:
        """The exit summary of a program that ends by itself (uac.py)."""
        summary = self._line(timeout)
        assert self.process.wait(timeout) == 0, self.errors()
        return summary

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        """SIGTERM, as a service manager stops a service; it flushes and exits."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
