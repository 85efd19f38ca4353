"""Sippy's B2BUA with `sip_statsd.integrations.sippy`, between two sipps: both legs equal sipp's counts.

examples/sippy_b2bua.py (a small B2BUA on Sippy, wired as the docs show) takes calls from sipp
callers and sends each on, by request-URI user, to a sipp callee: answered and hung up by the
caller, answered and hung up by the callee, refused 486, cancelled while ringing; and to a
socket that never answers (Sippy's Timer B, fixed at 32 s, runs while the others do). The A
leg's series (inbound) are compared with the caller sipps' counts, the O leg's (outbound) with
the callee sipps', the timeouts with the INVITEs that reached the silent socket.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from conftest import free_port
from sipp_harness import Example, SippRun, finish_sipp, require_sipp_or_skip, scenario, start_sipp
from test_examples_sipp import arrived, bye, example_env, final, request, series, timeout

from sip_statsd._wire.receiver import Receiver

N = 10  # calls per outcome
TIMED_OUT = 3


def _sippy_or_skip() -> None:
    reason = require_sipp_or_skip()
    if reason is None and sys.version_info[:2] != (3, 11):
        reason = "Sippy is pure Python: its sipp test runs on CPython 3.11 only (CI time)"
    if reason is None:
        try:
            import sippy  # noqa: F401
        except ImportError:
            if os.environ.get("CI"):
                raise
            reason = "sippy not installed (python -m pip install '.[sippy]' from a checkout)"
    if reason:
        pytest.skip(reason)


def summed(*parts: dict[str, int]) -> dict[str, int]:
    """Expected series from several outcomes: 486, 487 and 408 share `code_class:4xx`."""
    total: dict[str, int] = {}
    for part in parts:
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    return total


def options_barrier(address: str) -> None:
    """An OPTIONS answered by the B2BUA: everything that reached its socket before was handled."""
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5.0)
        me = f"127.0.0.1:{s.getsockname()[1]}"
        s.sendto(
            (
                f"OPTIONS sip:b2bua@{address} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-barrier\r\n"
                f"From: <sip:test@{me}>;tag=barrier\r\nTo: <sip:b2bua@{address}>\r\nCall-ID: barrier@test\r\n"
                f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            (host, int(port)),
        )
        assert s.recv(4096).startswith(b"SIP/2.0 200"), "the B2BUA did not answer the OPTIONS"


def invites_at(silent: socket.socket) -> int:
    """How many INVITEs (distinct Call-IDs) reached the socket that never answers."""
    silent.setblocking(False)
    call_ids = set()
    while True:
        try:
            data = silent.recv(65536)
        except BlockingIOError:
            return len(call_ids)
        if data.startswith(b"INVITE "):
            call_ids.update(line for line in data.split(b"\r\n") if line.lower().startswith((b"call-id:", b"i:")))


def test_both_legs_of_sippy_b2bua_equal_sipp(tmp_path: Path, receiver: Receiver) -> None:
    _sippy_or_skip()
    dirs = {name: tmp_path / name for name in ("answer", "hangup", "busy", "noanswer", "timeout")}
    for path in dirs.values():
        (path / "caller").mkdir(parents=True)  # each sipp writes its CSV files in a directory of its own
    ports = {name: free_port() for name in dirs if name != "timeout"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        sip_port = free_port()
        routes = [arg for name, port in ports.items() for arg in ("--route", f"{name}=127.0.0.1:{port}")]
        b2bua = Example(
            tmp_path,
            "sippy_b2bua.py",
            *("--port", str(sip_port), "--next-hop", f"127.0.0.1:{silent.getsockname()[1]}", *routes),
            *("--statsd", receiver.address, "--flush-interval", "0.2"),
            env=example_env(),
            t1_ms=None,
        )
        try:
            callee_scenarios = {
                "answer": scenario("uas_answer", dirs["answer"], lost=0),
                "hangup": scenario("uas_hangup_invite", dirs["hangup"]),
                "busy": scenario("uas_reject", dirs["busy"]),
                "noanswer": scenario("uas_ring", dirs["noanswer"]),
            }
            callees = {
                name: start_sipp(dirs[name], "-sf", str(path), "-p", str(ports[name]), "-m", str(N), timeout=80)
                for name, path in callee_scenarios.items()
            }
            se = ("-key", "session_expires", "1800")
            timed = start_sipp(
                dirs["timeout"] / "caller",
                *("-sf", str(scenario("uac_reject", dirs["timeout"] / "caller", code=408)), *se),
                *("-s", "timeout", "-m", str(TIMED_OUT), "-r", "10", b2bua.address),
                timeout=70,
            )
            callers: dict[str, SippRun] = {}
            for name, how in (
                ("answer", ("-sn", "uac", "-d", "20")),
                ("hangup", ("-sf", str(scenario("uac_callee_bye", dirs["hangup"] / "caller")), *se)),
                ("busy", ("-sf", str(scenario("uac_reject", dirs["busy"] / "caller", code=486)), *se)),
                ("noanswer", ("-sf", str(scenario("uac_cancel", dirs["noanswer"] / "caller")))),
            ):
                caller = dirs[name] / "caller"
                process = start_sipp(caller, *how, "-s", name, "-m", str(N), "-r", "50", b2bua.address)
                callers[name] = finish_sipp(process, caller)
            callers["timeout"] = finish_sipp(timed, dirs["timeout"] / "caller")
            called = {name: finish_sipp(process, dirs[name]) for name, process in callees.items()}
            options_barrier(b2bua.address)
            summary = b2bua.stop()
        finally:
            b2bua.kill()
        timed_out = invites_at(silent)

    for run in (*callers.values(), *called.values()):
        assert run.returncode == 0, run.log
        assert run.calls("FailedCall") == 0, run.log
    assert timed_out == TIMED_OUT
    a, o = callers, called
    answered_in = a["answer"].messages("200")[0] + a["hangup"].messages("200")[0]
    answered_out = o["answer"].messages("200", "Sent")[0] + o["hangup"].messages("200", "Sent")[0]
    finals = summed(
        final("inbound", 200, answered_in),
        final("inbound", 486, a["busy"].messages("486")[0]),
        final("inbound", 487, a["noanswer"].messages("487")[0]),
        final("inbound", 408, a["timeout"].messages("408")[0]),
        final("outbound", 200, answered_out),
        final("outbound", 486, o["busy"].messages("486", "Sent")[0]),
        final("outbound", 487, o["noanswer"].messages("487", "Sent")[0]),
    )
    expected = {
        **finals,
        # the A leg (inbound), from the callers' counts
        bye("inbound", "remote", "user-hangup"): a["answer"].messages("BYE", "Sent")[0],
        bye("inbound", "local", "user-hangup"): a["hangup"].messages("BYE")[0],  # the callee's, relayed
        request("inbound", "BYE", 200): a["answer"].messages("200")[1] + a["hangup"].messages("200", "Sent")[0],
        request("inbound", "CANCEL", 200): a["noanswer"].messages("200")[0],
        request("inbound", "OPTIONS", 200): 1,  # the barrier, answered outside any dialog
        "sip_active_calls{direction:inbound}|g": 0,
        "sip_call_duration_s{direction:inbound}|n": answered_in,
        "sip_session_request_delay_ms{direction:inbound,result:success}|n": sum(
            a[name].messages("180")[0] for name in ("answer", "hangup", "noanswer")
        ),
        "sip_session_request_delay_ms{direction:inbound,result:failure}|n": a["busy"].messages("486")[0]
        + a["timeout"].messages("408")[0],
        # the O leg (outbound), from the callees' counts and the silent socket's
        bye("outbound", "local", "user-hangup"): o["answer"].messages("BYE")[0],  # the caller's, relayed
        bye("outbound", "remote", "user-hangup"): o["hangup"].messages("BYE", "Sent")[0],
        request("outbound", "BYE", 200): o["answer"].messages("200", "Sent")[1] + o["hangup"].messages("200")[0],
        request("outbound", "CANCEL", 200): o["noanswer"].messages("200", "Sent")[0],
        timeout("INVITE"): timed_out,
        "sip_active_calls{direction:outbound}|g": 0,
        "sip_call_duration_s{direction:outbound}|n": answered_out,
        "sip_session_request_delay_ms{direction:outbound,result:success}|n": sum(
            o[name].messages("180", "Sent")[0] for name in ("answer", "hangup", "noanswer")
        ),
        "sip_session_request_delay_ms{direction:outbound,result:failure}|n": o["busy"].messages("486", "Sent")[0],
        # no media through this B2BUA: no RTCP, so every answered call's grade is unknown
        "sip_call_quality_total{grade:unknown}": answered_in + answered_out,
    }
    got = arrived(receiver)
    for key in sorted(set(got) | set(series(expected))):  # the table, with -s
        print(f"{key:<90} sipp {expected.get(key, 0):>4}  received {got.get(key, 0):>4}")
    assert got == series(expected)
    assert summary == {"invites": 4 * N + TIMED_OUT, "dropped_inputs": 0, "send_errors": 0}


PEER_CALLS = {"carrier-a": 3, "carrier-b": 4, "other": 5}  # callee route per peer (`other`: not mapped)


def test_sippy_legs_count_under_their_peers(tmp_path: Path, receiver: Receiver) -> None:
    """Each caller and each callee a peer of its own: both legs' outcomes under the right peer."""
    _sippy_or_skip()
    callee_ports = {name: free_port() for name in PEER_CALLS}
    caller_ports = {name: free_port() for name in PEER_CALLS}
    peers = [f"--peer=in-{n}=127.0.0.1:{caller_ports[n]}" for n in PEER_CALLS if n != "other"]
    peers += [f"--peer=out-{n}=127.0.0.1:{callee_ports[n]}" for n in PEER_CALLS if n != "other"]
    routes = [arg for name, port in callee_ports.items() for arg in ("--route", f"{name}=127.0.0.1:{port}")]
    env = {**example_env(), "SIP_STATSD_PEERS": "in-carrier-a,in-carrier-b,out-carrier-a,out-carrier-b"}
    b2bua = Example(
        tmp_path,
        "sippy_b2bua.py",
        *("--port", str(free_port()), "--next-hop", f"127.0.0.1:{free_port()}", *routes, *peers),
        *("--statsd", receiver.address, "--flush-interval", "0.2"),
        env=env,
        t1_ms=None,
    )
    try:
        callees = {}
        for name in PEER_CALLS:
            where = tmp_path / f"callee-{name}"
            where.mkdir()
            path = scenario("uas_answer", where, lost=0)
            callees[name] = (where, start_sipp(where, "-sf", str(path), "-p", str(callee_ports[name]), timeout=60))
        callers = {}
        for name, n in PEER_CALLS.items():
            where = tmp_path / f"caller-{name}"
            where.mkdir()
            args = ("-sn", "uac", "-d", "20", "-s", name, "-m", str(n), "-r", "50", "-p", str(caller_ports[name]))
            callers[name] = finish_sipp(start_sipp(where, *args, b2bua.address), where)
        options_barrier(b2bua.address)
        summary = b2bua.stop()
    finally:
        b2bua.kill()
        for _, process in callees.values():
            process.kill()
            process.communicate()
    assert summary["invites"] == sum(PEER_CALLS.values())
    got = arrived(receiver)
    rows = []
    for name, n in PEER_CALLS.items():
        run = callers[name]
        assert run.calls("SuccessfulCall") == n, run.log
        for direction, side in (("inbound", "in"), ("outbound", "out")):
            peer = f"{side}-{name}" if name != "other" else "other"
            key = f"sip_invite_result_total{{direction:{direction},code_class:2xx,peer:{peer}}}"
            rows.append((key, n, got.get(key)))
    print("\n".join(f"{k:80} sipp {n:>3} received {g}" for k, n, g in rows))
    assert all(n == g for _, n, g in rows), rows
