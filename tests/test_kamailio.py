"""Debian's Kamailio, a stateful proxy scripted in Python (KEMI), instrumented with
`sip_statsd.integrations.kamailio`, under sipp: every series at our receiver equals sipp's
counts and Kamailio's own statistics within 2 s of the last SIP event, with at most one
datagram per handler that recorded something; then Kamailio stops on SIGTERM.

Runs on the Python that matches Kamailio's embedded one (Debian's /usr/bin/python3), once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port
from kamailio_harness import RTIMER, Kamailio, require_kamailio_or_skip
from sipp_harness import SippRun, finish_sipp, scenario, start_sipp

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver, Totals

_SKIP = require_kamailio_or_skip()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

ANSWERED, BUSY, TIMEOUTS, NON_INVITE = 40, 20, 10, 20  # calls per sipp client; NON_INVITE: OPTIONS + REGISTER
SENDER_INTERVAL = 1.0  # rtimer's, with shared delivery
DELIVERY_DEADLINE = 1.0 + SENDER_INTERVAL  # seconds after the last SIP event: the bar
STOP_DEADLINE = 5.0


@dataclass
class Traffic:
    answered: SippRun
    busy: SippRun
    timeouts: SippRun | None  # None: not driven (a proxy that keeps tm's 30 s default)
    non_invite: SippRun

    def timed_out(self) -> int:
        return 0 if self.timeouts is None else self.timeouts.calls("SuccessfulCall")


def drive(workdir: Path, proxy: str, silent_port: int, timeouts: bool = True, scale: int = 1) -> Traffic:
    """sipp clients through the proxy (-rsa) to sipp servers and a callee that never answers.

    `scale`: that many times the calls of each client, at that many times the rate.
    """

    def place(name: str) -> Path:
        path = workdir / name
        path.mkdir()
        return path

    servers = []
    ports = {name: free_port() for name in ("answer", "busy", "non_invite")}
    ports["silent"] = silent_port
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes the INVITEs, answers nothing
    silent.bind(("127.0.0.1", ports["silent"]))
    try:
        for name, scen in (
            ("answer", "kamailio_uas_answer"),
            ("busy", "uas_reject"),
            ("non_invite", "kamailio_uas_options_register"),
        ):
            where = place(f"uas_{name}")
            servers.append(start_sipp(where, "-sf", str(scenario(scen, where)), "-p", str(ports[name]), timeout=60))

        def client(name: str, scen: str, target: str, calls: int, **marks: object) -> object:
            where = place(f"uac_{name}")
            args = ["-sf", str(scenario(scen, where, **marks)), "-p", str(free_port()), "-rsa", proxy]
            return where, start_sipp(
                where, *args, f"127.0.0.1:{ports[target]}", "-m", str(calls * scale), "-r", str(40 * scale), "-l", "20"
            )

        started = [
            client("answer", "kamailio_uac_answer", "answer", ANSWERED, hold_ms=200),
            client("busy", "kamailio_uac_reject", "busy", BUSY, code=486),
            client("non_invite", "uac_options_register", "non_invite", NON_INVITE),
        ]
        if timeouts:
            started.insert(2, client("timeout", "kamailio_uac_reject", "silent", TIMEOUTS, code=408))
        runs = [finish_sipp(process, where) for where, process in started]  # type: ignore[misc]
        if not timeouts:
            runs.insert(2, None)  # type: ignore[arg-type]
    finally:
        silent.close()
        for server in servers:
            server.kill()
            server.communicate()
    for run in runs:
        if run is None:
            continue
        assert run.returncode == 0, run.log
        assert run.calls("FailedCall") == 0, run.log
    return Traffic(*runs)


def received(t: Totals) -> dict[str, float | None]:
    """Every series the proxy's script records, summed over Kamailio's processes."""
    inbound = {"direction": "inbound"}
    return {
        "invite 2xx": t.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx", **inbound),
        "invite 4xx": t.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="4xx", **inbound),
        "invite code 200": t.count(sm.METRIC_INVITE_RESPONSE_TOTAL, code="200", **inbound),
        "invite code 486": t.count(sm.METRIC_INVITE_RESPONSE_TOTAL, code="486", **inbound),
        "INVITE timeouts": t.count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, method="INVITE"),
        "BYE received": t.count(sm.METRIC_BYE_TOTAL, by="remote", reason_class="user-hangup", **inbound),
        "BYE 2xx": t.count(sm.METRIC_REQUEST_RESULT_TOTAL, method="BYE", code_class="2xx", **inbound),
        "OPTIONS 2xx": t.count(sm.METRIC_REQUEST_RESULT_TOTAL, method="OPTIONS", code_class="2xx", **inbound),
        "REGISTER 2xx": t.count(sm.METRIC_REQUEST_RESULT_TOTAL, method="REGISTER", code_class="2xx", **inbound),
        "setup delay success": len(t.sample_list(sm.METRIC_SESSION_REQUEST_DELAY_MS, result="success")),
        "setup delay failure": len(t.sample_list(sm.METRIC_SESSION_REQUEST_DELAY_MS, result="failure")),
        "call durations": len(t.sample_list(sm.METRIC_CALL_DURATION_S)),
        "calls in progress": t.gauge(sm.METRIC_ACTIVE_CALLS, **inbound),
        "dropped inputs": t.count(sm.METRIC_DROPPED_INPUTS_TOTAL),
        "send errors": t.count(sm.METRIC_SEND_ERRORS_TOTAL),
    }


def expected_from_sipp(traffic: Traffic) -> dict[str, float | None]:
    answered = traffic.answered.calls("SuccessfulCall")
    busy = traffic.busy.calls("SuccessfulCall")
    non_invite = traffic.non_invite.calls("SuccessfulCall")
    return {
        "invite 2xx": answered,
        "invite 4xx": busy,  # the 408s are the proxy's own, after a timeout: not responses on the wire
        "invite code 200": answered,
        "invite code 486": busy,
        "INVITE timeouts": traffic.timed_out(),
        "BYE received": answered,
        "BYE 2xx": answered,
        "OPTIONS 2xx": non_invite,
        "REGISTER 2xx": non_invite,
        "setup delay success": answered,
        "setup delay failure": busy,
        "call durations": answered,
        "calls in progress": 0,
        "dropped inputs": 0,
        "send errors": 0,
    }


def kamailio_agrees(stats: dict[str, int], traffic: Traffic) -> dict[str, tuple[int, int]]:
    """Kamailio's own counters next to what sipp's counts imply: {counter: (kamailio, sipp)}.

    Requests Kamailio received include sipp's retransmissions (a loaded machine makes some);
    dialogs and failed transactions do not depend on them.
    """
    answered = traffic.answered.calls("SuccessfulCall")
    busy = traffic.busy.calls("SuccessfulCall")
    timeouts = traffic.timed_out()

    def sent(run: SippRun, method: str) -> int:
        return sum(run.messages(method, "Sent")) + sum(run.messages(method, "Retrans"))

    implied = {
        "dialog:processed_dialogs": answered + busy + timeouts,
        "dialog:failed_dialogs": busy + timeouts,
        "dialog:active_dialogs": 0,
        "tmx:4xx_transactions": busy + timeouts,  # 486 relayed, 408 generated
        "core:rcv_requests_bye": sent(traffic.answered, "BYE"),
        "core:rcv_requests_options": sent(traffic.non_invite, "OPTIONS"),
        "core:rcv_requests_register": sent(traffic.non_invite, "REGISTER"),
    }
    return {name: (stats.get(name, 0), n) for name, n in implied.items()}


def report(
    expected: dict[str, float | None],
    got: dict[str, float | None],
    agreement: dict[str, tuple[int, int]],
    datagrams: int,
    handlers: int,
    took: float,
) -> str:
    """The run's table (pytest -rP shows it): sipp / received, Kamailio's counters / sipp's."""
    lines = [f"{'series':24} {'sipp':>6} {'received':>9}"]
    lines += [f"{name:24} {expected[name]!s:>6} {got[name]!s:>9}" for name in expected]
    lines += [f"{'kamailio counter':30} {'kamailio':>9} {'sipp':>6}"]
    lines += [f"{name:30} {k:>9} {n:>6}" for name, (k, n) in agreement.items()]
    lines.append(f"datagrams {datagrams} for at most {handlers} recording handlers; SIGTERM to exit {took:.2f} s")
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("configure_in", "delivery", "scale"),
    [("mod_init", "shared", 1), ("mod_init", "shared", 5), ("child_init", "host", 1)],
)
def test_kamailio_proxy_delivers_every_series_exactly_and_stops_on_sigterm(tmp_path, configure_in, delivery, scale):
    with Receiver() as receiver:
        port, silent_port = free_port(), free_port()
        env = {
            "KEMI_SILENT_PORT": str(silent_port),
            **os.environ,
            "KEMI_CONFIGURE_IN": configure_in,
            "KEMI_DELIVERY": delivery,
            "KEMI_HOST": receiver.host,
            "KEMI_PORT": str(receiver.port),
        }
        started = time.monotonic()
        proxy = Kamailio(tmp_path, port, env, extra=RTIMER if delivery == "shared" else "")
        try:
            traffic = drive(tmp_path, f"127.0.0.1:{port}", silent_port, scale=scale)
            # The last SIP event is behind us: the receiver has DELIVERY_DEADLINE to see it all.
            expected = expected_from_sipp(traffic)
            totals = receiver.wait_for(lambda t: received(t) == expected, timeout=DELIVERY_DEADLINE)
            assert received(totals) == expected, proxy.log()
            # The INVITE timeouts were counted by tm's failure route in a timer process (rank -1).
            timeout_keys = [k for k in totals.counts if k.startswith(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL)]
            assert timeout_keys, totals.counts
            gauge_keys = [k for k in totals.gauges if k.startswith(sm.METRIC_ACTIVE_CALLS)]
            if delivery == "shared":  # one sender, one series per gauge for the whole proxy
                assert not any("kamailio_proc" in key for key in [*totals.counts, *gauge_keys]), totals.counts
                assert gauge_keys == ["sip_active_calls{direction:inbound}"], gauge_keys
            else:
                assert all("kamailio_proc:m1." in key for key in timeout_keys), timeout_keys
            stats = proxy.statistics()
            if delivery == "shared":  # rtimer runs its route with a faked OPTIONS, which Kamailio counts
                timer_runs = stats["core:rcv_requests_options"] - traffic.non_invite.calls("SuccessfulCall")
                assert 0 <= timer_runs <= (time.monotonic() - started) / SENDER_INTERVAL + 1
                stats["core:rcv_requests_options"] -= timer_runs
            agreement = kamailio_agrees(stats, traffic)
            assert {name: k for name, (k, _) in agreement.items()} == {name: s for name, (_, s) in agreement.items()}
            # Host delivery: at most one datagram per handler that recorded something: an
            # answered call has six (its 180 and 200, dialog start, BYE, BYE's 200, dialog
            # end), a busy one its 486, a timeout its failure route, an OPTIONS/REGISTER pair
            # two replies. Shared delivery: a few per second, whatever the traffic.
            handlers = 6 * expected["invite 2xx"] + expected["invite 4xx"] + expected["INVITE timeouts"]  # type: ignore[operator]
            handlers += 2 * expected["OPTIONS 2xx"]  # type: ignore[operator]
            assert 0 < totals.datagrams <= handlers
            if delivery == "shared":
                assert totals.datagrams < handlers / 5
            took = proxy.stop(timeout=STOP_DEADLINE)
            assert took is not None, f"not stopped within {STOP_DEADLINE} s: {proxy.log()}"
            print(report(expected, received(totals), agreement, totals.datagrams, handlers, took))
        finally:
            proxy.close()


def test_shared_delivery_configured_after_the_fork_stops_kamailio_with_the_reason(tmp_path):
    """metrics_setup() in child_init with shared delivery: Kamailio never serves, and its log says why."""
    with Receiver() as receiver:  # nothing should reach it; ours all the same
        env = {**os.environ, "KEMI_CONFIGURE_IN": "child_init", "KEMI_DELIVERY": "shared"}
        env.update({"KEMI_HOST": receiver.host, "KEMI_PORT": str(receiver.port)})
        with pytest.raises(RuntimeError):
            Kamailio(tmp_path, free_port(), env, extra=RTIMER).close()
    assert "must run in mod_init, before Kamailio forks" in (tmp_path / "kamailio.log").read_text()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_with_shared_delivery_only_rtimer_s_process_sends_and_workers_make_no_metrics_syscall(tmp_path):
    """strace on every Kamailio process under sipp: no worker opens, connects or sends to the agent."""
    with Receiver() as receiver:
        port, silent_port = free_port(), free_port()
        env = {**os.environ, "KEMI_SILENT_PORT": str(silent_port), "KEMI_CONFIGURE_IN": "mod_init"}
        env.update({"KEMI_HOST": receiver.host, "KEMI_PORT": str(receiver.port)})
        proxy = Kamailio(tmp_path, port, env, extra=RTIMER)
        log = tmp_path / "strace.log"
        try:
            processes = proxy.processes()
            sender = {pid for pid, what in processes.items() if what.startswith("RTIMER EXEC")}
            workers = {pid for pid, what in processes.items() if what.startswith("udp receiver")}
            assert len(sender) == 1, processes
            assert workers, processes
            attach = [arg for pid in processes for arg in ("-p", str(pid))]
            tracer = subprocess.Popen(
                ["strace", "-f", "-s", "48", "-e", "trace=%network", "-o", str(log), *attach],
                stderr=subprocess.PIPE,
                text=True,
            )
            attached = 0
            assert tracer.stderr is not None
            while attached < len(processes):  # strace says so for each process, then traces
                line = tracer.stderr.readline()
                assert line, "strace ended"
                attached += "attached" in line
            traffic = drive(tmp_path, f"127.0.0.1:{port}", silent_port)
            expected = expected_from_sipp(traffic)
            totals = receiver.wait_for(lambda t: received(t) == expected, timeout=DELIVERY_DEADLINE)
            assert received(totals) == expected
            tracer.send_signal(signal.SIGINT)
            tracer.communicate(timeout=30)
        finally:
            proxy.close()
    calls = [line.split(None, 1) for line in log.read_text().splitlines() if line[:1].isdigit()]
    to_agent = {int(pid) for pid, call in calls if '"sip_' in call}  # a datagram of ours, by its first bytes
    opened = {int(pid) for pid, call in calls if call.startswith(("socket(", "connect("))}
    assert to_agent == sender, (to_agent, sender)
    assert not opened & workers
    handled = {int(pid) for pid, call in calls if call.startswith(("recvfrom(", "recvmsg("))}
    assert handled & workers  # the workers were traced while they served the calls
