"""An asyncio UDP UAS instrumented with sip-statsd: where each helper goes in a call flow.

    python examples/uas.py --port 5060 --statsd 127.0.0.1:8125

The request-URI user picks what happens to an INVITE (`sip:busy@host`):

    busy 486 · unavailable 480 · decline 603 · redirect 302 · noanswer (180, then wait
    for CANCEL → 487, or 480 after `--ring-timeout`) · hangup-N (answer, then BYE after N
    seconds) · anything else: answer (100, 180, 200 with SDP) and wait for the caller's BYE.

Per peer: `--peer NAME=HOST[:PORT]` (repeatable) names the callers sending from an address;
with `SIP_STATSD_PEERS` declaring the same names, a call's series carry its caller's `peer`
(any other source: `other`).

OPTIONS and REGISTER get 200. An INVITE carrying Session-Expires (RFC 4028) shorter than
`--min-se` gets 422; otherwise this UAS is the non-refresher and sends BYE if no refresh
(re-INVITE or UPDATE) arrives in time. Final responses are retransmitted until ACKed
(Timer G / the 2xx rule), retransmitted requests are answered again from a cache and never
counted twice. Every call is inbound: this process never sends an initial INVITE.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import sip_statsd as sm

import runner
from sipmsg import (
    Message,
    Retransmit,
    Rtcp,
    Timers,
    build,
    new_branch,
    new_tag,
    param,
    parse,
    response,
    sdp,
    setup_delay_success,
)

REJECT = {"busy": 486, "unavailable": 480, "decline": 603, "redirect": 302}
DIRECTION = sm.DIRECTION_INBOUND  # every call here began with an INVITE we received
PEERS: dict[str, str] = {}  # "host:port" or "host" of a caller -> its peer name (--peer)


def peer_of(addr: tuple[str, int]) -> str | None:
    """The peer name of a source address, or None (`other` where peers are declared)."""
    return PEERS.get(f"{addr[0]}:{addr[1]}") or PEERS.get(addr[0])


@dataclass
class Call:
    """One inbound INVITE and the dialog it makes. No per-call state goes to sip-statsd."""

    invite: Message
    addr: tuple[str, int]
    tag: str = field(default_factory=new_tag)
    state: str = "early"  # early → answered (2xx sent) → confirmed (ACKed) → ended; or rejected → ended
    last: bytes = b""  # the last response to the INVITE, sent again for a retransmitted INVITE
    final: Retransmit | None = None
    timer: asyncio.TimerHandle | None = None  # hang-up or session expiry
    session_expires: int = 0
    cseq: int = 0  # our requests in this dialog
    rtcp: Rtcp = field(default_factory=Rtcp)
    received: float = field(default_factory=time.monotonic)  # when the INVITE arrived: the SRD's start
    delay_seen: bool = False  # the first response other than 100 went out (RFC 6076 SRD observed)
    answered: float = 0.0  # when our 2xx went out: the call duration's start

    @property
    def peer(self) -> str | None:
        return peer_of(self.addr)


class Uas(asyncio.DatagramProtocol):
    def __init__(self, timers: Timers, min_se: int, ring_timeout: float) -> None:
        self.timers, self.min_se, self.ring_timeout = timers, min_se, ring_timeout
        self.calls: dict[str, Call] = {}
        self.answers: dict[tuple[str, int, str], bytes] = {}  # non-INVITE server transactions
        self.requests: dict[tuple[str, int, str], Retransmit] = {}  # our BYEs
        self.transport: asyncio.DatagramTransport | None = None
        self.invites = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.host, self.port = transport.get_extra_info("sockname")[:2]

    def send_to(self, addr: tuple[str, int]) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(data, addr)

        return send

    def later(self, delay: float, callback: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse(data)
        if msg is None:
            return
        if msg.code:
            self.on_response(msg)
        elif msg.method == "ACK":
            self.on_ack(msg)
        elif msg.method == "INVITE" and not msg.to_tag:
            self.on_invite(msg, addr)
        elif (answer := self.answers.get((msg.call_id, msg.cseq[0], msg.method))) is not None:
            self.send_to(addr)(answer)  # a retransmitted request: answer again, count nothing
        elif msg.method == "CANCEL":
            self.on_cancel(msg, addr)
        elif msg.method == "BYE":
            self.on_bye(msg, addr)
        elif msg.method in ("INVITE", "UPDATE"):
            self.on_refresh(msg, addr)
        elif msg.method == "OPTIONS":
            self.reply(msg, addr, 200, [("allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REGISTER")])
        elif msg.method == "REGISTER":
            self.reply(
                msg, addr, 200, [("contact", msg.header("contact")), ("expires", msg.header("expires") or "3600")]
            )
        else:
            self.reply(msg, addr, 501)

    def reply(
        self,
        request: Message,
        addr: tuple[str, int],
        code: int,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer a request other than an initial INVITE, and keep the answer for its retransmissions
        for 64*T1 (Timer J)."""
        call = self.calls.get(request.call_id)
        data = response(request, code, to_tag=call.tag if call else new_tag(), extra=extra, body=body)
        key = (request.call_id, request.cseq[0], request.method)
        self.answers[key] = data
        self.later(self.timers.give_up, self.answers.pop, key, None)
        self.send_to(addr)(data)
        if request.method != "INVITE":  # a re-INVITE's answer is no outcome (see the README)
            peer = call.peer if call else peer_of(addr)
            sm.request_result(DIRECTION, request.method, code, peer)  # once: retransmissions get `answers`

    # --- the INVITE server transaction --------------------------------------------------

    def on_invite(self, invite: Message, addr: tuple[str, int]) -> None:
        call = self.calls.get(invite.call_id)
        if call is not None and call.invite.cseq == invite.cseq:
            if call.last:
                self.send_to(addr)(call.last)  # a retransmitted INVITE: the last response again
            return
        if call is not None and call.state in ("early", "answered", "confirmed"):
            return  # a second INVITE for a live call without a To tag: not ours to guess
        if call is not None and call.final is not None:
            call.final.stop()  # a retry after our 422 (a new CSeq): the old transaction is done
        self.invites += 1
        call = self.calls[invite.call_id] = Call(invite, addr)
        self.respond(call, 100)
        if not invite.header("identity"):
            sm.stir_verify(sm.STIR_NO_IDENTITY)  # once per INVITE that reached verification
        # A verifier (not in this example) would call stir_verify("verified" / "failed" / "soft-fail").
        se = _session_expires(invite)
        if se and se < self.min_se:
            self.respond(call, 422, [("min-se", str(self.min_se))])
            return
        call.session_expires = se
        user = invite.user
        if user in REJECT:
            contact = [("contact", f"<sip:moved@{self.host}:{self.port}>")] if user == "redirect" else []
            self.respond(call, REJECT[user], contact)
            return
        self.respond(call, 180)
        if user == "noanswer":  # nobody answers: the caller CANCELs, or we give up ringing
            call.timer = self.later(self.ring_timeout, self.respond, call, 480)
        else:
            extra = [("contact", f"<sip:uas@{self.host}:{self.port}>"), ("content-type", "application/sdp")]
            if se:
                extra.append(("session-expires", f"{se};refresher=uac"))
            self.respond(call, 200, extra, sdp(self.host, 40000))

    def respond(self, call: Call, code: int, extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        """Send a response to the INVITE. A final one is counted here, once, and retransmitted until
        the ACK comes (Timer G, or the 2xx rule); a provisional one is never counted."""
        data = response(call.invite, code, to_tag=call.tag if code > 100 else "", extra=extra, body=body)
        call.last = data
        if code > 100 and not call.delay_seen:  # RFC 6076 SRD: the INVITE to its first non-100 response
            call.delay_seen = True
            success = setup_delay_success(code)
            if success is not None:
                delay = (time.monotonic() - call.received) * 1000.0
                sm.observe_setup_delay(DIRECTION, delay, success, call.peer)
        if code < 200:
            self.send_to(call.addr)(data)
            return
        if call.timer is not None:
            call.timer.cancel()  # the ring timeout
            call.timer = None
        sm.invite_result(DIRECTION, code, call.peer)
        if code < 300:
            sm.call_started(DIRECTION, call.peer)  # in progress from the 2xx; call_ended in end(), once
            call.answered = time.monotonic()
        call.state = "answered" if code < 300 else "rejected"
        call.final = Retransmit(self.send_to(call.addr), data, self.timers, lambda: self.on_no_ack(call))

    def on_ack(self, ack: Message) -> None:
        call = self.calls.get(ack.call_id)
        if call is None or call.final is None or ack.cseq[0] != call.invite.cseq[0]:
            return  # an ACK for a 2xx retransmission we already had, or for nothing: not counted
        call.final.stop()
        call.final = None
        if call.state == "rejected":
            self.end(call)
            return
        call.state = "confirmed"
        user = call.invite.user
        if user.startswith("hangup-"):
            call.timer = self.later(_seconds(user), self.hang_up, call, sm.BYE_REASON_NORMAL)
        elif call.session_expires:
            self.expect_refresh(call)

    def on_no_ack(self, call: Call) -> None:
        """64*T1 without an ACK: Timer H for a non-2xx, the end of the 2xx's retransmissions."""
        sm.transaction_timeout(sm.METHOD_ACK, call.peer)
        if call.state == "answered":  # RFC 3261 13.3.1.4: the session is over; say so with a BYE
            self.hang_up(call, sm.BYE_REASON_ERROR)
        else:
            self.end(call)

    def on_cancel(self, cancel: Message, addr: tuple[str, int]) -> None:
        call = self.calls.get(cancel.call_id)
        if call is None or call.invite.cseq[0] != cancel.cseq[0]:
            self.reply(cancel, addr, 481)
            return
        self.reply(cancel, addr, 200)
        if call.state == "early":  # too late once a final response went out
            self.respond(call, 487)

    # --- the dialog ---------------------------------------------------------------------

    def on_bye(self, bye: Message, addr: tuple[str, int]) -> None:
        call = self.calls.get(bye.call_id)
        if call is None or call.state not in ("answered", "confirmed"):
            self.reply(bye, addr, 481)  # unknown, or already ended (our BYE crossed theirs): not counted
            return
        self.reply(bye, addr, 200)
        sm.bye(DIRECTION, sm.BY_REMOTE, sm.BYE_REASON_USER_HANGUP)  # the caller hung up
        self.end(call)

    def on_refresh(self, request: Message, addr: tuple[str, int]) -> None:
        """A re-INVITE or UPDATE in a dialog: a session refresh when the call has a session timer.
        The refresher (the other side) counts session_timer_refresh; we restart our expiry."""
        call = self.calls.get(request.call_id)
        if call is None or call.state not in ("answered", "confirmed"):
            self.reply(request, addr, 481)
            return
        se = _session_expires(request) or call.session_expires
        extra = [("session-expires", f"{se};refresher=uac")] if se else []
        if request.method == "INVITE":
            extra += [("contact", f"<sip:uas@{self.host}:{self.port}>"), ("content-type", "application/sdp")]
        self.reply(request, addr, 200, extra, sdp(self.host, 40000) if request.method == "INVITE" else b"")
        if call.state == "confirmed" and se:
            call.session_expires = se
            self.expect_refresh(call)

    def expect_refresh(self, call: Call) -> None:
        """RFC 4028 section 10: without a refresh, BYE at expiry minus min(32 s, a third)."""
        if call.timer is not None:
            call.timer.cancel()
        se = call.session_expires
        call.timer = self.later(se - min(32, se / 3), self.hang_up, call, sm.BYE_REASON_TIMER_EXPIRED)

    def hang_up(self, call: Call, reason: str) -> None:
        """We end the call: count the BYE once, when it first goes out; a lost BYE is Timer F."""
        if call.state == "ended":
            return
        sm.bye(DIRECTION, sm.BY_LOCAL, reason)
        call.cseq += 1
        invite = call.invite
        to = invite.header("to")
        headers = [
            ("via", f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()}"),
            ("from", to if param(to, "tag") else f"{to};tag={call.tag}"),
            ("to", invite.header("from")),
            ("call-id", invite.call_id),
            ("cseq", f"{call.cseq} BYE"),
            ("max-forwards", "70"),
        ]
        target = _uri(invite.header("contact")) or invite.uri  # sent to where the INVITE came from
        key = (invite.call_id, call.cseq, "BYE")
        data = build(f"BYE {target} SIP/2.0", headers)
        self.requests[key] = Retransmit(self.send_to(call.addr), data, self.timers, lambda: self.on_timer_f(key))
        self.end(call)

    def on_timer_f(self, key: tuple[str, int, str]) -> None:
        self.requests.pop(key, None)
        sm.transaction_timeout(key[2])

    def on_response(self, msg: Message) -> None:
        number, method = msg.cseq
        if msg.code >= 200 and (request := self.requests.pop((msg.call_id, number, method), None)):
            request.stop()  # a final response to our BYE; a retransmitted one finds nothing
            call = self.calls.get(msg.call_id)
            sm.request_result(DIRECTION, method, msg.code, call.peer if call else None)

    def end(self, call: Call) -> None:
        """The call is over: QoS once, then keep the record 64*T1 for late retransmissions."""
        if call.timer is not None:
            call.timer.cancel()
        if call.final is not None:  # a BYE before the ACK: the caller had our 2xx, nothing timed out
            call.final.stop()
            call.final = None
        if call.state in ("answered", "confirmed"):  # once per answered call, whoever ended it
            sm.call_ended(DIRECTION, time.monotonic() - call.answered, call.peer)
            q = call.rtcp
            sm.observe_call_qos(
                rtt_ms=q.rtt_ms,
                jitter_ms=q.jitter_ms,
                loss_fraction=q.loss_fraction,
                mos_estimate=q.mos,
                peer=call.peer,
            )
        call.state = "ended"
        self.later(self.timers.give_up, self.forget, call)

    def forget(self, call: Call) -> None:
        if self.calls.get(call.invite.call_id) is call:
            del self.calls[call.invite.call_id]


def _session_expires(msg: Message) -> int:
    value = msg.header("session-expires") or msg.header("x")  # x: the compact form
    try:
        return int(value.split(";")[0]) if value else 0
    except ValueError:
        return 0


def _uri(name_addr: str) -> str:
    """`sip:a@b` from `"A" <sip:a@b>;expires=60` or `sip:a@b;x=y`."""
    if "<" in name_addr:
        return name_addr.split("<", 1)[1].split(">", 1)[0]
    return name_addr.split(";", 1)[0].strip()


def _seconds(user: str) -> float:
    try:
        return max(0.0, float(user.removeprefix("hangup-")))
    except ValueError:
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    runner.add_arguments(parser)
    parser.add_argument("--min-se", type=int, default=90, help="smallest Session-Expires accepted, s (default 90)")
    parser.add_argument("--ring-timeout", type=float, default=180.0, help="noanswer: 480 after this long, s")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=HOST[:PORT]", help="name a caller")
    args = parser.parse_args()
    for item in args.peer:
        name, _, address = item.partition("=")
        PEERS[address] = name
    runner.configure_metrics(args)

    async def serve(stop: asyncio.Event) -> dict[str, object]:
        loop = asyncio.get_running_loop()
        uas = Uas(runner.timers(args), args.min_se, args.ring_timeout)
        transport, _ = await loop.create_datagram_endpoint(lambda: uas, local_addr=(args.host, args.port))
        runner.say(sip=f"{uas.host}:{uas.port}", flusher_native_id=runner.flusher_native_id())
        await stop.wait()
        transport.close()
        return {"invites": uas.invites}

    runner.run(serve)


if __name__ == "__main__":
    main()
