"""examples/register.py under sipp registrars: registration outcomes and RRD samples equal sipp's counts.

Four registrars: sipp answering 200, sipp challenging with 401 then answering 200, sipp
answering 403, and a socket that answers nothing (Timer F). What arrives equals what sipp
sent: `success` per 200, `challenged` per 401, `failure` per 403, a `timeout` per REGISTER
nobody answered; one RRD sample per attempt with a final response (the challenged ones from
their first REGISTER), none for the timeouts.
"""

from __future__ import annotations

import socket
from pathlib import Path

import test_examples_sipp as ex
from conftest import free_port
from sipp_harness import finish_sipp, scenario, start_sipp

from sip_statsd._wire.receiver import Receiver

start, _sipp_installed = ex.start, ex._sipp_installed  # the fixtures, by name here

HEAD = """[last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0"""
OK = f"<send><![CDATA[\n      SIP/2.0 200 OK\n      {HEAD}\n    ]]></send>"
CHALLENGE = (
    "<send><![CDATA[\n      SIP/2.0 401 Unauthorized\n"
    '      WWW-Authenticate: Digest realm="test", nonce="abc"\n'
    f"      {HEAD}\n    ]]></send>\n"
    f'  <recv request="REGISTER"/>\n  {OK}'
)
DENY = f"<send><![CDATA[\n      SIP/2.0 403 Forbidden\n      {HEAD}\n    ]]></send>"
COUNTS = {"ok": 6, "auth": 5, "deny": 4, "silent": 3}
OUT = "direction:outbound"


def test_registration_outcomes_and_rrd_equal_sipps(start, tmp_path: Path, receiver: Receiver) -> None:
    runs = {}
    for name, steps in (("ok", OK), ("auth", CHALLENGE), ("deny", DENY)):
        where = tmp_path / name
        where.mkdir()
        port = free_port()
        server = start_sipp(where, "-sf", str(scenario("uas_registrar", where, steps=steps)), "-p", str(port),
                            "-m", str(COUNTS[name]))  # fmt: skip
        summary = start("register.py", f"127.0.0.1:{port}", "--count", str(COUNTS[name])).wait()
        assert summary == {"registers": COUNTS[name], "dropped_inputs": 0, "send_errors": 0}
        runs[name] = finish_sipp(server, where)
        assert runs[name].calls("SuccessfulCall") == COUNTS[name], runs[name].log
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes every REGISTER, answers none
        silent.bind(("127.0.0.1", 0))
        summary = start("register.py", f"127.0.0.1:{silent.getsockname()[1]}", "--count", str(COUNTS["silent"])).wait()
    assert summary["registers"] == COUNTS["silent"]

    def sent(name: str, code: str) -> int:
        return sum(runs[name].messages(code, "Sent"))

    ok = sent("ok", "200") + sent("auth", "200")
    expected = {
        f"sip_register_result_total{{{OUT},result:success}}": ok,
        f"sip_register_result_total{{{OUT},result:challenged}}": sent("auth", "401"),
        f"sip_register_result_total{{{OUT},result:failure}}": sent("deny", "403"),
        f"sip_register_result_total{{{OUT},result:timeout}}": COUNTS["silent"],
        f"sip_registration_request_delay_ms{{{OUT},result:success}}|n": ok,
        f"sip_registration_request_delay_ms{{{OUT},result:failure}}|n": sent("deny", "403"),
    }
    got = ex.arrived(receiver)
    print("\n".join(f"{k:75} sipp {v:>3} received {got.get(k)}" for k, v in expected.items()))
    assert got == expected
