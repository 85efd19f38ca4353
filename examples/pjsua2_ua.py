"""A PJSUA2 user agent with sip-statsd: calls are `MeteredCall`s, media is real RTP and RTCP.

With `--call URI` it places `--calls` calls (at most `--concurrent` at a time), each held
`--hold` seconds then hung up, or CANCELled after `--cancel-after` seconds of ringing. Without,
it answers by request-URI user: `answer` (180, 200), `busy` (486), `ring` (180, then waits
for the CANCEL); any other user: 404. The audio device is PJSUA2's null device; a conference
bridge still sends RTP (silence) and RTCP, so PJSIP measures RTT, jitter and loss;
`--tx-drop-pct` drops that share of our outgoing RTP. One JSON line when listening, one at the
end with what PJSIP itself reported: final codes by code, and each call's RTCP figures.

    python examples/pjsua2_ua.py --port 5070 --statsd 127.0.0.1:8125 &
    python examples/pjsua2_ua.py --call sip:answer@127.0.0.1:5070 --calls 4 --hold 9 --statsd 127.0.0.1:8125
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import time
from typing import Any

import pjsua2 as pj

import sip_statsd as sm
from sip_statsd.integrations.pjsua2 import MeteredCall

from runner import add_arguments, configure_metrics

_OUT = os.fdopen(os.dup(1), "w")  # JSON lines; PJSIP's own log goes to stderr (see main)


def say(**fields: object) -> None:
    print(json.dumps(fields), file=_OUT, flush=True)


class Report:
    """What PJSIP itself reported, independent of sip-statsd: the tests compare the two."""

    def __init__(self) -> None:
        self.finals: collections.Counter[str] = collections.Counter()
        self.rtcp: list[dict[str, Any]] = []
        self.timeouts = 0


class Call(MeteredCall):
    def __init__(self, ua: UserAgent, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(ua.account, call_id)
        self.ua = ua
        self.final_seen = False
        self.started = time.monotonic()
        self.answered_at: float | None = None
        self.done = False
        self.media_done = False

    def onCallState(self, prm: Any) -> None:
        super().onCallState(prm)
        info = self.getInfo()
        code = info.lastStatusCode
        if info.state in (pj.PJSIP_INV_STATE_CONNECTING, pj.PJSIP_INV_STATE_CONFIRMED) and self.answered_at is None:
            self.answered_at = time.monotonic()
            self._final(code)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if prm.e.type == pj.PJSIP_EVENT_TSX_STATE and prm.e.body.tsxState.type == pj.PJSIP_EVENT_TIMER:
                if self.answered_at is None:
                    self.ua.report.timeouts += 1
            elif self.answered_at is None:
                self._final(code)
            self.done = True

    def _final(self, code: int) -> None:
        if not self.final_seen:
            self.final_seen = True
            self.ua.report.finals[str(code)] += 1

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = self.getAudioMedia(i)
                self.ua.endpoint.audDevManager().getCaptureDevMedia().startTransmit(audio)
                audio.startTransmit(self.ua.endpoint.audDevManager().getPlaybackDevMedia())

    def onStreamDestroyed(self, prm: Any) -> None:
        super().onStreamDestroyed(prm)
        try:
            stat = self.getStreamStat(prm.streamIdx)
            codec = self.getStreamInfo(prm.streamIdx).codecName
        except pj.Error:
            return
        rtcp = stat.rtcp
        self.ua.report.rtcp.append(
            {
                "codec": codec,
                "rtt_usec_mean": rtcp.rttUsec.mean,
                "rtt_n": rtcp.rttUsec.n,
                "jitter_usec_mean": rtcp.rxStat.jitterUsec.mean,
                "jitter_n": rtcp.rxStat.jitterUsec.n,
                "loss": rtcp.rxStat.loss,
                "pkt": rtcp.rxStat.pkt,
            }
        )


class Account(pj.Account):
    def __init__(self, ua: UserAgent) -> None:
        super().__init__()
        self.ua = ua

    def onIncomingCall(self, prm: Any) -> None:
        call = Call(self.ua, prm.callId)
        self.ua.calls.append(call)
        user = call.getInfo().localUri.split("sip:", 1)[-1].split("@", 1)[0]
        if user in ("answer", "ring"):
            call.answer(_status(180))
            if user == "answer":
                call.answer(_status(200))
        else:
            call.answer(_status(486 if user == "busy" else 404))


def _status(code: int) -> Any:
    op = pj.CallOpParam(True)
    op.statusCode = code
    return op


class UserAgent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.report = Report()
        self.calls: list[Call] = []
        self.endpoint = pj.Endpoint()
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0  # PJSIP runs in our thread, in libHandleEvents()
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = 32
        config.logConfig.level = config.logConfig.consoleLevel = args.log_level
        config.medConfig.txDropPct = args.tx_drop_pct
        config.medConfig.noVad = True  # RTP every 20 ms, silence or not: loss is measured on 50 packets/s
        config.medConfig.hasIoqueue = True
        self.endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.boundAddress = args.host
        transport.port = args.port
        self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()
        for codec in self.endpoint.codecEnum2():  # G.711 mu-law first: a codec the E-model knows
            self.endpoint.codecSetPriority(codec.codecId, 255 if codec.codecId.startswith("PCMU/") else 0)
        account = pj.AccountConfig()
        account.idUri = f"sip:ua@{args.host}:{args.port}"
        account.mediaConfig.transportConfig.boundAddress = args.host
        if args.session_expires:  # RFC 4028: PJSIP refreshes at half the interval (90 s at least)
            account.callConfig.timerUse = pj.PJSUA_SIP_TIMER_ALWAYS
            account.callConfig.timerSessExpiresSec = args.session_expires
            account.callConfig.timerMinSESec = 90
        self.account = Account(self)
        self.account.create(account)

    def poll(self, seconds: float) -> None:
        self.endpoint.libHandleEvents(int(seconds * 1000))

    def close(self) -> None:
        self.calls.clear()  # Call objects go before libDestroy()
        self.account.shutdown()
        self.endpoint.libDestroy()


def place_calls(ua: UserAgent, args: argparse.Namespace, stop: list[bool]) -> None:
    placed = 0
    live: list[Call] = []
    while (placed < args.calls or live) and not stop:
        while placed < args.calls and len(live) < args.concurrent:
            call = Call(ua)
            call.makeCall(args.call, pj.CallOpParam(True))
            live.append(call)
            ua.calls.append(call)
            placed += 1
        ua.poll(0.02)
        now = time.monotonic()
        for call in live:
            if call.done:
                continue
            limit = args.cancel_after if args.cancel_after is not None else args.hold
            since = call.started if args.cancel_after is not None else call.answered_at
            if since is not None and now - since >= limit:
                call.hangup(pj.CallOpParam(True))
                call.started = call.answered_at = float("inf")
        live = [call for call in live if not call.done]
    deadline = time.monotonic() + 1.0  # let the last BYE transactions finish
    while time.monotonic() < deadline:
        ua.poll(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--call", metavar="URI", help="place calls to URI (else: answer calls)")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--concurrent", type=int, default=4, help="at most 4 with this wheel's defaults")
    parser.add_argument("--hold", type=float, default=9.0, help="seconds; PJSIP measures RTT after ~8 s")
    parser.add_argument("--cancel-after", type=float, help="CANCEL after this many seconds instead")
    parser.add_argument("--tx-drop-pct", type=int, default=0, help="drop this share of our RTP packets")
    parser.add_argument("--session-expires", type=int, help="use RFC 4028 session timers (seconds, >= 90)")
    parser.add_argument("--log-level", type=int, default=1)
    args = parser.parse_args()
    configure_metrics(args)
    os.dup2(2, 1)  # PJSIP writes its log to stdout: keep stdout for the JSON lines
    ua = UserAgent(args)
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    say(sip=f"{args.host}:{args.port}", pid=os.getpid())
    if args.call:
        place_calls(ua, args, stop)
    else:
        while not stop:
            ua.poll(0.05)
            ua.calls = [call for call in ua.calls if not call.done]
    report = ua.report
    ua.close()
    stats = sm.stats()
    sm.close()
    say(
        finals=dict(report.finals),
        timeouts=report.timeouts,
        rtcp=report.rtcp,
        dropped_inputs=sum(stats.dropped_inputs.values()),
        send_errors=sum(stats.send_errors.values()),
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
