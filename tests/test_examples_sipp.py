"""The examples driven by sipp: what arrives at a real receiver equals sipp's own counts.

Each test starts an example (examples/uas.py or uac.py) on 127.0.0.1, runs one sipp
scenario against it (built in, or from tests/sipp), stops the example, and compares every
series that arrived with the number sipp reports for the message behind it. The whole
set of series must be equal: a series counted twice, counted for a provisional or a
retransmission, or counted where nothing should be, fails the comparison. Counters are
compared by value, the `sip_active_calls` gauge by its last level (every call has ended: 0),
distributions (call duration, setup delay) by their number of samples.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import free_port
from sipp_harness import T1_MS, Example, SippRun, finish_sipp, require_sipp_or_skip, run_sipp, scenario, start_sipp

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

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
    """Every series that arrived, exactly: a sentinel sent after the example's exit marks the end.

    Counters by value; gauges (`|g` after the key) by their last level; distributions (`|n`)
    by their number of samples, each of which must be a time (>= 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(f"{SENTINEL}:1|c".encode(), (receiver.host, receiver.port))
    totals = receiver.wait_for(lambda t: t.count(SENTINEL) > 0)
    assert totals.count(SENTINEL) == 1, "the sentinel never arrived"
    assert not totals.malformed
    assert all(v >= 0 for values in totals.samples.values() for v in values), totals.samples
    return {
        **{k: int(v) for k, v in totals.counts.items() if not k.startswith(SENTINEL)},
        **{f"{k}|g": int(v) for k, v in totals.gauges.items()},
        **{f"{k}|n": len(v) for k, v in totals.samples.items()},
    }


def series(expected: dict[str, int]) -> dict[str, int]:
    """The expected series, without those at zero (nothing is sent for them); a gauge is sent
    at 0 too once it moved, so `calls()` adds it only when a call started."""
    return {k: v for k, v in expected.items() if v or k.endswith("|g")}


def invite(direction: str, code_class: str) -> str:
    return f"sip_invite_result_total{{direction:{direction},code_class:{code_class}}}"


def bye(direction: str, by: str, reason: str) -> str:
    return f"sip_bye_total{{direction:{direction},by:{by},reason_class:{reason}}}"


def timeout(method: str) -> str:
    return f"sip_transaction_timeout_total{{method:{method}}}"


NO_IDENTITY = "sip_stir_verify_total{result:no-identity}"


def request(direction: str, method: str, code: int) -> str:
    return f"sip_request_result_total{{direction:{direction},method:{method},code_class:{code // 100}xx}}"


def final(direction: str, code: int, n: int) -> dict[str, int]:
    """`n` final responses `code` to initial INVITEs: both INVITE metrics, the exact code only
    when it is on the default allowlist (else its class)."""
    exact = str(code) if code in sm.DEFAULT_RESPONSE_CODES else f"{code // 100}xx"
    return {
        invite(direction, f"{code // 100}xx"): n,
        f"sip_invite_response_total{{direction:{direction},code:{exact}}}": n,
    }


def calls(direction: str, answered: int, setup_ok: int, setup_failed: int = 0) -> dict[str, int]:
    """What answered calls and setup delays add: calls in progress back to 0 once any started,
    one duration per answered call, one setup delay per INVITE (RFC 6076 SRD) by result, and a
    quality grade per answered call: `unknown`, since the examples carry no media, so no MOS."""
    return {
        **({f"sip_active_calls{{direction:{direction}}}|g": 0} if answered else {}),
        f"sip_call_duration_s{{direction:{direction}}}|n": answered,
        "sip_call_quality_total{grade:unknown}": answered,
        f"sip_session_request_delay_ms{{direction:{direction},result:success}}|n": setup_ok,
        f"sip_session_request_delay_ms{{direction:{direction},result:failure}}|n": setup_failed,
    }


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
    answered, bye_answered = run.messages("200")  # to the INVITE, to sipp's BYE
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, answered),
            bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            request("inbound", "BYE", 200): bye_answered,
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", answered, setup_ok=run.messages("180")[0]),
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
    refused = run.messages(str(code))[0]
    assert arrived(receiver) == series(
        {
            **final("inbound", code, refused),
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            # RFC 6076 SRD: a failure delay for 4xx-6xx; a 3xx has none (its redirected INVITE is the attempt)
            **calls("inbound", 0, setup_ok=0, setup_failed=refused if code >= 400 else 0),
        }
    )


def test_cancel_while_ringing_is_a_487_and_the_180_is_not_counted(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "noanswer", "uac_cancel")
    uas.stop()
    check_sipp(run)
    assert run.messages("180") == [N]
    assert arrived(receiver) == series(
        {
            **final("inbound", 487, run.messages("487")[0]),
            request("inbound", "CANCEL", 200): run.messages("200")[0],  # sipp's CANCEL, answered
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", 0, setup_ok=run.messages("180")[0]),  # the 180 is the setup delay's end
        }
    )


def test_ringing_unanswered_until_the_ring_timeout_is_a_480(start, tmp_path, receiver):
    uas = start("uas.py", "--ring-timeout", "0.1")
    run = sipp_uac(tmp_path, uas, "noanswer", "uac_reject", "-key", "session_expires", "1800", code=480)
    uas.stop()
    check_sipp(run)
    assert run.messages("180") == [N]
    assert arrived(receiver) == series(
        {
            **final("inbound", 480, run.messages("480")[0]),
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", 0, setup_ok=run.messages("180")[0]),
        }
    )


def test_the_uas_hangs_up_itself(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "hangup-0.05", "uac_callee_bye", "-key", "session_expires", "1800")
    uas.stop()
    check_sipp(run)
    answered = run.messages("200")[0]
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, answered),
            bye("inbound", "local", "normal"): run.messages("BYE")[0],
            request("inbound", "BYE", 200): run.messages("200", "Sent")[0],  # sipp answered our BYE
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", answered, setup_ok=run.messages("180")[0]),
        }
    )


def test_a_session_timer_without_refresh_ends_the_call_as_timer_expired(start, tmp_path, receiver):
    uas = start("uas.py", "--min-se", "1")  # RFC 4028 says 90 s at least; 1 s keeps the test short
    run = sipp_uac(tmp_path, uas, "answer", "uac_callee_bye", "-key", "session_expires", "1")
    uas.stop()
    check_sipp(run)
    answered = run.messages("200")[0]
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, answered),
            bye("inbound", "local", "timer-expired"): run.messages("BYE")[0],
            request("inbound", "BYE", 200): run.messages("200", "Sent")[0],  # sipp answered our BYE
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", answered, setup_ok=run.messages("180")[0]),
        }
    )


def test_a_200_never_acked_times_out_as_ack_and_ends_with_an_error_bye(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "answer", "uac_no_ack")
    uas.stop()
    check_sipp(run)
    assert run.messages("200", "Retrans")[0] > 0  # the UAS did retransmit its 200 (RFC 3261 13.3.1.4)
    answered = run.messages("200")[0]
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, answered),
            timeout("ACK"): run.messages("BYE")[0],
            bye("inbound", "local", "error"): run.messages("BYE")[0],
            request("inbound", "BYE", 200): run.messages("200", "Sent")[0],
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", answered, setup_ok=run.messages("180")[0]),
        }
    )


def test_a_bye_before_the_ack_ends_the_call_and_times_nothing_out(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "answer", "uac_bye_before_ack", pause=64 * T1_MS + 700)  # past the 2xx's 64*T1
    uas.stop()
    check_sipp(run)
    answered, bye_answered = run.messages("200")
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, answered),
            bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            request("inbound", "BYE", 200): bye_answered,
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", answered, setup_ok=run.messages("180")[0]),
        }
    )


def test_a_refusal_never_acked_is_timer_h(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "busy", "uac_reject_no_ack", code=486, pause=64 * T1_MS + 700)
    uas.stop()
    check_sipp(run)
    assert run.messages("486", "Retrans")[0] > 0  # Timer G: the UAS retransmitted its 486
    refused = run.messages("486")[0]
    assert arrived(receiver) == series(
        {
            **final("inbound", 486, refused),
            timeout("ACK"): refused,
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", 0, setup_ok=0, setup_failed=refused),
        }
    )


def test_a_bye_never_answered_is_timer_f(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "hangup-0.05", "uac_bye_unanswered", pause=64 * T1_MS + 700)
    uas.stop()
    check_sipp(run)
    answered = run.messages("200")[0]
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, answered),
            bye("inbound", "local", "normal"): run.messages("BYE")[0],
            timeout("BYE"): run.messages("BYE")[0],  # and no request_result: no response came
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            **calls("inbound", answered, setup_ok=run.messages("180")[0]),
        }
    )


def test_lost_messages_are_retransmitted_and_counted_once(start, tmp_path, receiver):
    uas = start("uas.py")
    # 20% of INVITEs, 200s and BYEs lost, over 20 calls: P(nothing lost) = 0.8**60; sipp may
    # retransmit 10 times, the UAS for 64*T1, so a call fails only once in 10**5 runs or so.
    placed = 20
    run = sipp_uac(
        tmp_path, uas, "answer", "uac_lossy", "-max_retrans", "10", "-max_invite_retrans", "10", calls=placed, lost=20
    )
    uas.stop()
    check_sipp(run, placed)
    retransmitted = sum(n for key, n in run.counts.items() if key.endswith("_Retrans"))
    assert retransmitted > 0, run.counts
    assert arrived(receiver) == series(
        {
            **final("inbound", 200, run.calls("SuccessfulCall")),
            bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            request("inbound", "BYE", 200): run.calls("SuccessfulCall"),  # sipp ends a call at the BYE's 200
            NO_IDENTITY: run.messages("INVITE", "Sent")[0],
            # one setup delay per INVITE that got an answer; a lost INVITE is retransmitted, not new
            **calls("inbound", run.calls("SuccessfulCall"), setup_ok=run.calls("SuccessfulCall")),
        }
    )


def test_options_and_register_are_request_results(start, tmp_path, receiver):
    uas = start("uas.py")
    run = sipp_uac(tmp_path, uas, "uas", "uac_options_register")
    uas.stop()
    check_sipp(run)
    options, register = run.messages("200")
    assert arrived(receiver) == series(
        {request("inbound", "OPTIONS", 200): options, request("inbound", "REGISTER", 200): register}
    )


def test_answered_calls_through_etsy_statsd(start, tmp_path, statsd_daemon):
    # The statsd backend, as a service pointed at Etsy's daemon runs it: distributions go out as
    # timers, whose samples the daemon keeps (it would sum a DogStatsD `|d` as a counter).
    uas = start("uas.py", "--backend", "statsd", "--flavor", "graphite", statsd=f"127.0.0.1:{statsd_daemon.port}")
    run = sipp_uac(tmp_path, uas, "answer")
    uas.stop()
    check_sipp(run)
    data = statsd_daemon.read()
    assert data["counters"]["statsd.bad_lines_seen"] == 0
    got = {
        **{k: v for k, v in data["counters"].items() if k.startswith("sip_")},
        **{f"{k}|g": v for k, v in data["gauges"].items() if k.startswith("sip_")},
        **{f"{k}|n": len(v) for k, v in data["timers"].items() if k.startswith("sip_")},
    }
    answered, bye_answered = run.messages("200")
    expected = {
        **final("inbound", 200, answered),
        bye("inbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
        request("inbound", "BYE", 200): bye_answered,
        NO_IDENTITY: run.messages("INVITE", "Sent")[0],
        **calls("inbound", answered, setup_ok=run.messages("180")[0]),
    }
    assert got == {graphite(k): v for k, v in series(expected).items()}


def graphite(key: str) -> str:
    """`name{k:v,k2:v2}|g` as Etsy's daemon names it from graphite tags: `name;k=v;k2=v2|g`."""
    key, bar, kind = key.partition("|")
    name, _, tags = key.rstrip("}").partition("{")
    return name + "".join(f";{tag.replace(':', '=', 1)}" for tag in tags.split(",") if tag) + bar + kind


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
    answered, bye_answered = run.messages("200", "Sent")
    assert arrived(receiver) == series(
        {
            **final("outbound", 200, answered),
            bye("outbound", "local", "normal"): run.messages("BYE")[0],
            request("outbound", "BYE", 200): bye_answered,
            **calls("outbound", answered, setup_ok=run.messages("180", "Sent")[0]),
        }
    )


def test_outbound_calls_hung_up_by_the_callee(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_hangup", "--hold", "30")
    answered = run.messages("200", "Sent")[0]
    assert arrived(receiver) == series(
        {
            **final("outbound", 200, answered),
            bye("outbound", "remote", "user-hangup"): run.messages("BYE", "Sent")[0],
            request("outbound", "BYE", 200): run.messages("200")[0],  # we answered sipp's BYE
            **calls("outbound", answered, setup_ok=run.messages("180", "Sent")[0]),
        }
    )


def test_outbound_calls_refused_busy(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_reject")
    refused = run.messages("486", "Sent")[0]
    assert run.messages("100", "Sent") == [N]  # a 100 is not the end of the setup delay
    assert arrived(receiver) == series(
        {**final("outbound", 486, refused), **calls("outbound", 0, setup_ok=0, setup_failed=refused)}
    )


def test_outbound_calls_cancelled_while_ringing(start, tmp_path, receiver):
    run = call_sipp(tmp_path, start, "uas_ring", "--cancel-after", "0.05")
    assert run.messages("CANCEL") == [N]
    assert arrived(receiver) == series(
        {
            **final("outbound", 487, run.messages("487", "Sent")[0]),
            request("outbound", "CANCEL", 200): run.messages("200", "Sent")[0],
            **calls("outbound", 0, setup_ok=run.messages("180", "Sent")[0]),
        }
    )


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
    answered, ok, bumped, swapped, bye_answered = run.messages("200", "Sent")  # INVITE, 3 refreshes, BYE
    assert run.messages("422", "Sent") == [N]
    assert arrived(receiver) == series(
        {
            **final("outbound", 200, answered),
            request("outbound", "UPDATE", 200): ok + bumped + swapped,
            request("outbound", "UPDATE", 422): run.messages("422", "Sent")[0],
            request("outbound", "BYE", 200): bye_answered,
            **calls("outbound", answered, setup_ok=answered),  # sipp sends no 180: the 200 ends the delay
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
    answered, bye_answered = run.messages("200", "Sent")
    assert arrived(receiver) == series(
        {
            **final("outbound", 200, answered),
            refresh(result): run.messages(code, "Sent")[-1],
            request("outbound", "UPDATE", int(code)): sum(run.messages(code, "Sent")),  # each try has its result
            bye("outbound", "local", "error"): run.messages("BYE")[0],
            request("outbound", "BYE", 200): bye_answered,
            **calls("outbound", answered, setup_ok=answered),  # sipp sends no 180: the 200 ends the delay
        }
    )
