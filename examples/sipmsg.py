"""Just enough SIP over UDP for the examples: parse, build, retransmit. Not a SIP stack.

The examples (`uas.py`, `uac.py`) use this to show where each sip-statsd helper goes in a
call flow. It parses what sipp and common phones send, builds requests and responses, and
runs RFC 3261's UDP retransmission timers (A/B, E/F, G/H and the 2xx retransmission of
section 13.3.1.4) with a configurable T1 so tests need not wait 32 seconds for a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

# RFC 3261 compact header forms, and the spelling we write.
_COMPACT = {
    "i": "call-id",
    "v": "via",
    "f": "from",
    "t": "to",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}
_SPELLING = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "min-se": "Min-SE"}


def _spell(name: str) -> str:
    return _SPELLING.get(name, "-".join(part.capitalize() for part in name.split("-")))


@dataclass
class Message:
    """A parsed request or response: `method` is set for a request, `code` for a response."""

    method: str = ""
    uri: str = ""
    code: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value), in order
    body: bytes = b""

    def header(self, name: str) -> str:
        """The first value of header `name` (any case), or ""."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), "")

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def call_id(self) -> str:
        return self.header("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.header("cseq").partition(" ")
        return int(number), method.strip()

    @property
    def branch(self) -> str:
        return param(self.header("via"), "branch")

    @property
    def to_tag(self) -> str:
        return param(self.header("to"), "tag")

    @property
    def user(self) -> str:
        """The request-URI's user part: `busy` in `sip:busy@host`."""
        rest = self.uri.split(":", 1)[-1]
        return rest.split("@", 1)[0] if "@" in rest else ""


def param(value: str, name: str) -> str:
    """A `;name=value` parameter of a header value, or ""."""
    for part in value.split(";")[1:]:
        key, _, v = part.strip().partition("=")
        if key.lower() == name:
            return v.strip()
    return ""


def parse(data: bytes) -> Message | None:
    """A message, or None for anything that is not one (never raises: the network sends junk)."""
    try:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8").split("\r\n")
        first = lines[0].split(" ", 2)
        msg = Message(body=body)
        if first[0] == "SIP/2.0":
            msg.code, msg.reason = int(first[1]), first[2] if len(first) > 2 else ""
        elif len(first) == 3 and first[2] == "SIP/2.0":
            msg.method, msg.uri = first[0], first[1]
        else:
            return None
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and msg.headers:  # folded continuation line
                name, value = msg.headers[-1]
                msg.headers[-1] = (name, value + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            msg.headers.append((_COMPACT.get(name, name), value.strip()))
        msg.cseq  # noqa: B018 - a message without a numeric CSeq is not one we can match
        if not msg.call_id:
            return None
        return msg
    except (UnicodeDecodeError, ValueError, IndexError):
        return None


def build(first_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [first_line, *(f"{_spell(k)}: {v}" for k, v in headers), f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


_REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    302: "Moved Temporarily",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    501: "Not Implemented",
    603: "Decline",
}


def response(
    request: Message, code: int, *, to_tag: str = "", extra: list[tuple[str, str]] | None = None, body: bytes = b""
) -> bytes:
    """A response to `request`: its Via, From, Call-ID and CSeq copied, a To tag added if given."""
    to = request.header("to")
    if to_tag and not param(to, "tag"):
        to += f";tag={to_tag}"
    headers = [("via", v) for v in request.all("via")]
    headers += [
        ("from", request.header("from")),
        ("to", to),
        ("call-id", request.call_id),
        ("cseq", request.header("cseq")),
        *(extra or []),
    ]
    return build(f"SIP/2.0 {code} {_REASONS.get(code, 'Unknown')}", headers, body)


def new_tag() -> str:
    return secrets.token_hex(4)


_branches = itertools.count(1)


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie first)."""
    return f"z9hG4bK{secrets.token_hex(4)}{next(_branches)}"


def sdp(host: str, port: int) -> bytes:
    """An offer or answer with one PCMU stream; the examples carry no media."""
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


@dataclass
class Rtcp:
    """What RTCP reports tell about a call's media, for observe_call_qos at the call's end.

    The examples carry no media, so these stay None, and None means "no data": sip-statsd
    records nothing rather than a zero that would drag the distributions down.
    """

    rtt_ms: float | None = None
    jitter_ms: float | None = None
    loss_fraction: float | None = None
    mos: float | None = None


# RFC 6076 section 4.2 (SRD): the failure responses are 4xx, 5xx and 6xx, "excluding 401,
# 402, and 407 non-failure challenge response codes"; a challenge is answered by a new INVITE.
NOT_A_SETUP_FAILURE = frozenset({401, 402, 407})


def setup_delay_success(code: int) -> bool | None:
    """What an INVITE's first response other than 100 makes of its session request delay:
    True (a success SRD) for 101-199 and 2xx, False (a failure SRD) for 4xx-6xx but the
    challenges, None (no SRD) for 3xx, whose redirected INVITE is a new attempt, and challenges."""
    if 100 < code < 300:
        return True
    if code >= 400 and code not in NOT_A_SETUP_FAILURE:
        return False
    return None


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer values in seconds; T1 is configurable (tests use a small one)."""

    t1: float = 0.5
    t2: float = 4.0

    @property
    def give_up(self) -> float:
        """64*T1: Timers B, F, H and the end of a 2xx's retransmissions."""
        return 64 * self.t1


class Retransmit:
    """Send `data` now, again at T1, 2*T1, ... (capped at T2 unless `cap` is False) until
    `stop()`; after 64*T1 call `on_give_up` once. One object per transaction (or per 2xx)."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        data: bytes,
        timers: Timers,
        on_give_up: Callable[[], None],
        *,
        cap: bool = True,
    ) -> None:
        self._send, self.data, self._timers, self._cap = send, data, timers, cap
        loop = asyncio.get_running_loop()
        self._interval = timers.t1
        self._resend: asyncio.TimerHandle | None = loop.call_later(self._interval, self._again)
        self._give_up = loop.call_later(timers.give_up, self._expire, on_give_up)
        send(data)

    def _again(self) -> None:
        self._send(self.data)
        self._interval = min(self._interval * 2, self._timers.t2) if self._cap else self._interval * 2
        self._resend = asyncio.get_running_loop().call_later(self._interval, self._again)

    def _expire(self, on_give_up: Callable[[], None]) -> None:
        self.stop()
        on_give_up()

    def stop(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None
        self._give_up.cancel()
