"""A session-wide guard: no test sends a datagram to a receiver it did not start.

Imported by conftest.py before the library (importing it installs the guard). It clears the environment a StatsD
client reads (`DD_*`, `DATADOG_*`, `SIP_STATSD_*`: a developer's own agent settings must not
steer the suite) and, for the whole session, listens where every client sends by default:
UDP 127.0.0.1:8125 and [::1]:8125. Whatever arrives there is attributed to the test that was
running (or had just run), and the session fails at its end, naming them.

If 8125 is taken (an agent runs on this machine), the guard says so in the header and points
`DD_AGENT_HOST` / `DD_DOGSTATSD_PORT` at a port of its own instead, which still catches a test
or a subprocess that sends "to the agent the environment names". `SIP_STATSD_TEST_STRAY_PORT`
moves the fixed port (the guard's own test uses it); `SIP_STATSD_TEST_NO_GUARD=1` turns it off.
On a shared machine another process may send to 8125 during the run (another checkout's suite,
a script): on Linux, a datagram whose sending socket is still open in a process that is not
this session or one of its children is left out (and listed in the summary); one whose socket
is already closed counts, with the sender's port shown. (No reader thread looks sooner: a thread
of the session's own would make every in-process fork warn on Python 3.12+.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_protocol",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
]

CLEARED = ("DD_", "DATADOG_", "SIP_STATSD_")  # what a StatsD client or this library reads
KEPT = "SIP_STATSD_TEST_"  # the guard's own switches
DEFAULT_PORT = 8125


_LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))


class StrayGuard:
    """UDP sockets that should never receive anything during the session."""

    def __init__(self, fixed_port: int) -> None:
        self.sockets: list[tuple[str, socket.socket]] = []
        self.unavailable: list[str] = []
        self.arrived: list[tuple[str, str, bytes]] = []
        self.others: set[str] = set()  # processes outside the session that sent here
        self.current = "(collection)"
        bound = [self._bind(family, host, fixed_port) for family, host in _LOOPBACKS]
        # 8125 taken on IPv4: the environment's agent is a port of ours instead.
        self.env_port = 0 if bound[0] else self._bind(socket.AF_INET, "127.0.0.1", 0)

    def _bind(self, family: int, host: str, port: int) -> int:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            self.unavailable.append(f"{host}:{port} ({error.strerror})")
            return 0
        sock.setblocking(False)
        bound = int(sock.getsockname()[1])
        self.sockets.append((f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}", sock))
        return bound

    def drain(self) -> None:
        """Attribute every datagram waiting on a guard socket to the current test."""
        for where, sock in self.sockets:
            while True:
                try:
                    data, sender = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                owner = _owner(sender[1])
                if owner is not None and not _ours(owner):
                    self.others.add(f"pid {owner} ({_command(owner)})")
                    continue
                self.arrived.append((self.current, f"{where} from port {sender[1]}", data))

    def close(self) -> None:
        for _, sock in self.sockets:
            sock.close()

    def environment(self) -> dict[str, str]:
        """The session's agent when 8125 could not be had: the guard's own port."""
        if not self.env_port:
            return {}
        return {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(self.env_port)}

    def report(self) -> str:
        lines = [f"{len(self.arrived)} datagram(s) reached a receiver no test started:"]
        lines += [f"  during or after {test}: to {where}: {data[:100]!r}" for test, where, data in self.arrived[:50]]
        return "\n".join(lines)


def _owner(port: int) -> int | None:
    """The pid whose UDP socket is bound to local `port`, or None (closed, or no /proc)."""
    inode = ""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inode = fields[9]
                break
        if inode:
            break
    if inode in ("", "0"):
        return None
    wanted = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) == wanted for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
    return None


def _ours(pid: int) -> bool:
    """This process or one of its descendants."""
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent
    return False


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


_GUARD: list[StrayGuard] = []


def install() -> None:
    """Bind and point the environment at the guard, once, before the library is imported.

    The library's default instance reads the environment when it is made (at import), so
    conftest.py calls this before its own imports.
    """
    if _GUARD or os.environ.get("SIP_STATSD_TEST_NO_GUARD"):
        return
    guard = StrayGuard(int(os.environ.get("SIP_STATSD_TEST_STRAY_PORT", DEFAULT_PORT)))
    _GUARD.append(guard)
    for name in [n for n in os.environ if n.startswith(CLEARED) and not n.startswith(KEPT)]:
        del os.environ[name]
    os.environ.update(guard.environment())


install()


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if _GUARD:
        _GUARD[0].drain()
        _GUARD[0].current = item.nodeid
    try:
        return (yield)
    finally:
        if _GUARD:
            _GUARD[0].drain()


def pytest_report_header() -> list[str]:
    if not _GUARD:
        return ["stray-datagram guard: off (SIP_STATSD_TEST_NO_GUARD)"]
    guard = _GUARD[0]
    listening = ", ".join(where for where, _ in guard.sockets)
    lines = [f"stray-datagram guard: listening on {listening}"]
    if guard.unavailable:
        lines.append(f"stray-datagram guard: could not bind {', '.join(guard.unavailable)}")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _GUARD:
        return
    guard = _GUARD[0]
    guard.drain()
    guard.current = "(session end)"
    library = sys.modules.get("sip_statsd")
    if library is not None:  # what the process-wide instance still holds goes out now, not after the guard
        library.flush(5.0)
    guard.drain()
    if guard.arrived:
        session.config.stash[_REPORT] = guard.report()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_REPORT = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if _GUARD and _GUARD[0].others:
        terminalreporter.line(f"stray-datagram guard: left out datagrams of {sorted(_GUARD[0].others)}")
    report = config.stash.get(_REPORT, None)
    if report:
        terminalreporter.section("stray datagrams", red=True)
        terminalreporter.line(report)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _GUARD:
        _GUARD.pop().close()
