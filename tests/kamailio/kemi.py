"""The KEMI script of tests/test_kamailio.py: a stateful proxy that relays to the Request-URI.

Environment: KEMI_CONFIGURE_IN ("mod_init", "child_init"; for benchmarks/kamailio_cpu.py also
"none": no metrics at all (KEMI_DIALOG=1: with the dialog tracking the integration does), and
"statsd": the same events counted by Kamailio's own C statsd module instead), KEMI_DELIVERY
("shared", the integration's default, or "host"), KEMI_HOST and KEMI_PORT (the receiver),
KEMI_SILENT_PORT; KEMI_PEER_MAP ("name=host:port,..."): the next hops' peer names (with
SIP_STATSD_PEERS naming the same); KEMI_REGISTRAR: answer REGISTERs here (registrar + usrloc,
no auth module: user `auth` gets a 401 without credentials, `deny` a 403, `drop` nothing at all).
"""

import os

import KSR

CONFIGURE_IN = os.environ.get("KEMI_CONFIGURE_IN", "child_init")
SILENT_PORT = os.environ.get("KEMI_SILENT_PORT")  # the callee that never answers: a 1 s timeout
PEER_MAP = dict(reversed(item.split("=", 1)) for item in os.environ.get("KEMI_PEER_MAP", "").split(",") if "=" in item)
REGISTRAR = bool(os.environ.get("KEMI_REGISTRAR"))
OPTIONS = {
    "host": os.environ.get("KEMI_HOST", "127.0.0.1"),
    "port": int(os.environ.get("KEMI_PORT", "8125")),
    "delivery": os.environ.get("KEMI_DELIVERY", "shared"),
}
DIALOG = os.environ.get("KEMI_DIALOG") == "1"

if CONFIGURE_IN == "none":

    class Base:
        def child_init(self, rank):
            return 0

        def ksr_reply_route(self, msg):
            return 1

        def ksr_onsend_route(self, msg):
            return 1

        def ksr_metrics_dialog(self, msg, event):
            return 1

        def ksr_metrics_timer(self, msg, *event):
            return 1

        def metrics_request(self):
            if DIALOG and KSR.pv.get("$rm") == "INVITE" and KSR.siputils.has_totag() < 0:
                KSR.dialog.dlg_manage()

else:
    from sip_statsd.integrations import kamailio
    from sip_statsd.integrations.kamailio import KemiMetrics as Base

if CONFIGURE_IN == "statsd":

    class ViaStatsdModule:
        """The integration's calls, made through Kamailio's C statsd module (KSR.statsd)."""

        def __getattr__(self, name):
            import sip_statsd

            return getattr(sip_statsd, name)  # the constants

        def configure(self, **options):
            pass

        def flush(self, timeout=None):
            return True

        def host_tick(self, recorded=False, metrics=None):
            pass

        def invite_result(self, direction, code, peer=None):
            KSR.statsd.statsd_incr(f"sip_invite_result_total.{direction}.{code // 100}xx")
            KSR.statsd.statsd_incr(f"sip_invite_response_total.{direction}.{code}")

        def observe_setup_delay(self, direction, delay_ms, success, peer=None):
            result = "success" if success else "failure"
            KSR.statsd.statsd_histogram(f"sip_session_request_delay_ms.{direction}.{result}", str(int(delay_ms)))

        def bye(self, direction, by, reason):
            KSR.statsd.statsd_incr(f"sip_bye_total.{direction}.{by}.{reason}")

        def request_result(self, direction, method, code, peer=None):
            KSR.statsd.statsd_incr(f"sip_request_result_total.{direction}.{method}.{code // 100}xx")

        def transaction_timeout(self, method, peer=None):
            KSR.statsd.statsd_incr(f"sip_transaction_timeout_total.{method}")

        def call_started(self, direction, peer=None):
            KSR.statsd.statsd_gauge(f"sip_active_calls.{direction}", "+1")

        def call_ended(self, direction, duration_s=None, peer=None):
            KSR.statsd.statsd_gauge(f"sip_active_calls.{direction}", "-1")
            if duration_s is not None:
                KSR.statsd.statsd_histogram(f"sip_call_duration_s.{direction}", str(int(duration_s * 1000)))

    kamailio.sip_statsd = ViaStatsdModule()


class Router(Base):
    metrics_peer_map = PEER_MAP

    def child_init(self, rank):
        if CONFIGURE_IN in ("child_init", "statsd") and self._metrics_options is None:
            self.metrics_setup(**OPTIONS)  # in every process, the main one (rank 0) between its forks
        return super().child_init(rank)

    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if REGISTRAR and KSR.pv.get("$rm") == "REGISTER":
            return self.register()
        self.metrics_request()
        if SILENT_PORT and KSR.pv.get("$rp") == int(SILENT_PORT):
            KSR.tm.t_set_fr(0, 1000)
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def register(self):
        """A registrar without an auth module: the user part decides what a REGISTER gets."""
        user = (KSR.pv.get("$fU") or "").split("-")[0]
        if user == "drop":
            return 1  # no answer: the client's Timer F
        if user == "auth" and KSR.hdr.is_present("Authorization") < 0:
            KSR.hdr.append_to_reply('WWW-Authenticate: Digest realm="test", nonce="abc"\r\n')
            KSR.sl.sl_send_reply(401, "Unauthorized")
            self.metrics_register(401)
        elif user == "deny":
            KSR.sl.sl_send_reply(403, "Forbidden")
            self.metrics_register(403)
        elif KSR.registrar.save("location", 0) > 0:
            self.metrics_register(200)
        else:
            KSR.sl.sl_reply_error()
            self.metrics_register(500)
        return 1  # the contacts: ksr_metrics_contacts, from one rtimer process


def mod_init():
    router = Router()
    if CONFIGURE_IN == "mod_init":
        router.metrics_setup(**OPTIONS)
    return router
