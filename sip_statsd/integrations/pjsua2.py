"""PJSUA2 (`python -m pip install '.[pjsua2]'`): a UA's calls and their RTCP QoS from one base class.

Derive your call class from `MeteredCall` instead of `pjsua2.Call` (and call `super()` in the
callbacks you override); create it as usual, `MeteredCall(account)` before `makeCall()`, or
`MeteredCall(account, prm.callId)` in `Account.onIncomingCall`::

    from sip_statsd.integrations.pjsua2 import MeteredCall

    class MyCall(MeteredCall):                    # was: class MyCall(pjsua2.Call)
        def onCallState(self, prm):
            super().onCallState(prm)
            ...

A call is `outbound` when made with `makeCall()`, `inbound` when made from an incoming call's
id. As README's event table says, it counts:

- the INVITE's first response other than 100 (`observe_setup_delay`), its final response
  (`invite_result`; a 2xx also `call_started`), sent or received, from `onCallState`; Timer B
  (PJSIP's own 408, a timer event) is `transaction_timeout("INVITE")` instead;
- when the call ends: `call_ended` with the seconds since the 2xx, and `observe_call_qos`
  from the audio stream's RTCP as PJSIP reports it in `onStreamDestroyed`
  (`getStreamStat(i).rtcp`: RTT, receive jitter, loss over packets expected, in
  microseconds), with `mos_estimate=estimate_mos(...)` when the codec is one the E-model knows
  (PCMU/PCMA: G.711, G729: G.729); PJSIP measures RTT only after an RTCP exchange (a few
  seconds), so a short call has none (`None`, skipped);
- the final response to a non-INVITE request of the call's (CANCEL, UPDATE, INFO, their
  BYE ...), sent or received while the call lives: `request_result`; no response (Timer F):
  `transaction_timeout(method)`; the responses to our BYE (it comes after PJSUA ended the call)
  and to our CANCEL reach PJSIP's transaction layer, never the Call: not counted;
- our BYE, from `hangup()` of an answered call: `bye(dir, "local", bye_reason)` (`"normal"`
  unless set before: `"error"`, `"user-hangup"`); theirs answered 2xx: `bye(dir, "remote",
  "user-hangup")`.

PJSIP's own RFC 4028 refreshes (an UPDATE or re-INVITE of ours in an answered call that the
application did not send with `update()`/`reinvite()`) count `session_timer_refresh`: `ok` for a
2xx, `422-bumped` for a 2xx after PJSIP's retry of a 422, `481`.

Per peer (on a `SipMetrics` with declared peers): the host of the call's remote URI
(`CallInfo.remoteUri`, the URI inside `<...>`, never its display name; lower case, IPv6 bare)
is named by `peer_of(host, port)`, by default a look-up of `"host:port"` then `"host"` in the
class attribute `peer_map` (override either; an unnamed host is `other`). Its RTCP figures
are measured ones: a clean stream's 0 lost is recorded as 0 (`zero_is_measured`), and only
what PJSIP did not measure (no RTT before an RTCP round trip) is None.

The callbacks run on whichever thread polls PJSIP; the helpers are thread-safe and never raise.
A `MeteredCall` must be deleted before `Endpoint.libDestroy()`, as any `pjsua2.Call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pjsua2 as pj

import sip_statsd
from sip_statsd import SipMetrics, estimate_mos

from ._calls import InviteClock, peer_in, uri_host

__all__ = ["MeteredCall", "codec_of", "qos_from_rtcp"]

# RTP payload names as SDP gives them (StreamInfo.codecName) -> the E-model's codec
_CODECS = {"PCMU": "G.711", "PCMA": "G.711", "G729": "G.729"}
_NOT_COUNTED_HERE = ("INVITE", "ACK")
_ENDED = (pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED)
_WAITING = (pj.PJSIP_TSX_STATE_CALLING, pj.PJSIP_TSX_STATE_PROCEEDING)  # a request of ours, unanswered
_ANSWERING = (pj.PJSIP_TSX_STATE_TRYING, pj.PJSIP_TSX_STATE_PROCEEDING)  # a request of theirs, unanswered


def codec_of(codec_name: str) -> str | None:
    """The E-model codec for an RTP payload name (`PCMU` -> `G.711`), or None if it knows none."""
    return _CODECS.get(codec_name.upper())


def qos_from_rtcp(rtcp: Any, codec_name: str) -> dict[str, float | None]:
    """`observe_call_qos` arguments from a `pjsua2.RtcpStat` (µs -> ms; loss over packets expected).

    RTT is the mean of PJSIP's measurements (none before the first RTCP round trip); jitter the
    mean receive jitter; MOS from `estimate_mos` when the codec is known and RTT was measured."""
    rtt_ms = rtcp.rttUsec.mean / 1000.0 if rtcp.rttUsec.n > 0 else None
    rx = rtcp.rxStat
    jitter_ms = rx.jitterUsec.mean / 1000.0 if rx.jitterUsec.n > 0 else None
    expected = rx.pkt + rx.loss
    loss = rx.loss / expected if expected > 0 else None
    codec = codec_of(codec_name)
    mos = None
    if codec is not None and rtt_ms is not None:
        mos = estimate_mos(rtt_ms, jitter_ms or 0.0, loss or 0.0, codec)
    return {"rtt_ms": rtt_ms, "jitter_ms": jitter_ms, "loss_fraction": loss, "mos_estimate": mos}


class MeteredCall(pj.Call):
    """A `pjsua2.Call` that counts its SIP metrics and grades its audio from RTCP at its end."""

    bye_reason = "normal"  # what our next BYE counts as; set it before hangup() for another
    peer_map: Mapping[str, str] = {}  # the remote URI's "host:port" or "host" -> peer name

    def peer_of(self, host: str, port: int | None) -> str | None:
        """The peer name of the call's remote host: `peer_map`'s, or None (counted as `other`)."""
        return peer_in(self.peer_map, host, port)

    def __init__(self, account: Any, call_id: int = pj.PJSUA_INVALID_ID, metrics: SipMetrics | None = None) -> None:
        super().__init__(account, call_id)
        self._ss_metrics = metrics if metrics is not None else sip_statsd.default()
        direction = "outbound" if call_id == pj.PJSUA_INVALID_ID else "inbound"
        self._ss_call = InviteClock(self._ss_metrics, direction)
        self._ss_qos: dict[str, float | None] = {}
        self._ss_confirmed = False  # a BYE of theirs counts once the call was answered
        self._ss_own_requests = 0  # re-INVITEs and UPDATEs the application sent, still open
        self._ss_refresh_422 = False
        self._ss_initial_pending = direction == "outbound"
        self._ss_peer_known = False
        self.last_qos: dict[str, float | None] = {}  # what went to observe_call_qos (for tests, logs)

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        state, code, call = info.state, info.lastStatusCode, self._ss_call
        if not self._ss_peer_known:
            self._ss_peer_known = True
            found = uri_host(info.remoteUri or "")
            if found is not None:
                call.peer = self.peer_of(*found)
        if state == pj.PJSIP_INV_STATE_EARLY or state in (
            pj.PJSIP_INV_STATE_CONNECTING,
            pj.PJSIP_INV_STATE_CONFIRMED,
        ):
            call.response(code)
            self._ss_confirmed = self._ss_confirmed or call.answered
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if call.answered:
                self.last_qos = self._ss_qos
                call.ended(**self._ss_qos)
            elif prm.e.type == pj.PJSIP_EVENT_TSX_STATE and prm.e.body.tsxState.type == pj.PJSIP_EVENT_TIMER:
                if call.direction == "outbound":
                    call.timed_out()  # Timer B: PJSIP's 408 is made up, nothing came
            elif code >= 200:
                call.response(code)

    def hangup(self, prm: Any) -> None:
        """As `pjsua2.Call.hangup`; an answered call's BYE is counted as it goes (`bye_reason`).

        PJSUA ends the call when its BYE leaves, so the BYE's response reaches no Call: it is
        not counted (nor its Timer F)."""
        if self._ss_call.answered:
            self._ss_metrics.bye(self._ss_call.direction, "local", self.bye_reason)
        super().hangup(prm)

    def reinvite(self, prm: Any) -> None:
        self._ss_own_requests += 1  # the application's re-INVITE: not a session refresh
        super().reinvite(prm)

    def update(self, prm: Any) -> None:
        self._ss_own_requests += 1  # the application's UPDATE: not a session refresh
        super().update(prm)

    def onCallTsxState(self, prm: Any) -> None:
        event = prm.e.body.tsxState
        tsx = event.tsx
        method = tsx.method
        uac = tsx.role == pj.PJSIP_ROLE_UAC
        received_final = uac and event.type == pj.PJSIP_EVENT_RX_MSG and tsx.statusCode >= 200 and tsx.state in _ENDED
        if received_final and method in ("INVITE", "UPDATE") and self._ss_call.answered:
            if method == "INVITE" and self._ss_initial_pending:
                self._ss_initial_pending = False  # our initial INVITE's 2xx, reported after CONFIRMED
            else:
                self._ss_refresh(tsx.statusCode)
        if method in _NOT_COUNTED_HERE:
            return
        direction = self._ss_call.direction
        if received_final:
            self._ss_metrics.request_result(direction, method, tsx.statusCode, self._ss_call.peer)
        elif uac:
            timed_out = event.type == pj.PJSIP_EVENT_TIMER and tsx.statusCode == 408 and tsx.state in _ENDED
            if timed_out and event.prevState in _WAITING:
                self._ss_metrics.transaction_timeout(method, self._ss_call.peer)
        elif event.type == pj.PJSIP_EVENT_TX_MSG and tsx.statusCode >= 200 and event.prevState in _ANSWERING:
            # our final response, first sent
            self._ss_metrics.request_result(direction, method, tsx.statusCode, self._ss_call.peer)
            if method == "BYE" and tsx.statusCode < 300 and self._ss_confirmed:
                self._ss_metrics.bye(direction, "remote", "user-hangup")

    def _ss_refresh(self, code: int) -> None:
        """The final response to our UPDATE or re-INVITE in an answered call. Unless the
        application sent it, it is PJSIP's RFC 4028 refresh (PJSIP retries a 422 itself)."""
        if self._ss_own_requests > 0:
            self._ss_own_requests -= 1
            return
        if code == 422:
            self._ss_refresh_422 = True
            return
        if 200 <= code < 300:
            self._ss_metrics.session_timer_refresh("422-bumped" if self._ss_refresh_422 else "ok")
        elif code == 481:
            self._ss_metrics.session_timer_refresh("481")
        self._ss_refresh_422 = False

    def onStreamDestroyed(self, prm: Any) -> None:
        try:
            stat = self.getStreamStat(prm.streamIdx)
            codec_name = self.getStreamInfo(prm.streamIdx).codecName
        except pj.Error:
            return  # no stream statistics: the call gets no QoS (grade unknown)
        if not self._ss_qos:  # the first audio stream is the call's
            self._ss_qos = qos_from_rtcp(stat.rtcp, codec_name)
