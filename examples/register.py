"""A registering UA instrumented with sip-statsd: RFC 6076 registration KPIs (RRD, IRA).

    python examples/register.py REGISTRAR_HOST:PORT --count 10 --statsd 127.0.0.1:8125

Sends `--count` REGISTER attempts, one after the other. An attempt is its first REGISTER and,
after a 401/407 challenge, the REGISTER that answers it: `register_result` counts each final
response (the challenge as `challenged`, not a failure), and `observe_registration_delay` the
attempt's RRD, from its first REGISTER to its final response (2xx: success; else failure). No
final response within 64*T1 (Timer F) is `register_result(..., 408)`: a `timeout`, with no
delay (the timer's length says nothing about the registrar).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

import sip_statsd as sm

import runner
from sipmsg import Message, Retransmit, Timers, build, new_branch, new_tag, parse

DIRECTION = sm.DIRECTION_OUTBOUND  # we send the REGISTERs


class Registrant(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], user: str, timers: Timers) -> None:
        self.target, self.user, self.timers = target, user, timers
        self.pending: dict[tuple[str, int], Retransmit] = {}  # (Call-ID, CSeq) -> our REGISTER
        self.started: dict[str, float] = {}  # Call-ID -> the attempt's first REGISTER
        self.done = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.host, self.port = self.transport.get_extra_info("sockname")[:2]

    def send(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.sendto(data, self.target)

    def register(self, call_id: str, cseq: int, authorization: str = "") -> None:
        aor = f"sip:{self.user}-{call_id.split('-', 1)[0]}@{self.target[0]}"
        headers = [
            ("via", f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()}"),
            ("from", f"<{aor}>;tag={new_tag()}"),
            ("to", f"<{aor}>"),
            ("call-id", call_id),
            ("cseq", f"{cseq} REGISTER"),
            ("contact", f"<sip:{self.user}@{self.host}:{self.port}>"),
            ("expires", "3600"),
            ("max-forwards", "70"),
        ]
        if authorization:
            headers.append(("authorization", authorization))
        data = build(f"REGISTER sip:{self.target[0]}:{self.target[1]} SIP/2.0", headers)
        key = (call_id, cseq)
        self.pending[key] = Retransmit(self.send, data, self.timers, lambda: self.on_timer_f(key))

    def attempt(self, n: int) -> None:
        call_id = f"{n}-{new_tag()}@{self.host}"
        self.started[call_id] = time.monotonic()
        self.register(call_id, 1)

    def on_timer_f(self, key: tuple[str, int]) -> None:
        self.pending.pop(key, None)
        self.started.pop(key[0], None)
        sm.register_result(DIRECTION, 408)  # Timer F: a timeout (RFC 3261 §8.1.3.1), no RRD
        self.check_done()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse(data)
        if msg is None or not msg.code or msg.code < 200:
            return
        key = (msg.call_id, msg.cseq[0])
        request = self.pending.pop(key, None)
        if request is None:
            return  # a retransmitted final response: counted once
        request.stop()
        self.on_final(msg)

    def on_final(self, msg: Message) -> None:
        sm.register_result(DIRECTION, msg.code)
        challenge = msg.header("www-authenticate") or msg.header("proxy-authenticate")
        if msg.code in (401, 407) and challenge and msg.cseq[0] == 1:
            self.register(msg.call_id, 2, f'Digest username="{self.user}", response="0"')  # the same attempt
            return
        start = self.started.pop(msg.call_id, None)
        if start is not None:
            sm.observe_registration_delay(DIRECTION, (time.monotonic() - start) * 1000.0, 200 <= msg.code < 300)
        self.check_done()

    def check_done(self) -> None:
        if not self.pending and not self.started:
            self.done.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", help="HOST:PORT of the registrar")
    runner.add_arguments(parser)
    parser.add_argument("--count", type=int, default=1, help="REGISTER attempts")
    parser.add_argument("--user", default="alice")
    args = parser.parse_args()
    runner.configure_metrics(args)
    host, _, port = args.target.rpartition(":")

    async def serve(stop: asyncio.Event) -> dict[str, object]:
        loop = asyncio.get_running_loop()
        registrant = Registrant((host, int(port)), args.user, runner.timers(args))
        transport, _ = await loop.create_datagram_endpoint(lambda: registrant, local_addr=(args.host, args.port))
        runner.say(sip=f"{registrant.host}:{registrant.port}", flusher_native_id=runner.flusher_native_id())
        for n in range(args.count):
            registrant.attempt(n)
        waits = [asyncio.create_task(e.wait()) for e in (registrant.done, stop)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        transport.close()
        return {"registers": args.count}

    runner.run(serve)


if __name__ == "__main__":
    main()
