"""A small B2BUA on Sippy with sip-statsd, written for the tests in the manner of Sippy's
`sippy/b2bua_simple.py` (not a copy: docs/integrations.md shows the change to that file itself).

Every INVITE makes an A leg (inbound) and an O leg (outbound) to the next hop, chosen by
the request-URI user (`--route user=host:port`, else `--next-hop`). The caller's hang-up is
relayed as the other leg's BYE, a refusal as the A leg's final response. Prints one JSON line
when it listens and one when SIGTERM stops it (after sip-statsd's last flush).

    python examples/sippy_b2bua.py --port 5060 --next-hop 127.0.0.1:5070 --statsd 127.0.0.1:8125
    python examples/sippy_b2bua.py --port 5060 --next-hop 127.0.0.1:5070 --plain   # no metrics
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from sippy.CCEvents import CCEventDisconnect, CCEventTry
from sippy.Core.EventDispatcher import ED2
from sippy.SipConf import SipConf
from sippy.SipLogger import SipLogger
from sippy.SipTransactionManager import SipTransactionManager
from sippy.UA import UA
from sippy.Udp_server import Udp_server_opts

import sip_statsd as sm
from sip_statsd.integrations.sippy import MeteredUA, metered_requests

from runner import add_arguments, configure_metrics, flusher_native_id


class CallController:
    """One call: the A leg that received the INVITE, the O leg that sends it on."""

    def __init__(self, config: dict[str, Any], ua_class: type[Any], routes: dict[str, tuple[str, int]]) -> None:
        self.config = config
        self.ua_class = ua_class
        self.routes = routes
        self.ua_a = ua_class(config, self.recv_event)
        self.ua_o: Any = None

    def recv_event(self, event: Any, ua: Any) -> None:
        if ua is self.ua_a:
            if self.ua_o is None:
                if not isinstance(event, CCEventTry):
                    self.ua_a.recvEvent(CCEventDisconnect())
                    return
                called = event.getData()[2]
                next_hop = self.routes.get(called, self.config["nh_addr"])
                self.ua_o = self.ua_class(self.config, event_cb=self.recv_event, nh_address=next_hop)
            self.ua_o.recvEvent(event)
        else:
            self.ua_a.recvEvent(event)


_OUT = os.fdopen(os.dup(1), "w")  # the JSON lines; Sippy's own prints go to stderr (see main)


def say(**fields: object) -> None:
    """One JSON line on stdout, for the tests and the benchmark."""
    print(json.dumps(fields), file=_OUT, flush=True)


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--next-hop", type=address, required=True, metavar="HOST:PORT")
    parser.add_argument("--route", action="append", default=[], metavar="USER=HOST:PORT")
    parser.add_argument("--plain", action="store_true", help="Sippy's own UA: no metrics (for the benchmark)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=HOST[:PORT]", help="name a far end")
    args = parser.parse_args()
    os.dup2(2, 1)  # Sippy prints its diagnostics to stdout: send them to stderr, keep stdout for JSON
    configure_metrics(args)
    routes = {user: address(hop) for user, _, hop in (r.partition("=") for r in args.route)}
    ua_class = UA if args.plain else MeteredUA
    # Each leg's remote host (a caller's source, a next hop) -> its peer name (SIP_STATSD_PEERS names them).
    MeteredUA.peer_map = {hop: name for name, _, hop in (p.partition("=") for p in args.peer)}
    os.environ.setdefault("SIPLOG_BEND", "none")
    # One UDP worker keeps datagrams in order: with Sippy's default three, a 180 may leave after
    # its 200 and a strict sipp scenario fails (metrics are the same either way).
    Udp_server_opts.nworkers = 1
    SipConf.my_uaname = "Sippy B2BUA (sip-statsd example)"
    config: dict[str, Any] = {"nh_addr": args.next_hop, "_sip_address": args.host, "_sip_port": args.port}
    config["_sip_logger"] = SipLogger("b2bua")
    calls = 0

    def recv_request(req: Any, sip_t: Any) -> Any:
        nonlocal calls
        if req.getHFBody("to").getTag() is not None:
            return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
        if req.getMethod() == "INVITE":
            calls += 1
            return CallController(config, ua_class, routes).ua_a.recvRequest(req, sip_t)
        if req.getMethod() == "OPTIONS":
            return (req.genResponse(200, "OK"), None, None)
        return (req.genResponse(501, "Not Implemented"), None, None)

    config["_sip_tm"] = SipTransactionManager(config, recv_request if args.plain else metered_requests(recv_request))
    ED2.regSignal(signal.SIGTERM, ED2.breakLoop)
    ED2.regSignal(signal.SIGINT, ED2.breakLoop)
    say(sip=f"{args.host}:{args.port}", pid=os.getpid(), flusher=flusher_native_id())
    ED2.loop()
    stats = sm.stats()  # flushes: what the B2BUA counted is on its way to the agent
    sm.close()
    say(invites=calls, dropped_inputs=sum(stats.dropped_inputs.values()), send_errors=sum(stats.send_errors.values()))
    sys.exit(0)


if __name__ == "__main__":
    main()
