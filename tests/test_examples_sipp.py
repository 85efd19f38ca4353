"""The examples driven by sipp: what arrives at a real receiver equals sipp's own counts.

Each test starts an example (examples/uas.py or uac.py) on 127.0.0.1, runs one sipp
scenario against it (built in, or from tests/sipp), stops the example, and compares every
series that arrived with the number sipp reports for the message behind it. The whole
set of series must be equal: a series counted twice, counted for a provisional or a
retransmission, or counted where nothing should be, fails the comparison.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import free_port
from sipp_harness import T1_MS, Example, SippRun, finish_sipp, require_sipp_or_skip, run_sipp, scenario, start_sipp

from sip_statsd._receiver import Receiver

N = 10  # calls per scenario
SENTINEL = "zz_sentinel"


@pytest.fixture(scope="module", autouse=True)
def _sipp_installed() -> None:
    reason = require_sipp_or_skip()
    if reason:
        pytest.skip(reason)


def example_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["DD_ORIGIN_DETECTION_ENABLED"] = "false"  # Etsy's daemon would read the origin field as a tag
    return env


@pytest.fixture
def start(tmp_path: Path, receiver: Receiver) -> Iterator[Callable[..., Example]]:
    """Start an example that sends to the embedded receiver (or to `statsd=` another agent)."""
    started: list[Example] = []

    def start_example(script: str, *args: str, statsd: str | None = None) -> Example:
        address = statsd or receiver.address
        example = Example(tmp_path, script, "--statsd", address, "--flush-interval", "0.2", *args, env=example_env())
        started.append(example)
        return example

    yield start_example
    for example in started:
        example.kill()


def arrived(receiver: Receiver) -> dict[str, int]:
    """Every counter that arrived, exactly: a sentinel sent after the example's exit marks the end."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(f"{SENTINEL}:1|c".encode(), (receiver.host, receiver.port))
    totals = receiver.wait_for(lambda t: t.count(SENTINEL) > 0)
    assert totals.count(SENTINEL) == 1, "the sentinel never arrived"
    assert not totals.malformed
    assert not totals.samples, totals.samples  # the examples carry no media: QoS is None, no sample
    return {k: int(v) for k, v in totals.counts.items() if not k.startswith(SENTINEL)}


def series(expected: dict[str, int]) -> dict[str, int]:
    """The expected series, without those at zero (nothing is sent for them)."""
    return {k: v for k, v in expected.items() if v}


def invite(direction: str, code_class: str) -> str:
    return f"sip_invite_result_total{{direction:{direction},code_class:{code_class}}}"


def bye(direction: str, by: str, reason: str) -> str:
    return f"sip_bye_total{{direction:{direction},by:{by},reason_class:{reason}}}"


def timeout(method: str) -> str:
    return f"sip_transaction_timeout_total{{method:{method}}}"


NO_IDENTITY = "sip_stir_verify_total{result:no-identity}"


def check_sipp(run: SippRun, succeeded: int = N) -> None:
    assert run.returncode == 0, run.log
    assert run.calls("SuccessfulCall") == succeeded, run.log
    assert run.calls("FailedCall") == 0, run.log


def sipp_uac(
    tmp_path: Path, uas: Example, user: str, name: str | None = None, *args: str, calls: int = N, **marks: object
) -> SippRun:
    where = ["-sf", str(scenario(name, tmp_path, **marks))] if name else ["-sn", "uac", "-d", "20"]
    return run_sipp(tmp_path, *where, "-s", user, "-m", str(calls), "-r", "100", *args, uas.address)


# --- the UAS: every call inbound ----------------------------------------------------------


def test_answered_calls_hung_up_by_the_caller(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "answer")
    summary = uas.stop()
    check_sipp(run)
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): run.messages("200")[0],
            bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )
    assert summary == {"invites": N, "dropped_inputs": 0, "send_errors": 0}


@pytest.mark.parametrize(
    ("user", "code", "session_expires"),
    [
        ("busy", 486, 1800),
        ("unavailable", 480, 1800),
        ("decline", 603, 1800),
        ("redirect", 302, 1800),
        ("answer", 422, 30),
    ],
    ids=["busy-486", "unavailable-480", "decline-603", "redirect-302", "session-interval-too-small-422"],
)
def test_refused_calls_count_their_final_response_once(start, tmp_path, receiver, user, code, session_expires):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, user, "uac_reject", "-key", "session_expires", str(session_expires), code=code)
    uas.stop()
    check_sipp(run)
    assert run.messages("180") == [0]  # refused at once: no provisional to confuse with a final
    assert arrived(receiver) == series(
        {
            invite("inbound", f"{code // 100}xx"): run.messages(str(code))[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_cancel_while_ringing_is_a_487_and_the_180_is_not_counted(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "noanswer", "uac_cancel")
    uas.stop()
    check_sipp(run)
    assert run.messages("180") == [N]
    assert arrived(receiver) == series(
        {invite("inbound", "4xx"): run.messages("487")[0], NO_IDENTITY: run.messages("INVITE", "Sent")[0]}
    )


def test_ringing_unanswered_until_the_ring_timeout_is_a_480(start, tmp_path, receiver):
    uas = start("uas.py", "--ring-timeout", "0.1")
    run = sipp_uac(tmp_path, uas, "noanswer", "uac_reject", "-key", "session_expires", "1800", code=480)
    uas.stop()
    check_sipp(run)
    assert run.messages("180") == [N]
    assert arrived(receiver) == series(
        {invite("inbound", "4xx"): run.messages("480")[0], NO_IDENTITY: run.messages("INVITE", "Sent")[0]}
    )


def test_the_uas_hangs_up_itself(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "hangup-0.05", "uac_callee_bye", "-key", "session_expires", "1800")
    uas.stop()
    check_sipp(run)
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): run.messages("200")[0],
            bye("inbound", "local", "normal"): run.messages("BYE")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_a_session_timer_without_refresh_ends_the_call_as_timer_expired(start, tmp_path, receiver):
    uas = start("uas.py", "--min-se", "1")  # RFC 4028 says 90 s at least; 1 s keeps the test short
    run = sipp_uac(tmp_path, uas, "answer", "uac_callee_bye", "-key", "session_expires", "1")
    uas.stop()
    check_sipp(run)
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): run.messages("200")[0],
            bye("inbound", "local", "timer-expired"): run.messages("BYE")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_a_200_never_acked_times_out_as_ack_and_ends_with_an_error_bye(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "answer", "uac_no_ack")
    uas.stop()
    check_sipp(run)
    assert run.messages("200", "Retrans")[0] > 0  # the UAS did retransmit its 200 (RFC 3261 13.3.1.4)
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): run.messages("200")[0],
            timeout("ACK"): run.messages("BYE")[0],
            bye("inbound", "local", "error"): run.messages("BYE")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_a_bye_before_the_ack_ends_the_call_and_times_nothing_out(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "answer", "uac_bye_before_ack", pause=64 * T1_MS + 700)  # past the 2xx's 64*T1
    uas.stop()
    check_sipp(run)
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): run.messages("200")[0],
            bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_a_refusal_never_acked_is_timer_h(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "busy", "uac_reject_no_ack", code=486, pause=64 * T1_MS + 700)
    uas.stop()
    check_sipp(run)
    assert run.messages("486", "Retrans")[0] > 0  # Timer G: the UAS retransmitted its 486
    assert arrived(receiver) == series(
        {
            invite("inbound", "4xx"): run.messages("486")[0],
            timeout("ACK"): run.messages("486")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_a_bye_never_answered_is_timer_f(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "hangup-0.05", "uac_bye_unanswered", pause=64 * T1_MS + 700)
    uas.stop()
    check_sipp(run)
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): run.messages("200")[0],
            bye("inbound", "local", "normal"): run.messages("BYE")[0],
            timeout("BYE"): run.messages("BYE")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_lost_messages_are_retransmitted_and_counted_once(start, tmp_path, receiver):
    uas = start("uas.py")
    # 20% of INVITEs, 200s and BYEs lost, over 20 calls: P(nothing lost) = 0.8**60; sipp may
    # retransmit 10 times, the UAS for 64*T1, so a call fails only once in 10**5 runs or so.
    calls = 20
    run = sipp_uac(
        tmp_path, uas, "answer", "uac_lossy", "-max_retrans", "10", "-max_invite_retrans", "10", calls=calls, lost=20
    )
    uas.stop()
    check_sipp(run, calls)
    retransmitted = sum(n for key, n in run.counts.items() if key.endswith("_Retrans"))
    assert retransmitted > 0, run.counts
    assert arrived(receiver) == series(
        {
            invite("inbound", "2xx"): calls,
            bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        }
    )


def test_options_and_register_count_nothing_yet(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "uas", "uac_options_register")
    uas.stop()
    check_sipp(run)
    assert run.messages("200") == [N, N]
    assert arrived(receiver) == {}


def test_answered_calls_through_etsy_statsd(start, tmp_path, statsd_daemon):
    uas = start("uas.py", statsd=f"127.0.0.1:{statsd_daemon.port}")
    run = sipp_uac(tmp_path, uas, "answer")
    uas.stop()
    check_sipp(run)
    counters = {k: v for k, v in statsd_daemon.read()["counters"].items() if k.startswith("sip_")}
    assert counters == series(
        {
            "sip_invite_result_total;direction=inbound;code_class=2xx": run.messages("200")[0],
            "sip_bye_total;direction=inbound;by=remote;reason_class=user-hangup": run.messages("BYE", "Sent")[0],
            "sip_stir_verify_total;result=no-identity": run.messages("INVITE", "Sent")[0],
        }
    )


# --- the UAC: every call outbound; sipp is the far end --------------------------------------


def call_sipp(tmp_path: Path, start: Callable[..., Example], name: str, *uac_args: str, **marks: object) -> SippRun:
    port = free_port()
    sipp = start_sipp(tmp_path, "-sf", str(scenario(name, tmp_path, **marks)), "-p", str(port), "-m", str(N))
    uac = start("uac.py", f"127.0.0.1:{port}", "--calls", str(N), "--rate", "100", *uac_args)
    assert uac.wait() == {"invites": N, "options": 0, "dropped_inputs": 0, "send_errors": 0}
    run = finish_sipp(sipp, tmp_path)
    check_sipp(run)
    return run


@pytest.mark.parametrize("lost", [0, 60], ids=["clean", "acks-lost"])
def test_outbound_calls_hung_up_by_us(start, tmp_path, receiver, lost):
    run = call_sipp(tmp_path, start, "uas_answer", "--hold", "0.05", lost=lost)
    if lost:  # sipp ignored ACKs and retransmitted its 200 (P(no loss in 10 calls) = 0.4**10)
        assert run.messages("200", "Retrans")[0] > 0, run.counts
    assert arrived(receiver) == series(
        {
            invite("outbound", "2xx"): run.messages("200", "Sent")[0],
            bye("outbound", "local", "normal"): run.messages("BYE")[0],
        }
    )


def test_outbound_calls_hung_up_by_the_callee(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_hangup", "--hold", "30")
    assert arrived(receiver) == series(
        {
            invite("outbound", "2xx"): run.messages("200", "Sent")[0],
            bye("outbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
        }
    )


def test_outbound_calls_refused_busy(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_reject")
    assert arrived(receiver) == series({invite("outbound", "4xx"): run.messages("486", "Sent")[0]})


def test_outbound_calls_cancelled_while_ringing(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_ring", "--cancel-after", "0.05")
    assert run.messages("CANCEL") == [N]
    assert arrived(receiver) == series({invite("outbound", "4xx"): run.messages("487", "Sent")[0]})


def test_outbound_requests_to_a_silent_peer_are_timers_b_and_f(start, receiver):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never read, never answers
        silent.bind(("127.0.0.1", 0))
        uac = start("uac.py", f"127.0.0.1:{silent.getsockname()[1]}", "--calls", "3", "--options", "2")
        summary = uac.wait()
    assert arrived(receiver) == {timeout("INVITE"): summary["invites"], timeout("OPTIONS"): summary["options"]}
    assert summary == {"invites": 3, "options": 2, "dropped_inputs": 0, "send_errors": 0}


def refresh(result: str) -> str:
    return f"sip_session_timer_refresh_total{{result:{result}}}"


def test_session_refreshes_ok_422_bumped_and_role_swap(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_refresh", "--hold", "30", "--session-expires", "1")
    ok, bumped, swapped = run.messages("200", "Sent")[1:4]  # [0]: the INVITE, [1:4] the refreshes, [4] the BYE
    assert run.messages("422", "Sent") == [N]
    assert arrived(receiver) == series(
        {
            invite("outbound", "2xx"): run.messages("200", "Sent")[0],
            refresh("ok"): ok,
            refresh("422-bumped"): bumped,
            refresh("role-swap"): swapped,
            # sipp, now the refresher, never refreshes: we hang up before the session expires
            bye("outbound", "local", "timer-expired"): run.messages("BYE")[0],
        }
    )


@pytest.mark.parametrize(
    ("name", "code", "result"),
    [("uas_refresh_481", "481", "481"), ("uas_refresh_422_twice", "422", "422-gave-up")],
    ids=["481", "422-twice"],
)
def test_a_failed_session_refresh_ends_the_call_with_an_error_bye(start, tmp_path, receiver, name, code, result):
    run = call_sipp(tmp_path, start, name, "--hold", "30", "--session-expires", "1")
    assert arrived(receiver) == series(
        {
            invite("outbound", "2xx"): run.messages("200", "Sent")[0],
            refresh(result): run.messages(code, "Sent")[-1],
            bye("outbound", "local", "error"): run.messages("BYE")[0],
        }
    )
