"""The KEMI script of tests/test_kamailio.py: a stateful proxy that relays to the Request-URI.

Environment: KEMI_CONFIGURE_IN ("mod_init", "child_init" or "none": no metrics at all, for
the CPU benchmark), KEMI_HOST and KEMI_PORT (the receiver).
"""

import os

import KSR

CONFIGURE_IN = os.environ.get("KEMI_CONFIGURE_IN", "child_init")
OPTIONS = {"host": os.environ.get("KEMI_HOST", "127.0.0.1"), "port": int(os.environ.get("KEMI_PORT", "8125"))}

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

        def metrics_request(self):
            if KSR.pv.get("$rm") == "INVITE" and KSR.siputils.has_totag() < 0:
                KSR.dialog.dlg_manage()

else:
    from sip_statsd.integrations.kamailio import KemiMetrics as Base


class Router(Base):
    def child_init(self, rank):
        if CONFIGURE_IN == "child_init" and self._metrics_options is None:
            self.metrics_setup(**OPTIONS)  # in every process, the main one (rank 0) between its forks
        return super().child_init(rank)

    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        self.metrics_request()
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1


def mod_init():
    router = Router()
    if CONFIGURE_IN == "mod_init":
        router.metrics_setup(**OPTIONS)
    return router
