"""Kamailio with declared peers under sipp: every per-peer series equals sipp's counts for that peer.

Six callees behind the proxy, five of them declared peers (`SIP_STATSD_PEERS`, the KEMI
script's `metrics_peer_map` naming their addresses) and one not (`other`); one sipp client per
callee, each with its own number of calls. Then Kamailio as a registrar: REGISTER outcomes
(successes, 401 challenges, 403s; timeouts are the client's, the registrar sees nothing to
count) equal sipp's, and `sip_registered_contacts` equals `kamcmd ul.dump`'s contacts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import free_port
from kamailio_harness import RTIMER, Kamailio, require_kamailio_or_skip
from sipp_harness import SippRun, finish_sipp, scenario, start_sipp

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver, Totals

_SKIP = require_kamailio_or_skip()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

PEERS = ("carrier-a", "carrier-b", "carrier-c", "gw-1", "gw-2")
CALLS = {"carrier-a": 3, "carrier-b": 4, "carrier-c": 5, "gw-1": 6, "gw-2": 7, "other": 8}
DEADLINE = 5.0


def per_peer(t: Totals, peer: str) -> dict[str, float | None]:
    inbound = {"direction": "inbound", "peer": peer}
    return {
        "invite 2xx": t.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx", **inbound),
        "invite code 200": t.count(sm.METRIC_INVITE_RESPONSE_TOTAL, code="200", **inbound),
        "BYE 2xx": t.count(sm.METRIC_REQUEST_RESULT_TOTAL, method="BYE", code_class="2xx", **inbound),
        "setup delay success": len(t.sample_list(sm.METRIC_SESSION_REQUEST_DELAY_MS, result="success", **inbound)),
        "call durations": len(t.sample_list(sm.METRIC_CALL_DURATION_S, **inbound)),
        "calls in progress": t.gauge(sm.METRIC_ACTIVE_CALLS, **inbound),
    }


def from_sipp(run: SippRun) -> dict[str, float | None]:
    n = run.calls("SuccessfulCall")
    return {
        "invite 2xx": n,
        "invite code 200": n,
        "BYE 2xx": n,
        "setup delay success": n,
        "call durations": n,
        "calls in progress": 0,
    }


def test_kamailio_counts_every_series_per_peer(tmp_path: Path) -> None:
    ports = {peer: free_port() for peer in CALLS}
    peer_map = ",".join(f"{peer}=127.0.0.1:{ports[peer]}" for peer in PEERS)  # `other`'s callee: not mapped
    with Receiver() as receiver:
        port = free_port()
        env = {
            **os.environ,
            "SIP_STATSD_PEERS": ",".join(PEERS),
            "KEMI_PEER_MAP": peer_map,
            "KEMI_CONFIGURE_IN": "mod_init",  # shared delivery, the integration's default
            "KEMI_HOST": receiver.host,
            "KEMI_PORT": str(receiver.port),
        }
        proxy = Kamailio(tmp_path, port, env, extra=RTIMER)
        servers, clients = [], []
        try:
            for peer, target in ports.items():
                where = tmp_path / f"uas_{peer}"
                where.mkdir()
                servers.append(start_sipp(where, "-sf", str(scenario("kamailio_uas_answer", where)), "-p", str(target)))
            for peer, target in ports.items():
                where = tmp_path / f"uac_{peer}"
                where.mkdir()
                args = ["-sf", str(scenario("kamailio_uac_answer", where, hold_ms=100)), "-p", str(free_port())]
                args += ["-rsa", f"127.0.0.1:{port}", f"127.0.0.1:{target}", "-m", str(CALLS[peer]), "-r", "20"]
                clients.append((peer, where, start_sipp(where, *args)))
            runs = {peer: finish_sipp(process, where) for peer, where, process in clients}
        finally:
            for server in servers:
                server.kill()
                server.communicate()
        try:
            for peer, run in runs.items():
                assert run.returncode == 0, run.log
                assert run.calls("SuccessfulCall") == CALLS[peer], run.log
            expected = {peer: from_sipp(run) for peer, run in runs.items()}
            totals = receiver.wait_for(lambda t: all(per_peer(t, p) == expected[p] for p in expected), timeout=DEADLINE)
            table = [f"{'peer':10} {'series':20} {'sipp':>5} {'received':>9}"]
            for peer in CALLS:
                got = per_peer(totals, peer)
                table += [f"{peer:10} {k:20} {expected[peer][k]!s:>5} {got[k]!s:>9}" for k in got]
            print("\n".join(table))
            for peer in CALLS:
                assert per_peer(totals, peer) == expected[peer], (peer, proxy.log())
            assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL) == sum(CALLS.values())
            assert totals.count(sm.METRIC_DROPPED_INPUTS_TOTAL) == 0
        finally:
            proxy.close()


REGISTERS = {"ok": 12, "auth": 5, "deny": 4, "drop": 3}  # sipp clients per From user: REGISTERs each


def test_kamailio_registrar_counts_outcomes_and_contacts(tmp_path: Path) -> None:
    modules, _, params = RTIMER.partition("\n--\n")  # the sender's timer, then the registrar's
    extra = "\n".join(
        (
            modules,
            'loadmodule "usrloc.so"',
            'loadmodule "registrar.so"',
            "--",
            params,
            'modparam("usrloc", "db_mode", 0)',
            'modparam("usrloc", "preload", "location")',  # KEMI: no save("location") for the parser to see
            # The integration's recipe: the contact count from one rtimer process, every second here.
            'modparam("rtimer", "timer", "name=contacts;interval=1;mode=1;")',
            'modparam("rtimer", "exec", "timer=contacts;route=ksr_metrics_contacts")',
        )
    )
    with Receiver() as receiver:
        port = free_port()
        env = {
            **os.environ,
            "KEMI_REGISTRAR": "1",
            "KEMI_CONFIGURE_IN": "mod_init",
            "KEMI_HOST": receiver.host,
            "KEMI_PORT": str(receiver.port),
        }
        proxy = Kamailio(tmp_path, port, env, extra=extra)
        try:
            runs = {}
            for user, n in REGISTERS.items():
                where = tmp_path / f"reg_{user}"
                where.mkdir()
                retrans = 'retrans="500"' if user != "drop" else ""
                scen = scenario("uac_register", where, user=user, retrans=retrans, steps=_STEPS[user])
                args = ["-sf", str(scen), "-p", str(free_port()), f"127.0.0.1:{port}", "-m", str(n), "-r", "20"]
                runs[user] = finish_sipp(start_sipp(where, *args, timeout=30), where)
            for user, run in runs.items():  # sipp counts a REGISTER without an answer as a failed call
                kind = "FailedCall" if user == "drop" else "SuccessfulCall"
                assert run.calls(kind) == REGISTERS[user], (user, run.log)
            dump = proxy.rpc("ul.dump").stdout
            contacts = len(re.findall(r"^\s*Address: ", dump, re.M))
            want = {
                "success": REGISTERS["ok"] + REGISTERS["auth"],  # a challenge answered, then a 200
                "challenged": REGISTERS["auth"],
                "failure": REGISTERS["deny"],
                "timeout": 0,  # sipp's timeouts (FailedCall): the registrar answered nothing, so counts none
            }

            def got(t: Totals) -> dict[str, float]:
                return {r: t.count(sm.METRIC_REGISTER_RESULT_TOTAL, result=r) for r in want}

            totals = receiver.wait_for(
                lambda t: got(t) == want and t.gauge(sm.METRIC_REGISTERED_CONTACTS) == contacts, timeout=DEADLINE
            )
            print(f"register results sipp {want} received {got(totals)}; contacts ul.dump {contacts} "
                  f"received {totals.gauge(sm.METRIC_REGISTERED_CONTACTS)}")  # fmt: skip
            assert got(totals) == want
            assert contacts == want["success"]  # one contact per successful REGISTER (its own AoR and Contact)
            assert totals.gauge(sm.METRIC_REGISTERED_CONTACTS) == contacts
        finally:
            proxy.close()


_AUTHORIZED = """
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:auth-[call_number]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:auth-[call_number]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:auth-[call_number]@[local_ip]:[local_port]>
      Authorization: Digest username="auth", realm="test", nonce="abc", uri="sip:[remote_ip]", response="0"
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>"""
_STEPS = {
    "ok": '<recv response="200"/>',
    "auth": '<recv response="401"/>' + _AUTHORIZED,
    "deny": '<recv response="403"/>',
    "drop": '<recv response="200" timeout="300"/>',
}
