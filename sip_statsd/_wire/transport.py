"""The transport: one connected socket, whole datagrams in, every loss classified and counted.

Why our own and not a client's send path: a client that logs its send errors leaves us to
read fault kinds from its log (which a user may silence), and one that reconnects after
every refused datagram asks the resolver again for each (a DNS storm when the agent is
down). Here a fault is classified from the exception where it is raised, and the agent's
name is resolved only when the transport is made, and again at most every
`RECONNECT_INTERVAL` while sends keep failing (so an agent that moved is found again).

Used only on the sending side (the flusher thread): it may block on DNS while made.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

FaultHandler = Callable[[str, BaseException | None, int], None]

# The `kind` label of sip_statsd_send_errors_total.
FAULT_RESOLVE = "resolve"  # the agent's host name does not resolve
FAULT_REFUSED = "refused"  # nothing listens at the address (ICMP port unreachable, no UDS peer)
FAULT_NO_SOCKET = "no_socket"  # the Unix socket path does not exist
FAULT_DROPPED = "dropped"  # the socket would block, its buffer is full, or the datagram (line) too big
FAULT_ENCODE = "encode"  # a line could not be encoded as UTF-8: never sent
FAULT_OTHER = "other"
FAULT_KINDS = (FAULT_RESOLVE, FAULT_REFUSED, FAULT_NO_SOCKET, FAULT_DROPPED, FAULT_ENCODE, FAULT_OTHER)
# The longest line an agent reads whole: the Agent's and most daemons' default read buffer
# (dogstatsd_buffer_size 8192). A longer line is counted as `dropped`, never sent truncated.
MAX_LINE = 8192

# After a failed name resolution, no transport is made again for this long (sends are
# counted as `resolve` faults): a resolver that takes seconds to say no must not hold the flusher.
RESOLVE_BACKOFF = 5.0
# While sends fail, the socket is made again (the name resolved again) at most this often.
RECONNECT_INTERVAL = 5.0
# A Unix socket has no name to resolve: an agent that restarted is looked for again sooner.
UNIX_RECONNECT_INTERVAL = 0.5
# A Unix datagram queue holds few datagrams (net.unix.max_dgram_qlen, often 10): a send waits
# this long for room while the agent reads, once per flush; after one such wait times out, the
# rest of that flush does not wait (what does not fit is counted as `dropped`).
UNIX_SEND_WAIT = 0.05
# A stream (Unix) socket whose peer stops reading must not hold the flusher for long.
STREAM_TIMEOUT = 1.0

# The datagram sizes the datadog client uses by default (its UDP and UDS buffer sizes).
UDP_PAYLOAD = 1432
UDS_PAYLOAD = 8192

_DROPPED_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EMSGSIZE})


def fault_kind(error: BaseException | None) -> str:  # noqa: PLR0911 - one return per kind reads best
    """Classify a send or connect error by its type and errno."""
    if error is None:
        return FAULT_DROPPED
    if isinstance(error, UnicodeError):
        return FAULT_ENCODE
    if isinstance(error, socket.gaierror | socket.herror):
        return FAULT_RESOLVE
    if isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == errno.ENOTCONN:
        return FAULT_REFUSED  # ENOTCONN: a Unix datagram peer that went away
    if isinstance(error, FileNotFoundError):
        return FAULT_NO_SOCKET
    if isinstance(error, BlockingIOError | TimeoutError):
        return FAULT_DROPPED
    if isinstance(error, OSError) and error.errno in _DROPPED_ERRNOS:
        return FAULT_DROPPED
    return FAULT_OTHER


@dataclass(frozen=True)
class Address:
    """Where datagrams go: a UDP host and port, or a Unix socket path.

    `unix` is the kind a Unix socket may be: "unix" (datagram, else stream, as datadogpy's
    `unix://`), "unixgram" or "unixstream".
    """

    host: str | None = None
    port: int | None = None
    socket_path: str | None = None
    unix: str = "unix"

    @property
    def payload(self) -> int:
        return UDS_PAYLOAD if self.socket_path is not None else UDP_PAYLOAD


# What each name looked up last (on the flusher thread), so that a process whose exit finds no
# backend (it closed, or it is a child forked from C) can send without a look-up: a hung
# resolver must not hold the exit. Bounded: one entry per agent host a process named, 16 at most.
_looked_up: dict[str, list[tuple[Any, ...]]] = {}
_LOOKED_UP_MAX = 16
_lookups = True


def looked_up(host: str) -> bool:
    """Whether `host` was looked up before in this process (or in its parent before a fork)."""
    return host in _looked_up


@contextlib.contextmanager
def without_lookups() -> Iterator[None]:
    """Connect a name to the addresses its last look-up gave (the exit path, one thread left)."""
    global _lookups
    _lookups = False
    try:
        yield
    finally:
        _lookups = True


def connect_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket connected to `host:port` (IPv4 first, as the datadog client)."""
    if _lookups or host not in _looked_up:  # (an address literal or localhost, at exit)
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
        if len(_looked_up) < _LOOKED_UP_MAX or host in _looked_up:
            _looked_up[host] = list(infos)
    else:  # the addresses of the last look-up, at this port
        infos = [(*info[:4], (info[4][0], port, *info[4][2:])) for info in _looked_up[host]]
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    last: OSError | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.connect(addr)
            return sock
        except OSError as error:
            sock.close()
            last = error
    raise last or OSError(f"getaddrinfo gave no address for {host}:{port}")


def connect_unix_datagram(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_unix(path: str, kind: str = "unix") -> socket.socket:
    """A Unix socket connected to `path`: datagram, stream, or ("unix") datagram and, if the
    path is a stream socket (EPROTOTYPE), stream, as datadogpy's `_get_uds_socket` tries them."""
    if kind == "unixstream":
        return _connect_unix_stream(path)
    try:
        return connect_unix_datagram(path)
    except OSError as error:
        if kind == "unix" and error.errno == errno.EPROTOTYPE:
            return _connect_unix_stream(path)
        raise


def _connect_unix_stream(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(STREAM_TIMEOUT)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _identity(path: str | None) -> tuple[int, int, int] | None:
    """What a path names now: (device, inode, change time); None for none (or no path).

    An inode alone does not tell a new socket from the old one: ext4 gives a socket bound
    again at the same path the inode just freed. Its change time is its bind's (a coarse
    clock: a few ms), so a restart within one tick is found by the refusal instead.
    """
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_ctime_ns


Connector = Callable[[Address], socket.socket]


def default_connector(address: Address) -> socket.socket:
    if address.socket_path is not None:
        return connect_unix(address.socket_path, address.unix)
    assert address.host is not None
    assert address.port is not None
    return connect_udp(address.host, address.port)


class Transport:
    """A connected socket that sends whole datagrams and reports every loss by kind.

    `send(datagrams)` takes `(payload, values, lines)` triples, where `values` is how many
    metric values the payload carries: faults are counted in values, whatever the kind, so
    a dashboard can add them up. A UDP socket learns that its peer is gone one send late
    (the ICMP error for datagram *n* is raised by send *n + 1*, which itself is not sent),
    so the socket's pending error is read before each send and after the last, and a
    refusal is charged to the datagram that was refused.
    """

    def __init__(self, address: Address, on_fault: FaultHandler, connector: Connector = default_connector) -> None:
        self.address = address
        self._on_fault = on_fault
        self._connector = connector
        self._sock: socket.socket | None = None
        self._stream = False
        self._udp = False
        self._last = (0, 0)  # (values, lines) of the last datagram handed to the kernel
        self._retry_at = 0.0  # monotonic: no reconnect before this
        self._down: tuple[str, BaseException | None] = (FAULT_OTHER, None)
        self._waited = False  # this flush already waited once for room (Unix datagram)
        self._broken = False  # this flush lost its stream: the rest is counted, not tried
        self._inode: tuple[int, int, int] | None = None  # what the Unix path named when connected
        self._refound = False  # this flush already reconnected at once after a refusal (Unix)
        self.lines_sent = 0
        self._connect()  # may raise: the caller counts the batch and backs off

    @property
    def _interval(self) -> float:
        return UNIX_RECONNECT_INTERVAL if self.address.socket_path is not None else RECONNECT_INTERVAL

    def _connect(self) -> None:
        self._retry_at = time.monotonic() + self._interval
        sock = self._connector(self.address)
        self._stream = sock.type == socket.SOCK_STREAM
        self._udp = sock.family in (socket.AF_INET, socket.AF_INET6)
        if self._stream:
            sock.settimeout(STREAM_TIMEOUT)
        elif not self._udp:
            sock.settimeout(UNIX_SEND_WAIT)
        self._sock = sock
        self._last = (0, 0)
        self._inode = _identity(self.address.socket_path)

    def _follow_path(self) -> None:
        """Reconnect at once if the Unix socket path now names another socket (an agent restarted).

        The Agent unlinks and binds its path again when it starts; a socket connected to the
        old one keeps writing into it without an error for as long as its last holder keeps
        it open. One stat per flush notices the new socket (by inode and change time).
        """
        path = self.address.socket_path
        if path is None or self._sock is None:
            return
        now = _identity(path)
        if now is not None and now != self._inode:
            self._retry_at = 0.0
            self._reconnect()

    def _reconnect(self) -> None:
        """Make the socket again (resolving the name again), at most every RECONNECT_INTERVAL."""
        if time.monotonic() < self._retry_at:
            return
        self.close()
        try:
            self._connect()
        except Exception as error:
            self._retry_at = time.monotonic() + self._interval
            self._down = (fault_kind(error), error)

    def _check_refused(self) -> None:
        """Charge a refusal the kernel holds (UDP) to the datagram it was for: the last one."""
        sock = self._sock
        if sock is None or not self._udp or not self._last[0]:
            return
        try:
            pending = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError:
            return
        if pending:
            self._lost_last(OSError(pending, errno.errorcode.get(pending, "socket error")), pending)

    def _lost_last(self, error: BaseException, code: int) -> None:
        (values, lines), self._last = self._last, (0, 0)
        if values:
            self.lines_sent -= lines
            self._on_fault(FAULT_REFUSED if code == errno.ECONNREFUSED else fault_kind(error), error, values)
        self._reconnect()  # an agent that moved is found again, at most every RECONNECT_INTERVAL

    def send(self, datagrams: Iterable[tuple[bytes, int, int]]) -> None:
        """Send each `(payload, values, lines)`; count what is lost. Never raises.

        One flush never waits long: a stream that failed is not tried again in it, and a
        Unix datagram socket waits for room at most once.
        """
        self._waited = self._broken = self._refound = False
        self._follow_path()
        try:
            for payload, values, lines in datagrams:
                if self._broken:
                    self._on_fault(*self._down, values)
                else:
                    self._send_one(payload, values, lines)
            self._check_refused()
        finally:
            if self._waited and self._sock is not None and not self._stream:
                with contextlib.suppress(OSError):
                    self._sock.settimeout(UNIX_SEND_WAIT)  # wait again in the next flush

    def _send_one(self, payload: bytes, values: int, lines: int) -> None:
        for attempt in (1, 2):
            if self._sock is None:
                self._reconnect()
            sock = self._sock
            if sock is None:
                self._on_fault(*self._down, values)
                return
            self._check_refused()
            try:
                if self._stream:
                    sock.sendall(struct.pack("<I", len(payload)) + payload)
                else:
                    sock.send(payload)
            except ConnectionRefusedError as error:
                if attempt == 1 and self._udp:
                    # UDP: the error is the previous datagram's; this one was not sent.
                    self._lost_last(error, errno.ECONNREFUSED)
                    continue
                if attempt == 1 and self._refind():
                    continue  # the agent restarted at the same path: this datagram goes to it
                self._fail(error, values)
                return
            except Exception as error:
                self._fail(error, values)
                return
            self._last = (values, lines)
            self.lines_sent += lines
            return

    def _refind(self) -> bool:
        """A Unix datagram socket refused (its peer closed): connect to what the path names
        now, once per flush, without waiting out the reconnect interval; True if connected."""
        if self.address.socket_path is None or self._stream or self._refound:
            return False
        self._refound = True
        self._retry_at = 0.0
        self._reconnect()
        return self._sock is not None

    def _fail(self, error: BaseException, values: int) -> None:
        kind = fault_kind(error)
        self._last = (0, 0)
        self._on_fault(kind, error, values)
        if self._stream:  # a partial write leaves the stream unusable: a new one, next flush
            self._down, self._broken = (kind, error), True
            self.close()
        elif kind == FAULT_DROPPED:
            if not self._udp and not self._waited and self._sock is not None:
                self._waited = True  # waited once for room: the rest of this flush does not
                with contextlib.suppress(OSError):
                    self._sock.settimeout(0)
        else:
            self._down = (kind, error)
            self._reconnect()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
