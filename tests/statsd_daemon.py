"""Etsy's StatsD daemon (npm `statsd`, pinned in tests/daemon), started and read by the tests.

Reading is exact: after the library flushes, a sentinel datagram follows on the same
loopback path; once the admin port lists the sentinel, every earlier datagram has been
parsed. SIGTERM then makes the daemon flush once more, and tests/daemon/json-backend.js
writes that flush's counters and timers as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import free_port

HERE = Path(__file__).parent / "daemon"
STATS_JS = HERE / "node_modules" / "statsd" / "stats.js"
SENTINEL = "sip_e2e_sentinel"


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def install() -> None:
    """`npm ci` the pinned daemon once (the lock file is committed)."""
    if STATS_JS.exists():
        return
    subprocess.run(
        ["npm", "ci", "--omit=optional", "--no-audit", "--no-fund"],
        cwd=HERE,
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )


def _admin(port: int, command: str, timeout: float = 5.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(command.encode() + b"\n")
        chunks = []
        conn.settimeout(timeout)
        while True:
            data = conn.recv(65536)
            chunks.append(data)
            done = b"END" in data if command != "health" else b"\n" in data  # health: one line
            if not data or done:
                break
        return b"".join(chunks).decode(errors="replace")


class StatsdDaemon:
    """One daemon on 127.0.0.1, with free ports, for one test."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.admin_port = free_port(socket.SOCK_STREAM)
        self.out = workdir / "flush.json"
        config = {
            "port": self.port,
            "address": "127.0.0.1",
            "mgmt_port": self.admin_port,
            "mgmt_address": "127.0.0.1",
            "flushInterval": 3_600_000,  # counters must not reset mid-test: one flush, at SIGTERM
            "backends": [str(HERE / "json-backend.js")],
            "jsonOut": str(self.out),
            "title": False,
        }
        config_path = workdir / "statsd-config.json"
        config_path.write_text(json.dumps(config))
        self.log = (workdir / "statsd.log").open("w")
        self.process = subprocess.Popen(
            ["node", str(STATS_JS), str(config_path)], stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"statsd exited with {self.process.returncode}; see {self.log.name}")
            try:
                if "up" in _admin(self.admin_port, "health", timeout=1.0):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("statsd did not answer on its admin port")
            time.sleep(0.02)  # polling a starting process's port, not waiting for a thread

    def read(self, timeout: float = 15.0) -> dict[str, Any]:
        """Everything received so far, exactly: stops the daemon and returns its last flush."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(f"{SENTINEL}:1|c".encode(), ("127.0.0.1", self.port))
        deadline = time.monotonic() + timeout
        while SENTINEL not in _admin(self.admin_port, "counters"):
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinel never reached statsd")
            time.sleep(0.02)
        self.stop()
        data: dict[str, Any] = json.loads(self.out.read_text())
        data["counters"].pop(SENTINEL, None)
        return data

    def stop(self) -> None:
        if self.log.closed:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


def require_node_or_skip() -> str | None:
    """None when node is usable; else the reason to skip (never in CI, where it must run)."""
    if node_available():
        return None
    if os.environ.get("CI"):
        raise RuntimeError("node and npm are required in CI for the StatsD daemon tests")
    return "node/npm not installed: the real StatsD daemon tests need them"
