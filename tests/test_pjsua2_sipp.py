"""PJSUA2 with `sip_statsd.integrations.pjsua2`: every series equals sipp's counts and PJSIP's own RTCP.

examples/pjsua2_ua.py runs as a callee and as callers on 127.0.0.1. sipp calls the callee
(refused 486, cancelled while ringing) and answers its callers (486, ringing until their
CANCEL); a caller also calls a socket that never answers (PJSIP's Timer B, 32 s, while the
rest runs); two PJSUA2 processes exchange real RTP and RTCP on answered calls held 9 s (PJSIP
measures RTT after ~8 s); a caller with RFC 4028 session timers refreshes once towards sipp
(PJSIP's least interval, 90 s: an UPDATE after 45 s). Signalling is compared with sipp's
counts and the UAs' own reports; call quality with the RTCP figures PJSIP reported at each
stream's end, graded here from the E-model and ITU-T G.109's bands; once clean, once with 5 %
of RTP dropped on send.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from sipp_harness import Example, finish_sipp, require_sipp_or_skip, scenario, start_sipp
from test_examples_sipp import arrived, bye, example_env, final, request, series, timeout
from test_sippy_sipp import summed

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

ANSWERED = 4  # concurrent calls: this wheel's PJSUA2 takes 4 per process
N = 3  # refused and cancelled calls, each way
GRADE_FLOORS = ((4.34, "best"), (4.03, "high"), (3.60, "medium"), (3.10, "low"), (2.58, "poor"), (1.0, "unusable"))


def _pjsua2_or_skip() -> None:
    reason = require_sipp_or_skip()
    if reason is None:
        try:
            import pjsua2  # noqa: F401
        except ImportError:
            if os.environ.get("CI") and sys.version_info[:2] == (3, 11):
                raise
            reason = (
                f"pjsua2-python has wheels for CPython 3.11 and 3.12 only, none installed on {sys.version.split()[0]}"
            )
    if reason:
        pytest.skip(reason)


def ua(tmp_path: Path, receiver: Receiver, name: str, *args: str) -> Example:
    workdir = tmp_path / name
    workdir.mkdir()
    return Example(
        workdir,
        "pjsua2_ua.py",
        *args,
        *("--statsd", receiver.address, "--flush-interval", "0.2"),
        env=example_env(),
        t1_ms=None,
    )


def expected_quality(reports: list[dict[str, Any]]) -> dict[str, int]:
    """Series from PJSIP's RTCP figures: one sample per value the stack measured (a measured zero
    is a sample: 0 lost of a clean stream), a grade per call from its MOS, the issues over the defaults."""
    out: dict[str, int] = {}
    thresholds = sm.QualityThresholds()

    def add(key: str) -> None:
        out[key] = out.get(key, 0) + 1

    for rtcp in reports:
        rtt = rtcp["rtt_usec_mean"] / 1000 if rtcp["rtt_n"] else None
        jitter = rtcp["jitter_usec_mean"] / 1000 if rtcp["jitter_n"] else None
        loss = rtcp["loss"] / (rtcp["pkt"] + rtcp["loss"]) if rtcp["pkt"] + rtcp["loss"] else None
        mos = sm.estimate_mos(rtt, jitter or 0.0, loss or 0.0, "G.711") if rtt is not None else None
        assert rtcp["codec"] == "PCMU"
        for name, value in (("rtt_ms", rtt), ("jitter_ms", jitter), ("loss_fraction", loss), ("mos_estimate", mos)):
            if value is not None and value >= 0:  # measured: a clean stream's 0 lost is a sample (issue 27)
                add(f"sip_call_{name}|n")
        grade = next((g for floor, g in GRADE_FLOORS if mos is not None and mos >= floor), "unknown")
        add(f"sip_call_quality_total{{grade:{grade}}}")
        for issue, crossed in (
            ("high_rtt", rtt is not None and rtt > thresholds.rtt_ms),
            ("high_jitter", jitter is not None and jitter > thresholds.jitter_ms),
            ("high_loss", loss is not None and loss > thresholds.loss_fraction),
            ("low_mos", mos is not None and mos < thresholds.mos),
        ):
            if crossed:
                add(f"sip_call_quality_issue_total{{issue:{issue}}}")
    return out


def answered_calls(n: int) -> dict[str, int]:
    """What `n` calls answered between the two UAs add, on both sides (not their quality)."""
    return {
        **final("inbound", 200, n),
        **final("outbound", 200, n),
        bye("outbound", "local", "normal"): n,
        bye("inbound", "remote", "user-hangup"): n,
        request("inbound", "BYE", 200): n,
        "sip_active_calls{direction:inbound}|g": 0,
        "sip_active_calls{direction:outbound}|g": 0,
        "sip_call_duration_s{direction:inbound}|n": n,
        "sip_call_duration_s{direction:outbound}|n": n,
    }


def test_pjsua2_calls_equal_sipp_and_pjsip_rtcp(tmp_path: Path, receiver: Receiver) -> None:
    _pjsua2_or_skip()
    callee = ua(tmp_path, receiver, "callee", "--port", str(free_port()))
    started = [callee]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            refresh_dir = tmp_path / "refresh"
            refresh_dir.mkdir()
            refresh_port = free_port()
            refresh_xml = str(scenario("uas_refresh_sdp", refresh_dir))
            refreshed = start_sipp(refresh_dir, "-sf", refresh_xml, "-p", str(refresh_port), "-m", "1", timeout=80)
            refresher = ua(
                tmp_path,
                receiver,
                "refresher",
                *("--port", str(free_port()), "--call", f"sip:refresh@127.0.0.1:{refresh_port}"),
                *("--session-expires", "90", "--hold", "46"),  # PJSIP refreshes after 45 s
            )
            started.append(refresher)
            lost = ua(
                tmp_path,
                receiver,
                "lost",
                "--port",
                str(free_port()),
                "--call",
                f"sip:x@127.0.0.1:{silent.getsockname()[1]}",
            )
            started.append(lost)
            runs = {}
            for name, how in (
                (
                    "in_busy",
                    ("-sf", str(scenario("uac_reject", tmp_path, code=486)), "-key", "session_expires", "1800"),
                ),
                ("in_cancel", ("-sf", str(scenario("uac_cancel", tmp_path)))),
            ):
                (tmp_path / name).mkdir()
                user = "busy" if name == "in_busy" else "ring"
                process = start_sipp(tmp_path / name, *how, "-s", user, "-m", str(N), "-r", "20", callee.address)
                runs[name] = finish_sipp(process, tmp_path / name)
            for name, xml in (("out_busy", "uas_reject"), ("out_cancel", "uas_ring")):
                (tmp_path / name).mkdir()
                port = free_port()
                sipp = start_sipp(
                    tmp_path / name, "-sf", str(scenario(xml, tmp_path / name)), "-p", str(port), "-m", str(N)
                )
                extra = ("--cancel-after", "0.3") if name == "out_cancel" else ()
                caller = ua(
                    tmp_path,
                    receiver,
                    name + "_ua",
                    "--port",
                    str(free_port()),
                    "--call",
                    f"sip:callee@127.0.0.1:{port}",
                    "--calls",
                    str(N),
                    "--concurrent",
                    "1",
                    *extra,
                )
                started.append(caller)
                caller.wait(30)
                runs[name] = finish_sipp(sipp, tmp_path / name)
            talker = ua(
                tmp_path,
                receiver,
                "talker",
                "--port",
                str(free_port()),
                "--call",
                f"sip:answer@{callee.address}",
                "--calls",
                str(ANSWERED),
                "--hold",
                "9",
            )
            started.append(talker)
            talked = talker.wait(40)
            lost_report = lost.wait(45)
            refresher_report = refresher.wait(40)
            runs["refresh"] = finish_sipp(refreshed, refresh_dir)
        callee_report = callee.stop()
    finally:
        for process in started:
            process.kill()

    for run in runs.values():
        assert run.returncode == 0, run.log
    assert talked["finals"] == {"200": ANSWERED}
    assert callee_report["finals"] == {"200": ANSWERED, "486": N, "487": N}
    assert lost_report["timeouts"] == 1
    assert lost_report["finals"] == {}
    assert runs["out_cancel"].messages("200", "Sent") == [N]
    assert len(talked["rtcp"]) == len(callee_report["rtcp"]) == ANSWERED
    assert refresher_report["finals"] == {"200": 1}
    refreshes = runs["refresh"].messages("200", "Sent")[1]  # sipp's 200s to the INVITE, the UPDATE, the BYE
    expected = summed(
        answered_calls(ANSWERED),
        {  # the call PJSIP refreshed, to sipp: no 180 (the 200 ends its setup delay), no RTCP
            **final("outbound", 200, runs["refresh"].messages("200", "Sent")[0]),
            bye("outbound", "local", "normal"): runs["refresh"].messages("BYE")[0],
            "sip_call_duration_s{direction:outbound}|n": 1,
            "sip_session_request_delay_ms{direction:outbound,result:success}|n": 1,
            request("outbound", "UPDATE", 200): refreshes,
            "sip_session_timer_refresh_total{result:ok}": refreshes,
        },
        final("inbound", 486, runs["in_busy"].messages("486")[0]),
        final("inbound", 487, runs["in_cancel"].messages("487")[0]),
        final("outbound", 486, runs["out_busy"].messages("486", "Sent")[0]),
        final("outbound", 487, runs["out_cancel"].messages("487", "Sent")[0]),
        {
            request("inbound", "CANCEL", 200): runs["in_cancel"].messages("200")[0],
            # our CANCEL's 200 (sipp sent it) reaches PJSIP's transaction layer, never a Call: not counted
            timeout("INVITE"): lost_report["timeouts"],
            "sip_session_request_delay_ms{direction:inbound,result:success}|n": ANSWERED
            + runs["in_cancel"].messages("180")[0],
            "sip_session_request_delay_ms{direction:inbound,result:failure}|n": runs["in_busy"].messages("486")[0],
            "sip_session_request_delay_ms{direction:outbound,result:success}|n": ANSWERED
            + runs["out_cancel"].messages("180", "Sent")[0],
            "sip_session_request_delay_ms{direction:outbound,result:failure}|n": runs["out_busy"].messages(
                "486", "Sent"
            )[0],
        },
        expected_quality(talked["rtcp"] + callee_report["rtcp"] + refresher_report["rtcp"]),
    )
    got = arrived(receiver)
    for key in sorted(set(got) | set(series(expected))):  # the table, with -s
        print(f"{key:<90} expected {expected.get(key, 0):>4}  received {got.get(key, 0):>4}")
    assert got == series(expected)


def test_pjsua2_lossy_calls_are_graded_from_pjsip_rtcp(tmp_path: Path, receiver: Receiver) -> None:
    _pjsua2_or_skip()
    callee = ua(tmp_path, receiver, "callee", "--port", str(free_port()), "--tx-drop-pct", "5")
    try:
        talker = ua(
            tmp_path,
            receiver,
            "talker",
            "--port",
            str(free_port()),
            "--tx-drop-pct",
            "5",
            "--call",
            f"sip:answer@{callee.address}",
            "--calls",
            str(ANSWERED),
            "--hold",
            "9",
        )
        try:
            talked = talker.wait(40)
        finally:
            talker.kill()
        callee_report = callee.stop()
    finally:
        callee.kill()
    reports = talked["rtcp"] + callee_report["rtcp"]
    assert len(reports) == 2 * ANSWERED
    assert any(r["loss"] for r in reports)
    expected = summed(
        answered_calls(ANSWERED),
        {
            "sip_session_request_delay_ms{direction:inbound,result:success}|n": ANSWERED,
            "sip_session_request_delay_ms{direction:outbound,result:success}|n": ANSWERED,
        },
        expected_quality(reports),
    )
    got = arrived(receiver)
    for key in sorted(set(got) | set(series(expected))):
        print(f"{key:<90} expected {expected.get(key, 0):>4}  received {got.get(key, 0):>4}")
    print("RTCP as PJSIP reported it:", reports)
    assert got == series(expected)


@pytest.mark.parametrize(
    ("uri", "peer"),
    [
        ('"Carrier" <sip:+4930123@10.0.0.5:5070;transport=udp>', "by-port"),
        ("<sip:alice@10.0.0.5>", "by-host"),
        ("sip:10.0.0.5:5999", "by-host"),
        ("<sips:bob@[2001:db8::1]:5061>", "v6"),
        ("<sip:carol@192.0.2.9>", None),
        ('"sip:x@10.0.0.5:5070" <sip:mallory@203.0.113.9>', None),  # the display name is not the peer
        ("", None),
    ],
)
def test_pjsua2_names_the_peer_of_the_remote_uri(uri: str, peer: str | None) -> None:
    """`MeteredCall.peer_of` over the remote URI's host and port, as onCallState reads it."""
    _pjsua2_or_skip()
    from sip_statsd.integrations import pjsua2 as integration

    peer_map = {"10.0.0.5:5070": "by-port", "10.0.0.5": "by-host", "[2001:db8::1]:5061": "v6"}
    found = integration.uri_host(uri)
    named = None
    if found is not None:
        from sip_statsd.integrations._calls import peer_in

        named = peer_in(peer_map, *found)
    assert named == peer
