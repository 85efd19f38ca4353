"""A session-wide guard: no test sends a datagram to a receiver it did not start.

Imported by conftest.py before the library (importing it installs the guard). It clears the environment a StatsD
client reads (`DD_*`, `DATADOG_*`, `SIP_STATSD_*`: a developer's own agent settings must not
steer the suite) and listens for the whole session in two kinds of places:

- a free loopback port of its own, which `DD_AGENT_HOST` / `DD_DOGSTATSD_PORT` name: "the agent
  the environment names". No program outside the session knows it, so whatever arrives there is
  ours: a test, or a subprocess of one, that sent to the default agent.
- UDP 127.0.0.1:8125 and [::1]:8125, where every client sends when nothing is named. The port is
  shared with the rest of the machine (a service emitting StatsD without an Agent, another
  checkout's suite), so a datagram there counts only when its sender is known to be ours: on
  Linux, its sending socket is open in this session's process or one of its descendants
  (`/proc/net/udp` maps the source port to a socket, `/proc/<pid>/fd` the socket to a process).
  One whose socket is already closed counts when this process sent to that address during the
  test (an audit hook sees every `connect` / `sendto` / `sendmsg` of the session's own process,
  whatever socket it used). Any other is left out and listed in the summary: another program's,
  or a subprocess of ours that cleared the environment, sent to 8125 and exited before the
  test ended (it cannot be told apart from another program's).

Whatever counts is attributed to the test that was running (or had just run), and the session
fails at its end, naming them. `SIP_STATSD_TEST_STRAY_PORT` moves the fixed port (the guard's own
tests use it); `SIP_STATSD_TEST_NO_GUARD=1` turns it off. (No reader thread looks sooner: a thread
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
_LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost", "", "0.0.0.0", "::")
_SENDS = ("socket.connect", "socket.sendto", "socket.sendmsg")
_MAX_UNKNOWN = 20  # shared-port datagrams of unknown senders listed in the summary


class StrayGuard:
    """UDP sockets that should never receive anything during the session."""

    def __init__(self, fixed_port: int) -> None:
        self.sockets: list[tuple[str, socket.socket]] = []
        self.unavailable: list[str] = []
        self.arrived: list[tuple[str, str, bytes]] = []
        self.others: set[str] = set()  # processes outside the session that sent to the shared port
        self.unknown: list[str] = []  # the first shared-port datagrams whose sender was gone when read
        self.unknown_count = 0
        self.current = "(collection)"
        self.sent_shared: set[str] = set()  # tests during which this process sent to the shared port
        self.fixed_port = fixed_port
        for family, host in _LOOPBACKS:
            self._bind(family, host, fixed_port)
        self.shared = len(self.sockets)  # the first `shared` sockets are on the shared port
        # The environment's agent: a port nobody outside the session knows.
        self.env_port = self._bind(socket.AF_INET, "127.0.0.1", 0)

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
        for index, (where, sock) in enumerate(self.sockets):
            while True:
                try:
                    data, sender = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                if index < self.shared:  # the machine's port: ours only if the sender is known to be
                    owner = _owner(sender[1])
                    if owner is None and self.current not in self.sent_shared:
                        self.unknown_count += 1
                        if len(self.unknown) < _MAX_UNKNOWN:
                            self.unknown.append(f"from port {sender[1]}: {data[:60]!r}")
                        continue
                    if owner is not None and not _ours(owner):
                        self.others.add(f"pid {owner} ({_command(owner)})")
                        continue
                self.arrived.append((self.current, f"{where} from port {sender[1]}", data))

    def audit(self, event: str, args: tuple[object, ...]) -> None:
        """An audit hook: note that this process sent to (or connected to) the shared port."""
        if event in _SENDS and len(args) > 1:
            address = args[1]
            if (
                isinstance(address, tuple)
                and len(address) >= 2
                and address[1] == self.fixed_port
                and address[0] in _LOOPBACK_NAMES
            ):
                self.sent_shared.add(self.current)

    def close(self) -> None:
        for _, sock in self.sockets:
            sock.close()

    def environment(self) -> dict[str, str]:
        """The session's agent: the guard's own port."""
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


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _GUARD and event.startswith("socket."):
        _GUARD[0].audit(event, args)


def install() -> None:
    """Bind and point the environment at the guard, once, before the library is imported.

    The library's default instance reads the environment when it is made (at import), so
    conftest.py calls this before its own imports.
    """
    if _GUARD or os.environ.get("SIP_STATSD_TEST_NO_GUARD"):
        return
    guard = StrayGuard(int(os.environ.get("SIP_STATSD_TEST_STRAY_PORT", DEFAULT_PORT)))
    _GUARD.append(guard)
    sys.addaudithook(_audit)
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
    if _GUARD and _GUARD[0].unknown:
        unknown = _GUARD[0].unknown
        terminalreporter.line(
            f"stray-datagram guard: left out {_GUARD[0].unknown_count} datagram(s) to the shared port from senders "
            f"already gone, not this process: {unknown[:3]}"
        )
    report = config.stash.get(_REPORT, None)
    if report:
        terminalreporter.section("stray datagrams", red=True)
        terminalreporter.line(report)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _GUARD:
        _GUARD.pop().close()
