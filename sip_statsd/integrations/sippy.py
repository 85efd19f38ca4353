"""Sippy B2BUA (`python -m pip install '.[sippy]'`): every leg's SIP metrics from one class.

Use `MeteredUA` wherever the B2BUA makes a `sippy.UA.UA`; nothing else changes::

    from sip_statsd.integrations.sippy import MeteredUA as UA   # was: from sippy.UA import UA

Each UA is one leg and one call: `inbound` when it answered an INVITE (the A leg), `outbound`
when it sent one (the O leg). It counts, as README's event table says:

- the initial INVITE's final response sent (UAS) or received (UAC): `invite_result`; its first
  response other than 100: `observe_setup_delay`; a 2xx: `call_started`;
- the end of an answered call (any way it ends): `call_ended` with the seconds since the 2xx and
  `observe_call_qos` from `call_qos()` (override it to give RTCP figures; none by default: grade
  `unknown`);
- every final response to a non-INVITE request in the dialog, ours or theirs (BYE, CANCEL,
  INFO, OPTIONS, REFER ...): `request_result`; a timed-out one (Timer F): `transaction_timeout`;
- our BYE: `bye(dir, "local", reason)`: `user-hangup` when relaying the other leg's hang-up,
  `normal` for a local `disconnect()` (credit time, expiry), `error` after a failure (no ACK, a
  failed re-INVITE, an SDP error); their BYE answered 2xx in a live call: `bye(dir, "remote",
  "user-hangup")`;
- Timer B on our INVITE (Sippy's is fixed at 32 s): `transaction_timeout("INVITE")`, and no
  outcome, though Sippy hands the leg a made-up 408; our 2xx (or final) never ACKed:
  `transaction_timeout("ACK")`.

Per peer (on a `SipMetrics` with declared peers): each leg's remote host is named by
`peer_of(host, port)`, a function given as `MeteredUA(..., peer_of=...)`, by default a look-up
of `"host:port"` then `"host"` in the class attribute `peer_map` (`{"10.0.0.5": "carrier-a"}`);
an unnamed host is `other`. The A leg's host is its INVITE's source, the O leg's its next hop.
`call_qos()`'s figures are measured ones: a 0 is recorded as a sample (`zero_is_measured`),
None as no data.

Sippy has no RFC 4028 session timer, so nothing calls `session_timer_refresh`. Requests outside
any dialog (OPTIONS, REGISTER to the B2BUA) reach the application's own callback: wrap it with
`metered_requests`. All of this runs on Sippy's event-loop thread and costs dictionary
look-ups; it never raises into Sippy (the helpers do not raise unless `strict=True`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from sippy.CCEvents import CCEventDisconnect, CCEventFail, CCEventRedirect, CCEventTry
from sippy.UA import UA

import sip_statsd
from sip_statsd import SipMetrics

from ._calls import InviteClock, PeerOf, canonical_host, peer_in

__all__ = ["MeteredUA", "metered_requests"]

_NOT_COUNTED_HERE = ("INVITE", "ACK")  # INVITE outcomes have their own path; an ACK has no response


class MeteredUA(UA):
    """A `sippy.UA.UA` that counts its leg's SIP metrics; same arguments, plus `metrics=`
    (a `SipMetrics`; default: the process-wide one)."""

    _ss_metrics: SipMetrics
    _ss_call: InviteClock | None = None
    _ss_invite_tr: Any = None
    _ss_cancel_hooked = False
    _ss_bye_reason: str | None = None
    peer_map: Mapping[str, str] = {}  # "host:port" or "host" -> peer name (see peer_of)

    def __init__(
        self, *args: Any, metrics: SipMetrics | None = None, peer_of: PeerOf | None = None, **kwargs: Any
    ) -> None:
        self._ss_metrics = metrics if metrics is not None else sip_statsd.default()
        self._ss_peer_of: PeerOf = peer_of if peer_of is not None else self.peer_of
        super().__init__(*args, **kwargs)

    def peer_of(self, host: str, port: int | None) -> str | None:
        """The peer name of a leg's remote host: `peer_map`'s, or None (counted as `other`)."""
        return peer_in(self.peer_map, host, port)

    def _ss_peer(self, address: Any) -> str | None:
        """`peer_of` for a Sippy address ((host, port)), never raising into Sippy."""
        try:
            host, port = address
            return self._ss_peer_of(canonical_host(str(host)), None if port is None else int(port))
        except Exception:
            return None

    def call_qos(self) -> dict[str, float | None]:
        """RTCP figures for `observe_call_qos` at the call's end (rtt_ms, jitter_ms,
        loss_fraction, mos_estimate). Sippy relays no media itself: none by default."""
        return {}

    # --- the UAS side: an INVITE or an in-dialog request received --------------------------

    def recvRequest(self, req: Any, sip_t: Any) -> Any:
        method = req.getMethod()
        initial = method == "INVITE" and self.state is None and self._ss_call is None
        if initial:
            self._ss_call = InviteClock(self._ss_metrics, "inbound", self._ss_peer(req.getSource()))
            sip_t.res_out_cb = self._ss_invite_response_sent
        elif self._ss_call is not None and method not in _NOT_COUNTED_HERE:
            sip_t.res_out_cb = partial(self._ss_response_sent, method, self.isConnected())
        rval = super().recvRequest(req, sip_t)
        if initial and rval is not None:
            response, cancel_cb, noack_cb = rval
            rval = (
                response,
                None if cancel_cb is None else partial(self._ss_cancelled, cancel_cb),
                None if noack_cb is None else partial(self._ss_no_ack, noack_cb),
            )
        return rval

    def _ss_invite_response_sent(self, resp: Any) -> None:
        if self._ss_call is not None:
            self._ss_call.response(resp.getSCode()[0])

    def _ss_response_sent(self, method: str, was_connected: bool, resp: Any) -> None:
        code = resp.getSCode()[0]
        if code < 200 or self._ss_call is None:
            return
        direction = self._ss_call.direction
        self._ss_metrics.request_result(direction, method, code, self._ss_call.peer)
        if method == "BYE" and was_connected and code < 300:
            self._ss_metrics.bye(direction, "remote", "user-hangup")

    def _ss_cancelled(self, cancel_cb: Callable[..., Any], rtime: Any, req: Any) -> Any:
        # Sippy's transaction layer answered the CANCEL 200 before calling back (None: Timer C/expiry)
        if req is not None and self._ss_call is not None:
            self._ss_metrics.request_result(self._ss_call.direction, "CANCEL", 200, self._ss_call.peer)
        return cancel_cb(rtime, req)

    def _ss_no_ack(self, noack_cb: Callable[[], Any]) -> Any:
        self._ss_metrics.transaction_timeout("ACK", None if self._ss_call is None else self._ss_call.peer)
        self._ss_bye_reason = "error"
        return noack_cb()

    # --- the UAC side: our INVITE and its responses; our other requests -------------------

    def recvEvent(self, event: Any) -> None:
        if self.state is None and self._ss_call is None and isinstance(event, CCEventTry):
            next_hop = self.rAddr0[0] if self.rAddr0 is not None else None
            self._ss_call = InviteClock(self._ss_metrics, "outbound", self._ss_peer(next_hop))
        if self._ss_bye_reason is None:
            if isinstance(event, CCEventDisconnect):
                # relayed from the other leg (its origin is set) or our own disconnect()
                self._ss_bye_reason = "normal" if event.origin is None else "user-hangup"
            elif isinstance(event, CCEventFail | CCEventRedirect):
                self._ss_bye_reason = "error"
        super().recvEvent(event)
        self._ss_hook_cancel()

    def newUacTransaction(self, req: Any, **kwargs: Any) -> None:
        call = self._ss_call
        initial = call is not None and call.direction == "outbound" and not call.answered and not self.isConnected()
        if initial and call is not None and self._ss_invite_tr is not None:
            call.restart()  # the INVITE retried after a challenge: a new transaction
        super().newUacTransaction(req, **kwargs)
        if initial:
            self._ss_invite_tr = self.tr
            self._ss_cancel_hooked = False

    def recvResponse(self, resp: Any, tr: Any) -> None:
        call = self._ss_call
        if call is not None and tr is self._ss_invite_tr and not (self.state is None or self.state.dead):
            if resp is tr.r408:  # Timer B: Sippy made this 408 up, none came
                call.timed_out()
            else:
                call.response(resp.getSCode()[0])
        super().recvResponse(resp, tr)
        self._ss_hook_cancel()

    def _ss_hook_cancel(self) -> None:
        """Sippy's transaction layer sends our CANCEL with no callback; give it one, so its
        final response (`request_result`) or its Timer F (`transaction_timeout`) is counted."""
        tr = self._ss_invite_tr
        if self._ss_cancel_hooked or tr is None or tr.cancel is None:
            return
        manager = self.global_config["_sip_tm"]
        cancel_tr = manager.tclient.get(tr.cancel.getTId(True, True))
        if cancel_tr is None or cancel_tr.resp_cb is not None:
            return  # not sent yet (it waits for a provisional response), or not ours to hook
        self._ss_cancel_hooked = True
        cancel_tr.resp_cb = partial(self._ss_response_received, "CANCEL", None)
        cancel_tr.cb_ifver = 2
        cancel_tr.r408 = tr.cancel.genResponse(408, "Request Timeout")

    def newTransaction(self, req: Any, req_extra_headers: Any = None, **kwargs: Any) -> Any:
        method = req.getMethod()
        if self._ss_call is not None and method not in _NOT_COUNTED_HERE:
            if method == "BYE":
                reason = self._ss_bye_reason or "error"  # a BYE without a cause: a failed 2xx or SDP
                self._ss_metrics.bye(self._ss_call.direction, "local", reason)
            theirs = (kwargs.pop("resp_cb", None), kwargs.pop("cb_ifver", 1))
            kwargs["resp_cb"] = partial(self._ss_response_received, method, theirs)
            kwargs["cb_ifver"] = 2
        return super().newTransaction(req, req_extra_headers, **kwargs)

    def _ss_response_received(self, method: str, theirs: tuple[Any, int] | None, resp: Any, tr: Any) -> None:
        code = resp.getSCode()[0]
        if self._ss_call is not None:
            if resp is tr.r408:
                self._ss_metrics.transaction_timeout(method, self._ss_call.peer)
            elif code >= 200:
                self._ss_metrics.request_result(self._ss_call.direction, method, code, self._ss_call.peer)
        if theirs is not None and theirs[0] is not None:
            callback, version = theirs
            if version == 1:
                callback(resp)
            else:
                callback(resp, tr)

    # --- the end of the call, however it ends ----------------------------------------------

    def changeState(self, newstate: Any) -> None:
        super().changeState(newstate)
        call = self._ss_call
        if call is not None and call.answered and not self.state.connected:
            call.ended(**self.call_qos())


def metered_requests(
    recv_request: Callable[[Any, Any], Any], metrics: SipMetrics | None = None
) -> Callable[[Any, Any], Any]:
    """Wrap the application's `SipTransactionManager` request callback so that its answers to
    requests outside any dialog (OPTIONS, REGISTER, a 481 to a stray BYE) are counted as
    `request_result("inbound", method, code)`. INVITEs go on to their `MeteredUA`."""
    recorder = metrics if metrics is not None else sip_statsd.default()

    def sent(method: str, resp: Any) -> None:
        code = resp.getSCode()[0]
        if code >= 200:
            recorder.request_result("inbound", method, code)

    def recv(req: Any, sip_t: Any) -> Any:
        method = req.getMethod()
        if method not in _NOT_COUNTED_HERE:
            sip_t.res_out_cb = partial(sent, method)
        return recv_request(req, sip_t)

    return recv
