"""The reference UAS (examples/uas.py) with 5 declared peers and `other`, one sipp caller each.

Every series that arrives equals sipp's counts for the caller behind it: the per-peer ones
under that caller's peer (a source address not named: `other`), the others (BYEs, STIR) in
total. The same callers without peers give the peerless series test_examples_sipp checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_examples_sipp as ex
from conftest import free_port
from sipp_harness import SippRun, run_sipp

from sip_statsd._wire.receiver import Receiver

start, _sipp_installed = ex.start, ex._sipp_installed  # the fixtures, by name here
PEERS = ("carrier-a", "carrier-b", "carrier-c", "gw-1", "gw-2")
CALLS = {"carrier-a": 3, "carrier-b": 4, "carrier-c": 5, "gw-1": 6, "gw-2": 7, "other": 8}


def per_peer(peer: str, run: SippRun) -> dict[str, int]:
    """The series of one caller's answered calls (sipp's uac: INVITE, 180, 200, ACK, BYE, 200)."""
    answered, bye_answered = run.messages("200")
    tags = f"direction:inbound,peer:{peer}"
    return {
        f"sip_invite_result_total{{direction:inbound,code_class:2xx,peer:{peer}}}": answered,
        f"sip_invite_response_total{{direction:inbound,code:200,peer:{peer}}}": answered,
        f"sip_request_result_total{{direction:inbound,method:BYE,code_class:2xx,peer:{peer}}}": bye_answered,
        f"sip_active_calls{{{tags}}}|g": 0,
        f"sip_call_duration_s{{{tags}}}|n": answered,
        f"sip_call_quality_total{{grade:unknown,peer:{peer}}}": answered,
        f"sip_session_request_delay_ms{{direction:inbound,result:success,peer:{peer}}}|n": run.messages("180")[0],
    }


def test_the_reference_uas_counts_each_callers_calls_under_its_peer(
    start,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIP_STATSD_PEERS", ",".join(PEERS))
    ports = {peer: free_port() for peer in CALLS}
    uas = start("uas.py", *(f"--peer={peer}=127.0.0.1:{ports[peer]}" for peer in PEERS))
    runs = {}
    for peer, n in CALLS.items():
        where = tmp_path / peer
        where.mkdir()
        args = ["-sn", "uac", "-d", "20", "-s", "answer", "-m", str(n), "-r", "100", "-p", str(ports[peer])]
        runs[peer] = run_sipp(where, *args, uas.address)
    summary = uas.stop()
    for peer, run in runs.items():
        ex.check_sipp(run, CALLS[peer])
    expected: dict[str, int] = {
        ex.bye("inbound", "remote", "user-hangup"): sum(r.messages("BYE", "Sent")[0] for r in runs.values()),
        ex.NO_IDENTITY: sum(r.messages("INVITE", "Sent")[0] for r in runs.values()),
    }
    for peer, run in runs.items():
        expected.update(per_peer(peer, run))
    got = ex.arrived(receiver)
    table = [f"{'series':90} {'sipp':>5} {'received':>9}"]
    table += [f"{k:90} {v:>5} {got.get(k)!s:>9}" for k, v in expected.items()]
    print("\n".join(table))
    assert got == expected
    assert summary == {"invites": sum(CALLS.values()), "dropped_inputs": 0, "send_errors": 0}
