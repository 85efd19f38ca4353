"""An asyncio UDP UAC instrumented with sip-statsd: the outbound side of a call flow.

    python examples/uac.py 127.0.0.1:5060 --calls 10 --rate 5 --hold 2 --statsd 127.0.0.1:8125

Places `--calls` INVITEs to `sip:<--user>@TARGET` at `--rate` per second. An answered call
is ACKed and hung up after `--hold` seconds (or by the far end's BYE); a call still
ringing after `--cancel-after` seconds is CANCELled. `--options N` also sends N OPTIONS
pings. With `--session-expires N` the INVITE asks for an RFC 4028 session timer with this
side as the refresher: UPDATE every N/2 seconds, 422 answered with the peer's Min-SE, BYE
when a refresh fails; if the peer takes the refresher role, BYE when its refresh is late.
Requests are retransmitted on RFC 3261's timers (A, E) and time out on Timer B / F;
a retransmitted response is ACKed again and never counted twice. The process exits when
every call and ping is over. Every call here is outbound: this process sends the INVITE.
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

DIRECTION = sm.DIRECTION_OUTBOUND  # bye_outbound() is bye() with this direction


@dataclass
class Call:
    """One outbound INVITE and the dialog it makes. No per-call state goes to sip-statsd."""

    call_id: str
    uri: str
    tag: str = field(default_factory=new_tag)
    branch: str = field(default_factory=new_branch)
    state: str = "calling"  # calling → proceeding (1xx) → confirmed (2xx, ACKed) → closing (our BYE) → ended
    final: int = 0  # the final response's code, once one arrived
    to: str = ""  # the To header with the far end's tag
    ack: bytes = b""  # sent again for every retransmitted final response
    invite: Retransmit | None = None  # Timers A and B
    timer: asyncio.TimerHandle | None = None  # hang-up, or the ring time before CANCEL
    cancelled: bool = False
    cseq: int = 1
    over: bool = False
    session: int = 0  # RFC 4028 session interval, s; 0: no session timer
    bumped: bool = False  # this refresh was retried after a 422
    refresh: asyncio.TimerHandle | None = None  # our next refresh, or the peer's deadline
    rtcp: Rtcp = field(default_factory=Rtcp)
    sent: float = 0.0  # when the INVITE first went out: the SRD's start
    delay_seen: bool = False  # the first response other than 100 arrived (RFC 6076 SRD observed)
    answered: float = 0.0  # when the 2xx arrived: the call duration's start


class Uac(asyncio.DatagramProtocol):
    def __init__(
        self, target: tuple[str, int], user: str, timers: Timers, *, hold: float, cancel_after: float, session: int
    ) -> None:
        self.target, self.user, self.timers = target, user, timers
        self.hold, self.cancel_after, self.session = hold, cancel_after, session
        self.calls: dict[str, Call] = {}
        self.requests: dict[tuple[str, int, str], tuple[Retransmit, Callable[[Message | None], None]]] = {}
        self.answers: dict[tuple[str, int, str], bytes] = {}
        self.open = 0  # calls and pings not over yet
        self.idle = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.host, self.port = self.transport.get_extra_info("sockname")[:2]

    def send(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.sendto(data, self.target)

    def later(self, delay: float, callback: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def headers(self, call: Call, method: str, branch: str, cseq: int) -> list[tuple[str, str]]:
        return [
            ("via", f"SIP/2.0/UDP {self.host}:{self.port};branch={branch}"),
            ("from", f"<sip:uac@{self.host}:{self.port}>;tag={call.tag}"),
            ("to", call.to or f"<{call.uri}>"),
            ("call-id", call.call_id),
            ("cseq", f"{cseq} {method}"),
            ("max-forwards", "70"),
        ]

    # --- placing a call: the INVITE client transaction -------------------------------------

    def place(self, n: int) -> None:
        call = Call(f"{n}-{new_tag()}@{self.host}", f"sip:{self.user}@{self.target[0]}:{self.target[1]}")
        self.calls[call.call_id] = call
        self.open += 1
        headers = [
            *self.headers(call, "INVITE", call.branch, 1),
            ("contact", f"<sip:uac@{self.host}:{self.port}>"),
            ("content-type", "application/sdp"),
        ]
        if self.session:
            headers += [("supported", "timer"), ("session-expires", f"{self.session};refresher=uac")]
        data = build(f"INVITE {call.uri} SIP/2.0", headers, sdp(self.host, 40002))
        call.sent = time.monotonic()
        # Timer A doubles without the T2 cap; Timer B gives up after 64*T1 without any response.
        call.invite = Retransmit(self.send, data, self.timers, lambda: self.on_timer_b(call), cap=False)
        call.timer = self.later(self.cancel_after, self.cancel, call)

    def on_timer_b(self, call: Call) -> None:
        """No final response: a transaction timeout, never an invite_result (no code went on the wire)."""
        sm.transaction_timeout(sm.METHOD_INVITE)
        self.end(call)

    def setup_delay(self, call: Call, code: int) -> None:
        """RFC 6076 SRD, once per INVITE: from sending it to its first response other than 100."""
        if code > 100 and not call.delay_seen and not call.over:
            call.delay_seen = True
            success = setup_delay_success(code)
            if success is not None:
                sm.observe_setup_delay(DIRECTION, (time.monotonic() - call.sent) * 1000.0, success)

    def on_invite_response(self, call: Call, msg: Message) -> None:
        self.setup_delay(call, msg.code)
        if msg.code < 200:
            if call.state == "calling" and call.invite is not None:
                call.invite.stop()  # Proceeding: no more retransmissions, and no Timer B
                call.state = "proceeding"
                if call.cancelled:
                    self.cancel(call)
            return
        if call.final:
            self.send(call.ack)  # a retransmitted final response: ACK again, count nothing
            return
        if call.over:
            return  # the transaction was given up (RFC 3261 9.1): a stray response now
        if call.invite is not None:
            call.invite.stop()
        call.final, call.to = msg.code, msg.header("to")
        sm.invite_result(DIRECTION, msg.code)  # once per final response; 1xx never
        if msg.code < 300:
            sm.call_started(DIRECTION)  # in progress from the 2xx; call_ended in end(), once
            call.answered = time.monotonic()
        if call.timer is not None:
            call.timer.cancel()
        # The ACK of a non-2xx is part of the INVITE transaction (same branch); a 2xx's is new.
        branch = call.branch if msg.code >= 300 else new_branch()
        call.ack = build(f"ACK {call.uri} SIP/2.0", self.headers(call, "ACK", branch, 1))
        self.send(call.ack)
        if msg.code >= 300:
            self.end(call)
        elif call.cancelled:  # our CANCEL crossed their 200: the call is up, so end it with a BYE
            call.state = "confirmed"
            self.hang_up(call)
        else:
            call.state = "confirmed"
            call.timer = self.later(self.hold, self.hang_up, call)
            self.session_timer(call, msg)

    def cancel(self, call: Call) -> None:
        """The caller gives up while it rings. The far end answers the INVITE with 487, which is
        counted as that INVITE's final response; CANCEL only after a provisional (RFC 3261 9.1)."""
        if call.final or call.over:
            return
        call.cancelled = True
        if call.state != "proceeding":
            return  # sent when a provisional response arrives
        headers = self.headers(call, "CANCEL", call.branch, 1)
        self.request(call.call_id, 1, "CANCEL", build(f"CANCEL {call.uri} SIP/2.0", headers), lambda _: None)
        # RFC 3261 9.1: with no final response 64*T1 after the CANCEL, the INVITE is given up.
        call.timer = self.later(self.timers.give_up, self.on_timer_b, call)

    # --- the dialog -----------------------------------------------------------------------

    def hang_up(self, call: Call, reason: str = sm.BYE_REASON_NORMAL) -> None:
        """Our side ends the call: count the BYE once, when it first goes out."""
        if call.state != "confirmed":
            return
        sm.bye_outbound(sm.BY_LOCAL, reason)
        call.state = "closing"
        call.cseq += 1
        data = build(f"BYE {call.uri} SIP/2.0", self.headers(call, "BYE", new_branch(), call.cseq))
        self.request(call.call_id, call.cseq, "BYE", data, lambda _: self.end(call))

    # --- RFC 4028 session timer -------------------------------------------------------------

    def session_timer(self, call: Call, answer: Message) -> None:
        """Follow the Session-Expires of a 2xx: refresh at half the interval if we are the
        refresher; otherwise hang up (timer-expired) if the peer's refresh is late."""
        value = answer.header("session-expires") or answer.header("x")
        if not value or call.state != "confirmed":
            return
        call.session = int(value.split(";")[0])
        if call.refresh is not None:
            call.refresh.cancel()
        if param(value, "refresher") == "uas":
            deadline = call.session - min(32, call.session / 3)
            call.refresh = self.later(deadline, self.hang_up, call, sm.BYE_REASON_TIMER_EXPIRED)
        else:
            call.refresh = self.later(call.session / 2, self.send_refresh, call)

    def send_refresh(self, call: Call, min_se: int = 0) -> None:
        if call.state != "confirmed":
            return
        call.cseq += 1
        call.bumped = bool(min_se)
        headers = self.headers(call, "UPDATE", new_branch(), call.cseq)
        headers.append(("session-expires", f"{max(call.session, min_se)};refresher=uac"))
        if min_se:
            headers.append(("min-se", str(min_se)))
        data = build(f"UPDATE {call.uri} SIP/2.0", headers)
        self.request(call.call_id, call.cseq, "UPDATE", data, lambda answer: self.on_refresh(call, answer))

    def on_refresh(self, call: Call, answer: Message | None) -> None:
        """One result per refresh: the 2xx that ends it, or how it failed. RFC 4028 section 10:
        a refresh that times out or gets 481 (or 408) ends the call with a BYE."""
        code = answer.code if answer is not None else 408  # None: Timer F, already counted as a timeout
        if answer is not None and 200 <= code < 300:
            swapped = param(answer.header("session-expires"), "refresher") == "uas"
            result = sm.REFRESH_ROLE_SWAP if swapped else sm.REFRESH_422_BUMPED if call.bumped else sm.REFRESH_OK
            sm.session_timer_refresh(result)
            self.session_timer(call, answer)
        elif code == 422:
            min_se = answer.header("min-se").split(";")[0].strip() if answer is not None else ""
            if not call.bumped and min_se.isdigit() and int(min_se) > call.session:
                self.send_refresh(call, int(min_se))  # counted when this second try ends
            else:
                sm.session_timer_refresh(sm.REFRESH_422_GAVE_UP)
                self.hang_up(call, sm.BYE_REASON_ERROR)
        elif code in (408, 481):
            if code == 481:
                sm.session_timer_refresh(sm.REFRESH_481)
            self.hang_up(call, sm.BYE_REASON_ERROR)
        else:  # 491, 500, ...: not a session-timer result; try again at the next refresh time
            call.refresh = self.later(call.session / 2, self.send_refresh, call)

    def answer(self, request: Message, addr: tuple[str, int], code: int) -> None:
        """Answer a request the far end sent, once: its retransmissions get the stored answer
        (Timer J) and are not counted again."""
        data = response(request, code)
        key = (request.call_id, request.cseq[0], request.method)
        self.answers[key] = data
        self.later(self.timers.give_up, self.answers.pop, key, None)
        self.transport.sendto(data, addr)
        if request.method != "INVITE":  # a re-INVITE's answer is no outcome (see the README)
            # the call's direction in a dialog; outside one, the request's: we received it
            direction = DIRECTION if request.call_id in self.calls else sm.DIRECTION_INBOUND
            sm.request_result(direction, request.method, code)

    def on_bye(self, bye: Message, addr: tuple[str, int]) -> None:
        call = self.calls.get(bye.call_id)
        code = 200 if call is not None and call.state == "confirmed" else 481
        self.answer(bye, addr, code)
        if call is not None and code == 200:
            sm.bye_outbound(sm.BY_REMOTE, sm.BYE_REASON_USER_HANGUP)  # the callee hung up
            self.end(call)

    def end(self, call: Call) -> None:
        if call.over:
            return
        for timer in (call.timer, call.refresh):
            if timer is not None:
                timer.cancel()
        if 200 <= call.final < 300:  # once per answered call, whoever ended it
            sm.call_ended(DIRECTION, time.monotonic() - call.answered)
            q = call.rtcp
            sm.observe_call_qos(
                rtt_ms=q.rtt_ms, jitter_ms=q.jitter_ms, loss_fraction=q.loss_fraction, mos_estimate=q.mos
            )
        call.state, call.over = "ended", True
        self.later(self.timers.give_up, self.calls.pop, call.call_id, None)  # after late retransmissions
        self.done_one()

    # --- non-INVITE client transactions (BYE, CANCEL, OPTIONS) ----------------------------

    def request(
        self, call_id: str, cseq: int, method: str, data: bytes, on_done: Callable[[Message | None], None]
    ) -> None:
        """Send with Timer E retransmissions; call `on_done` with the final response, or None
        after Timer F."""
        key = (call_id, cseq, method)

        def on_timer_f() -> None:
            self.requests.pop(key, None)
            sm.transaction_timeout(method)
            on_done(None)

        self.requests[key] = (Retransmit(self.send, data, self.timers, on_timer_f), on_done)

    def ping(self, n: int) -> None:
        self.open += 1
        call = Call(f"ping-{n}-{new_tag()}@{self.host}", f"sip:{self.target[0]}:{self.target[1]}")
        data = build(f"OPTIONS {call.uri} SIP/2.0", self.headers(call, "OPTIONS", new_branch(), 1))
        self.request(call.call_id, 1, "OPTIONS", data, lambda _: self.done_one())

    def done_one(self) -> None:
        self.open -= 1
        if self.open == 0:
            self.idle.set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse(data)
        if msg is None:
            return
        number, method = msg.cseq
        if msg.method:
            if (answer := self.answers.get((msg.call_id, number, msg.method))) is not None:
                self.transport.sendto(answer, addr)  # a retransmitted request: answer again, count nothing
            elif msg.method == "BYE":
                self.on_bye(msg, addr)
            elif msg.method != "ACK":
                self.answer(msg, addr, 501)
        elif method == "INVITE" and (call := self.calls.get(msg.call_id)) is not None:
            self.on_invite_response(call, msg)
        elif msg.code >= 200 and (pending := self.requests.pop((msg.call_id, number, method), None)):
            retransmit, on_done = pending
            retransmit.stop()
            sm.request_result(DIRECTION, method, msg.code)  # BYE, CANCEL, UPDATE, OPTIONS: ours, first received
            on_done(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", help="HOST:PORT of the UAS")
    runner.add_arguments(parser)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--user", default="answer", help="request-URI user (default: answer)")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds before our BYE")
    parser.add_argument("--cancel-after", type=float, default=30.0, help="seconds of ringing before CANCEL")
    parser.add_argument("--options", type=int, default=0, help="OPTIONS pings to send")
    parser.add_argument("--session-expires", type=int, default=0, help="ask for an RFC 4028 session timer, s")
    args = parser.parse_args()
    runner.configure_metrics(args)
    host, _, port = args.target.rpartition(":")

    async def serve(stop: asyncio.Event) -> dict[str, object]:
        loop = asyncio.get_running_loop()
        target = (host, int(port))
        timers = runner.timers(args)
        uac = Uac(
            target, args.user, timers, hold=args.hold, cancel_after=args.cancel_after, session=args.session_expires
        )
        transport, _ = await loop.create_datagram_endpoint(lambda: uac, local_addr=(args.host, args.port))
        runner.say(sip=f"{uac.host}:{uac.port}", flusher_native_id=runner.flusher_native_id())
        uac.open += 1  # until every call is placed
        for n in range(args.options):
            uac.ping(n)
        for n in range(args.calls):
            uac.place(n)
            await asyncio.sleep(1 / args.rate)  # pacing the calls, not waiting for anything
        uac.done_one()
        waits = [asyncio.create_task(e.wait()) for e in (uac.idle, stop)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        transport.close()
        return {"invites": args.calls, "options": args.options}

    runner.run(serve)


if __name__ == "__main__":
    main()
