"""Kamailio (app_python3, KEMI): a stateful proxy's SIP events, delivered from Kamailio's own processes.

The smallest addition to a KEMI script: make the script's class inherit `KemiMetrics`, call
`self.metrics_setup(...)` in `mod_init` (before Kamailio forks), and `self.metrics_request()`
in `ksr_request_route` before relaying. The rest (replies, failures, dialog start and end, the
sender) runs in the functions this class defines and arms. docs/events.md has the whole recipe.

    import KSR
    from sip_statsd.integrations import kamailio

    class Router(kamailio.KemiMetrics):
        def ksr_request_route(self, msg):
            self.metrics_request()
            KSR.tm.t_relay()
            return 1

    def mod_init():
        router = Router()
        router.metrics_setup(host="127.0.0.1", port=8125)
        return router

and in kamailio.cfg: `modparam("dialog", "event_callback", "ksr_metrics_dialog")` (calls in
progress and their duration), an `rtimer` timer that runs `ksr_metrics_timer` (the sender) in
a process of its own, and the modules `pv`, `rr`, `sl`, `tm`, `tmx`, `siputils`, `dialog`,
`rtimer` (docs/events.md's recipe also record-routes, which real phones' in-dialog requests need).

Per peer: with peers declared (`SIP_STATSD_PEERS` in Kamailio's environment, read at import),
`metrics_peer()` names the far end of each relayed request: its next hop, `$du` when set (a
dispatcher or `t_relay_to` destination) else the Request-URI, as `host:port` then `host`,
looked up in the class attribute `metrics_peer_map` (`{"10.0.0.5:5060": "carrier-a"}`);
an address not in the map is `other`. Override `metrics_peer()` to name dispatcher sets
(`f"ds{KSR.pv.get('$avp(dsg)')}"`) or anything else. The name rides with the transaction
(`$avp(sst_peer)`) and the dialog (`$dlg_var(sst_peer)`), so replies, timeouts and the
dialog's end count under the peer of their request.

Registrar: `metrics_register(code)` where the script answers a REGISTER (after
`KSR.registrar.save()`, or the 401 of `KSR.auth.auth_challenge`) counts `register_result`, and
`ksr_metrics_contacts`, run by one rtimer process, sets `sip_registered_contacts` to usrloc's
contact count (`$stat(location_contacts)`, what `kamcmd ul.dump` lists): one process sets the
level (with host delivery each process carries its own `kamailio_proc` tag, so only one may):

    loadmodule "rtimer.so"
    modparam("rtimer", "timer", "name=contacts;interval=10;mode=1;")
    modparam("rtimer", "exec", "timer=contacts;route=ksr_metrics_contacts")

What it records (`direction` is the proxy's: `inbound` by default, every request came to us):
- an initial INVITE's first final reply, once per transaction: `invite_result`; its first
  response other than 100: `observe_setup_delay` (success for 101-199 and 2xx, failure for
  4xx-6xx but 401, 402, 407, nothing for 3xx);
- an INVITE or non-INVITE branch that timed out without any reply (tm's fr timers, in a
  timer process): `transaction_timeout(method)`;
- a BYE received in a known dialog: `bye(direction, "remote", "user-hangup")`;
- a non-INVITE request's first final reply (BYE, OPTIONS, REGISTER ...): `request_result`;
- dialog start (its 2xx) and end: `call_started`, `call_ended` with the seconds between.

Not counted: replies the script sends itself (`sl_send_reply`, `t_reply`: call the helpers
there if you want them), a CANCEL's own 200 (tm answers it; the INVITE's 487 is counted),
provisional replies, retransmissions (absorbed by tm, or by the once-per-transaction AVPs).

Delivery: Kamailio holds the GIL between SIP messages, so no thread of ours runs there. The
configuration is `delivery="shared"` (the default here): `metrics_setup()` in `mod_init` makes
the shared mapping before Kamailio forks, every process counts in its own slot of it (no
syscall, no lock), and `ksr_metrics_timer`, run by `rtimer` every interval in a process of its
own, reads every slot and sends. Gauges are one series for the whole proxy. With
`metrics_setup(delivery="host")` (in `mod_init` or `child_init`) each handler that recorded
something sends instead, through `sip_statsd.host_tick(True, metrics)` (a no-op with shared
delivery), with a `kamailio_proc` tag per process on every series. Per-call state lives in
Kamailio (transaction AVPs, dialog variables), since one call's messages land in different
processes; times are CLOCK_MONOTONIC, the same in every process. Kamailio is imported by
name (`KSR`) only when a handler runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import sip_statsd

_AVP_START = "$avp(sst_t0)"  # the initial INVITE's arrival, ms (monotonic), in the transaction
_AVP_FINAL = "$avp(sst_final)"  # a final reply was counted for this transaction
_AVP_DELAY = "$avp(sst_srd)"  # the setup delay was counted for this transaction
_DLG_START = "$dlg_var(sst_t2xx)"  # the dialog's 2xx, ms (monotonic)
_AVP_PEER = "$avp(sst_peer)"  # the peer (next hop) of the transaction, as metrics_peer() named it
_DLG_PEER = "$dlg_var(sst_peer)"  # the peer of the dialog
_NO_DELAY_CODES = frozenset({401, 402, 407})  # RFC 6076 section 4.2: challenges are not failures

REPLY_ROUTE = "ksr_metrics_reply"
FAILURE_ROUTE = "ksr_metrics_failure"
DIALOG_CALLBACK = "ksr_metrics_dialog"
TIMER_ROUTE = "ksr_metrics_timer"  # rtimer's `route=`: the sender, with shared delivery
_IMPORT_PID = os.getpid()  # the script is imported in mod_init, by Kamailio's main process

# What each handler records to, for host_tick: only these families are read and sent at once.
_INVITE_METRICS = (
    sip_statsd.METRIC_INVITE_RESPONSE_TOTAL,
    sip_statsd.METRIC_INVITE_RESULT_TOTAL,
    sip_statsd.METRIC_SESSION_REQUEST_DELAY_MS,
)
_REQUEST_METRICS = (sip_statsd.METRIC_REQUEST_RESULT_TOTAL,)
_BYE_METRICS = (sip_statsd.METRIC_BYE_TOTAL,)
_TIMEOUT_METRICS = (sip_statsd.METRIC_TRANSACTION_TIMEOUT_TOTAL,)
_DIALOG_METRICS = (sip_statsd.METRIC_ACTIVE_CALLS, sip_statsd.METRIC_CALL_DURATION_S)
_REGISTER_METRICS = (sip_statsd.METRIC_REGISTER_RESULT_TOTAL,)
_CONTACTS_METRICS = (sip_statsd.METRIC_REGISTERED_CONTACTS,)


def _ksr() -> Any:
    import KSR  # type: ignore[import-not-found]  # only inside Kamailio

    return KSR


def _now_ms() -> float:
    return time.monotonic() * 1000.0


def process_tag(rank: int) -> str:
    """A constant tag value naming this Kamailio process, so gauges from each add up.

    SIP workers have a rank of their own (1, 2, ...): stable across restarts. The main
    process is 0; timer and other processes share negative ranks, so they are told apart by pid.
    """
    return f"{rank}" if rank > 0 else f"{rank}.{os.getpid()}".replace("-", "m")


class KemiMetrics:
    """A base for the KEMI script's class: SIP events of a stateful proxy, counted and delivered."""

    metrics_direction: str = sip_statsd.DIRECTION_INBOUND
    # The next hop's "host:port" or "host" -> its peer name (declared in SIP_STATSD_PEERS).
    metrics_peer_map: Mapping[str, str] = {}
    metrics_contacts_stat: str = "$stat(location_contacts)"
    _metrics_options: dict[str, Any] | None = None

    # --- configuration --------------------------------------------------------------------

    _metrics_rank: int | None = None

    def metrics_setup(self, **options: Any) -> None:
        """Configure sip_statsd for Kamailio now: in `mod_init`, before Kamailio forks.

        `options` are `sip_statsd.configure`'s; `delivery` is "shared" unless given (then
        this must run in mod_init: the shared mapping is made here and inherited by every
        process; RuntimeError otherwise). With `delivery="host"` it may run in child_init
        too, and `child_init` configures again with this process's tag (`kamailio_proc`).
        """
        options = dict(options)
        options.setdefault("delivery", "shared")
        if options["delivery"] == "shared" and (os.getpid() != _IMPORT_PID or self._metrics_rank is not None):
            raise RuntimeError(
                "sip_statsd.integrations.kamailio: metrics_setup() with shared delivery must run in "
                "mod_init, before Kamailio forks (its shared mapping is inherited by every process); "
                "move it there, or pass delivery='host' to configure in child_init"
            )
        self._metrics_options = options
        sip_statsd.configure(**self._configure_options(None))

    def _configure_options(self, rank: int | None) -> dict[str, Any]:
        options = dict(self._metrics_options or {})
        if rank is not None and options["delivery"] != "shared":
            tags = options.get("constant_tags") or {}
            tags = dict(tags) if isinstance(tags, dict) else dict(t.split(":", 1) for t in tags)
            tags["kamailio_proc"] = process_tag(rank)
            options["constant_tags"] = tags
        return options

    def child_init(self, rank: int) -> int:
        """Kamailio calls this in every process (rank 0: the main one, between its forks).

        With shared delivery: this process claims its slot of the shared counts (once).
        """
        self._metrics_rank = rank
        if self._metrics_options is not None:
            sip_statsd.configure(**self._configure_options(rank))
        return 0

    def ksr_metrics_timer(self, msg: Any, *event: Any) -> int:
        """The sender (rtimer's route, every interval, in a process of its own): every process's counts."""
        sip_statsd.flush(0.0)
        return 1

    # --- KEMI functions Kamailio needs defined --------------------------------------------

    def ksr_reply_route(self, msg: Any) -> int:
        """Without it every reply leaves an exception pending that breaks the next KSR call."""
        return 1

    def ksr_onsend_route(self, msg: Any) -> int:
        return 1

    # --- the request route ------------------------------------------------------------------

    def metrics_peer(self) -> str | None:
        """The peer of the request about to be relayed: its next hop, mapped by `metrics_peer_map`.

        None (counted as `other` where peers are declared) for a next hop not in the map.
        """
        if not self.metrics_peer_map:
            return None
        ksr = _ksr()
        if ksr.pv.get("$du"):
            host, port = ksr.pv.get("$dd"), ksr.pv.get("$dp")
        else:
            host, port = ksr.pv.get("$rd"), ksr.pv.get("$rp")
        found = self.metrics_peer_map.get(f"{host}:{port}")
        return found if found is not None else self.metrics_peer_map.get(str(host))

    def metrics_request(self) -> None:
        """Call in `ksr_request_route` for every request, before relaying it (stateful: t_relay)."""
        ksr = _ksr()
        method = ksr.pv.get("$rm")
        in_dialog = ksr.siputils.has_totag() > 0
        if method in {"ACK", "CANCEL"}:
            return
        peer = self.metrics_peer()
        if peer is not None:
            ksr.pv.sets(_AVP_PEER, peer)
        if method == "INVITE" and not in_dialog:
            ksr.pv.sets(_AVP_START, f"{_now_ms():.3f}")
            ksr.dialog.dlg_manage()
            if peer is not None:
                ksr.pv.sets(_DLG_PEER, peer)
        elif method == "BYE" and in_dialog:
            ksr.dialog.dlg_manage()
            if ksr.tm.t_newtran() <= 0:
                return  # a retransmission, absorbed by tm (or no transaction: nothing to count)
            if ksr.dialog.is_known_dlg() > 0:
                sip_statsd.bye(self.metrics_direction, sip_statsd.BY_REMOTE, sip_statsd.BYE_REASON_USER_HANGUP)
                sip_statsd.host_tick(True, _BYE_METRICS)
        ksr.tm.t_on_reply(REPLY_ROUTE)
        ksr.tm.t_on_failure(FAILURE_ROUTE)

    # --- armed by metrics_request ----------------------------------------------------------

    def ksr_metrics_reply(self, msg: Any) -> int:
        self.metrics_reply()
        return 1

    def ksr_metrics_failure(self, msg: Any) -> int:
        self.metrics_failure()
        return 1

    def ksr_metrics_contacts(self, msg: Any, event: Any = None) -> int:
        """rtimer's route (it passes the message and the timer's event name)."""
        self.metrics_contacts()
        return 1

    def ksr_metrics_dialog(self, msg: Any, event: str) -> int:
        self.metrics_dialog(event)
        return 1

    def metrics_reply(self) -> None:
        """A reply to a request relayed statefully (tm's onreply route)."""
        ksr = _ksr()
        code = int(ksr.pv.get("$rs"))
        method = ksr.pv.get("$rm")
        peer = ksr.pv.get(_AVP_PEER)
        recorded: tuple[str, ...] | None = None
        if method == "INVITE":
            start = ksr.pv.get(_AVP_START)
            if start is None:
                return  # a re-INVITE: not an initial INVITE's outcome
            if code > 100 and ksr.pv.is_null(_AVP_DELAY):
                ksr.pv.seti(_AVP_DELAY, 1)
                if code < 300 or (code >= 400 and code not in _NO_DELAY_CODES):
                    delay = max(0.0, _now_ms() - float(start))
                    sip_statsd.observe_setup_delay(self.metrics_direction, delay, code < 300, peer)
                    recorded = _INVITE_METRICS
            if code >= 200 and ksr.pv.is_null(_AVP_FINAL):
                ksr.pv.seti(_AVP_FINAL, 1)
                sip_statsd.invite_result(self.metrics_direction, code, peer)
                recorded = _INVITE_METRICS
        elif code >= 200 and ksr.pv.is_null(_AVP_FINAL):
            ksr.pv.seti(_AVP_FINAL, 1)
            sip_statsd.request_result(self.metrics_direction, method, code, peer)
            recorded = _REQUEST_METRICS
        if recorded is not None:
            sip_statsd.host_tick(True, recorded)

    def metrics_failure(self) -> None:
        """Every branch failed (tm's failure route): a branch that timed out without any reply is a timeout."""
        ksr = _ksr()
        if ksr.tm.t_branch_timeout() > 0 and ksr.tm.t_branch_replied() < 0:
            sip_statsd.transaction_timeout(ksr.pv.get("$rm"), ksr.pv.get(_AVP_PEER))
            sip_statsd.host_tick(True, _TIMEOUT_METRICS)

    def metrics_dialog(self, event: str) -> None:
        """The dialog module's event callback: `dialog:start` (its 2xx) and `dialog:end`."""
        ksr = _ksr()
        peer = ksr.pv.get(_DLG_PEER)
        if event == "dialog:start":
            ksr.pv.sets(_DLG_START, f"{_now_ms():.3f}")
            sip_statsd.call_started(self.metrics_direction, peer)
        elif event == "dialog:end":
            start = ksr.pv.get(_DLG_START)
            duration = None if start is None else max(0.0, (_now_ms() - float(start)) / 1000.0)
            sip_statsd.call_ended(self.metrics_direction, duration, peer)
        else:
            return
        sip_statsd.host_tick(True, _DIALOG_METRICS)

    # --- a registrar ---------------------------------------------------------------------------

    def metrics_register(self, code: int) -> None:
        """The script answered a REGISTER with `code` (200 after save(), 401 challenge, 403 ...)."""
        sip_statsd.register_result(self.metrics_direction, code)
        sip_statsd.host_tick(True, _REGISTER_METRICS)

    def metrics_contacts(self) -> None:
        """Set sip_registered_contacts to usrloc's count of contacts (one series for the host)."""
        count = _ksr().pv.get(self.metrics_contacts_stat)
        if count is not None:
            sip_statsd.registered_contacts(int(count))
            sip_statsd.host_tick(True, _CONTACTS_METRICS)
