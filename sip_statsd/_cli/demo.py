"""`sip-statsd demo`: a SIP service's traffic, through the real helpers, checked on arrival."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO, cast

import sip_statsd as sm

from .._core.config import DEFAULT_PRECISION, ENV_PREFIX, Config, env_options
from .._sip.quality import grade_of
from .._wire.receiver import Receiver, Totals, percentile

# Final INVITE responses and how often a busy gateway sees them.
_CODES = (200, 486, 487, 404, 480, 503, 408, 603, 302, 500)
_CODE_WEIGHTS = (70, 8, 6, 3, 3, 4, 2, 2, 1, 1)
# Who sends the BYE and why, as the README's event table has it: a BYE we receive is a person
# hanging up (user-hangup); ours ends the call as planned (normal), on the RFC 4028 timer,
# on an error, or relays the other leg's hang-up (a B2BUA).
_LOCAL_BYE_REASONS = (sm.BYE_REASON_NORMAL, sm.BYE_REASON_USER_HANGUP, sm.BYE_REASON_TIMER_EXPIRED, sm.BYE_REASON_ERROR)
_LOCAL_BYE_WEIGHTS = (80, 12, 5, 3)
_REFRESH = (sm.REFRESH_OK, sm.REFRESH_422_BUMPED, sm.REFRESH_481, sm.REFRESH_ROLE_SWAP, sm.REFRESH_422_GAVE_UP)
_REFRESH_WEIGHTS = (94, 3, 1, 1.5, 0.5)
_DTLS = (sm.DTLS_OK, sm.DTLS_FAIL, sm.DTLS_TIMEOUT, sm.DTLS_FINGERPRINT_MISMATCH)
_DTLS_WEIGHTS = (97, 1, 1, 1)
_STIR = (sm.STIR_VERIFIED, sm.STIR_NO_IDENTITY, sm.STIR_SOFT_FAIL, sm.STIR_FAILED)
_STIR_WEIGHTS = (75, 15, 7, 3)
_TIMEOUT_METHODS = (sm.METHOD_INVITE, sm.METHOD_OPTIONS, sm.METHOD_BYE, "KEEPALIVE")


# Non-INVITE transactions around a call: (method, final code, weight).
_REQUESTS = (
    (sm.METHOD_OPTIONS, 200, 30),
    (sm.METHOD_REGISTER, 401, 10),
    (sm.METHOD_REGISTER, 200, 10),
    (sm.METHOD_INFO, 200, 3),
    (sm.METHOD_REFER, 202, 1),
    (sm.METHOD_NOTIFY, 200, 2),
    (sm.METHOD_OPTIONS, 408, 1),
    (sm.METHOD_MESSAGE, 404, 1),
    ("PING", 501, 1),  # no such method: counted as `other`
)
_RINGING_FINALS = (487, 486, 480, 603)  # finals that usually come after a 180: SRD success
_OPEN_CALLS = 25  # at most this many calls in progress at once (so the gauge ends above 0)


@dataclass
class Tally:
    """What the demo asked the library to send: counter totals, samples and gauge levels."""

    counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    gauges: dict[tuple[str, tuple[tuple[str, str], ...]], int] = field(default_factory=dict)
    open_calls: list[tuple[str, float]] = field(default_factory=list)
    helper_calls: int = 0

    def level(self, name: str, step: int, **labels: str) -> None:
        key = (name, tuple(labels.items()))
        self.gauges[key] = self.gauges.get(key, 0) + step
        self.helper_calls += 1

    def count(self, name: str, **labels: str) -> None:
        self.also(name, **labels)
        self.helper_calls += 1

    def also(self, name: str, **labels: str) -> None:
        """A count that comes with another helper call (the call quality of observe_call_qos)."""
        key = (name, tuple(labels.items()))
        self.counts[key] = self.counts.get(key, 0) + 1

    def counts_also(self, name: str, **labels: str) -> None:
        """A series that a helper call already tallied also counts (one call, two metrics)."""
        self.count(name, **labels)
        self.helper_calls -= 1

    def sample(self, name: str, value: float | None) -> None:
        if value is not None and value > 0:  # the helper skips "no data" the same way
            self.samples.setdefault(name, []).append(value)


def simulate_call(rng: random.Random, tally: Tally) -> None:
    """One call's signalling events, through the module-level helpers."""
    direction = sm.DIRECTION_INBOUND if rng.random() < 0.6 else sm.DIRECTION_OUTBOUND
    if rng.random() < 0.01:
        method = rng.choice(_TIMEOUT_METHODS)
        sm.transaction_timeout(method)
        tally.count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, method=method if method in sm.METHODS else sm.METHOD_OTHER)
    if direction == sm.DIRECTION_INBOUND:
        stir = rng.choices(_STIR, _STIR_WEIGHTS)[0]
        sm.stir_verify(stir)
        tally.count(sm.METRIC_STIR_VERIFY_TOTAL, result=stir)
    code = rng.choices(_CODES, _CODE_WEIGHTS)[0]
    sm.invite_result(direction, code)
    tally.count(sm.METRIC_INVITE_RESULT_TOTAL, direction=direction, code_class=f"{code // 100}xx")
    exact = str(code) if code in sm.DEFAULT_RESPONSE_CODES else f"{code // 100}xx"
    tally.counts_also(sm.METRIC_INVITE_RESPONSE_TOTAL, direction=direction, code=exact)
    _setup_delay(rng, tally, direction, code)
    _requests(rng, tally, direction, code)
    _end_calls(rng, tally, keep=_OPEN_CALLS - 1)  # the call that may start below makes it _OPEN_CALLS
    if code != 200:
        return
    sm.call_started(direction)
    tally.level(sm.METRIC_ACTIVE_CALLS, 1, direction=direction)
    tally.open_calls.append((direction, round(rng.lognormvariate(4.5, 0.9), 3)))  # ~90 s median
    if rng.random() < 0.3:  # WebRTC legs
        dtls = rng.choices(_DTLS, _DTLS_WEIGHTS)[0]
        sm.dtls_handshake(dtls)
        tally.count(sm.METRIC_DTLS_HANDSHAKE_TOTAL, result=dtls)
    _voice(rng, tally)
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        refresh = rng.choices(_REFRESH, _REFRESH_WEIGHTS)[0]
        sm.session_timer_refresh(refresh)
        tally.count(sm.METRIC_SESSION_TIMER_REFRESH_TOTAL, result=refresh)
    by = sm.BY_LOCAL if rng.random() < 0.5 else sm.BY_REMOTE
    reason = rng.choices(_LOCAL_BYE_REASONS, _LOCAL_BYE_WEIGHTS)[0] if by == sm.BY_LOCAL else sm.BYE_REASON_USER_HANGUP
    if direction == sm.DIRECTION_OUTBOUND:
        sm.bye_outbound(by, reason)
    else:
        sm.bye(direction, by, reason)
    tally.count(sm.METRIC_BYE_TOTAL, direction=direction, by=by, reason_class=reason)
    _qos(rng, tally)


def _setup_delay(rng: random.Random, tally: Tally, direction: str, code: int) -> None:
    """RFC 6076 SRD: to the first non-100 provisional or 2xx (success), else to the failure."""
    success = code == 200 or (code in _RINGING_FINALS and rng.random() < 0.8)
    delay = round(rng.lognormvariate(5.3, 0.6), 2)  # ~200 ms median
    sm.observe_setup_delay(direction, delay, success)
    tally.helper_calls += 1
    tally.sample(sm.METRIC_SESSION_REQUEST_DELAY_MS, delay)


def _requests(rng: random.Random, tally: Tally, direction: str, code: int) -> None:
    """The non-INVITE transactions around a call: a CANCEL for a 487, a few others."""
    done: list[tuple[str, int]] = [(sm.METHOD_CANCEL, 200)] if code == 487 else []
    if rng.random() < 0.5:
        method, final, _ = rng.choices(_REQUESTS, [w for _, _, w in _REQUESTS])[0]
        done.append((method, final))
    for method, final in done:
        sm.request_result(direction, method, final)
        counted = method if method in sm.REQUEST_METHODS else sm.METHOD_OTHER
        tally.count(sm.METRIC_REQUEST_RESULT_TOTAL, direction=direction, method=counted, code_class=f"{final // 100}xx")


def _end_calls(rng: random.Random, tally: Tally, keep: int) -> None:
    """End the oldest calls in progress beyond `keep`: BYE answered, duration recorded."""
    while len(tally.open_calls) > keep:
        direction, duration = tally.open_calls.pop(0)
        sm.call_ended(direction, duration_s=duration)
        tally.level(sm.METRIC_ACTIVE_CALLS, -1, direction=direction)
        tally.sample(sm.METRIC_CALL_DURATION_S, duration)
        sm.request_result(direction, sm.METHOD_BYE, 200)
        tally.count(sm.METRIC_REQUEST_RESULT_TOTAL, direction=direction, method=sm.METHOD_BYE, code_class="2xx")


def _voice(rng: random.Random, tally: Tally) -> None:
    if rng.random() < 0.02:
        sm.voice_attach_mode_fallback(sm.VOICE_MODE_PIPELINE, sm.VOICE_MODE_REALTIME)
        tally.count(sm.METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL, **{"from": "pipeline", "to": "realtime"})
    mode = sm.VOICE_MODE_REALTIME if rng.random() < 0.6 else sm.VOICE_MODE_CASCADED
    ok = rng.random() < 0.98
    sm.voice_attach(mode, ok)
    tally.count(sm.METRIC_VOICE_ATTACH_TOTAL, mode=mode, result="ok" if ok else "config_error")
    if rng.random() < 0.1:
        native_ok = rng.random() < 0.95
        sm.voice_attach_native(native_ok)
        tally.count(sm.METRIC_VOICE_ATTACH_NATIVE_TOTAL, result="ok" if native_ok else "err")


def _qos(rng: random.Random, tally: Tally) -> None:
    """RTCP numbers of one answered call, its MOS by the E-model, and the quality it must count."""
    path = rng.random()
    if path < 0.03:  # no RTCP arrived at all: a media problem in itself, graded unknown
        rtt = jitter = loss = mos = None
    else:
        if path < 0.88:  # a good path
            rtt, jitter, loss_mean = rng.lognormvariate(3.6, 0.5), rng.gammavariate(2.0, 2.0), 0.002  # ~37 ms
        elif path < 0.98:  # long haul or congested
            rtt, jitter, loss_mean = rng.lognormvariate(5.5, 0.3), rng.gammavariate(2.0, 10.0), 0.02  # ~245 ms
        else:  # a bad path
            rtt, jitter, loss_mean = rng.uniform(450, 900), rng.gammavariate(3.0, 20.0), 0.1
        rtt, jitter = round(rtt, 2), round(jitter, 2)
        loss = 0.0 if rng.random() < 0.5 else round(min(1.0, rng.expovariate(1 / loss_mean)), 5)  # often none
        codec = sm.CODEC_G711 if rng.random() < 0.75 else sm.CODEC_G729
        mos = round(sm.estimate_mos(rtt, jitter, loss, codec), 2)
    sm.observe_call_qos(rtt_ms=rtt, jitter_ms=jitter, loss_fraction=loss, mos_estimate=mos)
    tally.helper_calls += 1
    for name, value in (
        (sm.METRIC_CALL_RTT_MS, rtt),
        (sm.METRIC_CALL_JITTER_MS, jitter),
        (sm.METRIC_CALL_LOSS_FRACTION, loss),
        (sm.METRIC_CALL_MOS_ESTIMATE, mos),
    ):
        tally.sample(name, value)
    tally.also(sm.METRIC_CALL_QUALITY_TOTAL, grade=grade_of(mos))
    limits = sm.default().config.quality_thresholds
    for issue, crossed in (
        (sm.QUALITY_ISSUE_HIGH_RTT, rtt is not None and rtt > limits.rtt_ms),
        (sm.QUALITY_ISSUE_HIGH_JITTER, jitter is not None and jitter > limits.jitter_ms),
        (sm.QUALITY_ISSUE_HIGH_LOSS, loss is not None and loss > limits.loss_fraction),
        (sm.QUALITY_ISSUE_LOW_MOS, mos is not None and mos < limits.mos),
    ):
        if crossed:
            tally.also(sm.METRIC_CALL_QUALITY_ISSUE_TOTAL, issue=issue)


def quality_shares(totals: Totals) -> str:
    """The share of calls in each grade, and the rate of each issue, as they arrived."""
    calls = sum(totals.count(sm.METRIC_CALL_QUALITY_TOTAL, grade=g) for g in sm.QUALITY_GRADES) or 1
    grades = ", ".join(
        f"{g} {100 * totals.count(sm.METRIC_CALL_QUALITY_TOTAL, grade=g) / calls:.1f} %" for g in sm.QUALITY_GRADES
    )
    issue = sm.METRIC_CALL_QUALITY_ISSUE_TOTAL
    issues = ", ".join(f"{i} {100 * totals.count(issue, issue=i) / calls:.1f} %" for i in sm.QUALITY_ISSUES)
    return f"call quality of {calls:,.0f} calls: {grades}\nquality issues per call: {issues}"


def run_calls(calls: int, rate: float, seed: int, progress: Callable[[int, float], None]) -> tuple[Tally, float]:
    rng = random.Random(seed)
    tally = Tally()
    start = time.perf_counter()
    last = start
    for n in range(1, calls + 1):
        simulate_call(rng, tally)
        if rate > 0:
            ahead = start + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)  # pacing the simulated traffic
        if n % 500 == 0 and time.perf_counter() - last >= 1.0:
            last = time.perf_counter()
            progress(n, last - start)
    return tally, time.perf_counter() - start


def compare(tally: Tally, totals: Totals, out: TextIO) -> bool:
    """Print what was sent next to what arrived; True when every series agrees."""
    agree = True
    width = max(len(_label(k)) for k in tally.counts) + 2
    print(f"{'counter series':{width}} {'sent':>9} {'arrived':>9}", file=out)
    for key in sorted(tally.counts):
        name, labels = key
        sent, arrived = tally.counts[key], totals.count(name, **dict(labels))
        mark = "" if sent == arrived else "   <-- MISMATCH"
        agree &= sent == arrived
        print(f"{_label(key):{width}} {sent:>9,} {arrived:>9,.0f}{mark}", file=out)
    print(
        f"\n{'distribution':{width}} {'sent':>9} {'arrived':>9} {'min':>8} {'p50':>8} {'p95':>8} {'max':>8}", file=out
    )
    for name in sorted(tally.samples):
        sent_values, got = tally.samples[name], totals.sample_list(name)
        # Values go out with DEFAULT_PRECISION significant digits: each within half a unit of the last.
        tolerance = 1e-6 + 0.5 * 10 ** (1 - DEFAULT_PRECISION)
        ok = len(got) == len(sent_values) and abs(sum(got) - sum(sent_values)) <= tolerance * max(1.0, sum(sent_values))
        agree &= ok
        stats = (min(got), percentile(got, 0.5), percentile(got, 0.95), max(got)) if got else (0.0,) * 4
        cells = " ".join(f"{v:>8.3g}" for v in stats)
        print(
            f"{name:{width}} {len(sent_values):>9,} {len(got):>9,} {cells}{'' if ok else '   <-- MISMATCH'}", file=out
        )
    if tally.gauges:
        print(f"\n{'gauge (last level)':{width}} {'sent':>9} {'arrived':>9}", file=out)
    for key in sorted(tally.gauges):
        name, labels = key
        level, landed = tally.gauges[key], totals.gauge(name, **dict(labels))
        agree &= level == landed
        mark = "" if level == landed else "   <-- MISMATCH"
        print(f"{_label(key):{width}} {level:>9,} {landed or 0:>9,.0f}{mark}", file=out)
    _kpis(tally, totals, out)
    return agree


def _kpis(tally: Tally, totals: Totals, out: TextIO) -> None:
    """RFC 6076 SER, SEER and ISA (percent), from what was sent and from what arrived."""

    def sent(name: str, **labels: str) -> float:
        return sum(n for (k, ls), n in tally.counts.items() if k == name and labels.items() <= dict(ls).items())

    print(f"\n{'RFC 6076 (all directions)':28} {'sent':>9} {'arrived':>9}", file=out)
    for label, ratio in _rfc6076(sent).items():
        print(f"{label:28} {ratio:>8.2f}% {_rfc6076(totals.count)[label]:>8.2f}%", file=out)


def _rfc6076(count: Callable[..., float]) -> dict[str, float]:
    """SER, SEER and ISA from counts read through `count(name, **labels)`."""
    invites = count(sm.METRIC_INVITE_RESULT_TOTAL)
    redirected = count(sm.METRIC_INVITE_RESULT_TOTAL, code_class=sm.CODE_CLASS_3XX)

    def codes(*wanted: int) -> float:
        return sum(count(sm.METRIC_INVITE_RESPONSE_TOTAL, code=str(c)) for c in wanted)

    answered = max(invites - redirected, 1.0)
    return {
        "SER (200 / INVITE - 3xx)": 100 * codes(200) / answered,
        "SEER (200,480,486,600,603)": 100 * codes(200, 480, 486, 600, 603) / answered,
        "ISA (408,500,503,504)": 100 * codes(408, 500, 503, 504) / max(invites, 1.0),
    }


def _label(key: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    name, labels = key
    return name + "{" + ",".join(f"{k}:{v}" for k, v in labels) + "}"


# With --agent the demo's data says it is a demo: monitors grouped by `env` see a group of its own.
DEMO_ENV = "sip-statsd-demo"
DEMO_TAG = "sip_statsd_demo:true"
_AGENT_VARIABLES = ("DD_DOGSTATSD_URL", "DD_AGENT_HOST")


def demo(calls: int, rate: float, seed: int, agent: tuple[str, int] | None, out: TextIO = sys.stdout) -> int:
    """Run the demo; the exit code is 0 when what arrived matches what was sent.

    It never sends to an agent the user did not name: the DD_* environment's agent is
    ignored, and with `--agent` every line carries `env:sip-statsd-demo` and `sip_statsd_demo:true`.
    """
    # The demo checks what arrives against what it sent, as DogStatsD: every option a
    # SIP_STATSD_* variable would set (backend=off, a prefix ...) is named here, at its default.
    ignored = env_options(())
    defaults = Config()
    options = {name: getattr(defaults, name) for name in ignored}
    receiver: Receiver | None = None
    named = [f"{var}={os.environ[var]!r}" for var in _AGENT_VARIABLES if os.environ.get(var)]
    if agent is not None:
        if os.environ.get("DD_ENV", DEMO_ENV) != DEMO_ENV:
            print(f"sip-statsd demo: tagging env:{DEMO_ENV}, not DD_ENV={os.environ['DD_ENV']!r}", file=out)
        os.environ["DD_ENV"] = DEMO_ENV  # this process's own environment: the backend reads it
        tags = (*defaults.constant_tags, DEMO_TAG)
        sm.configure(**cast("sm.Options", {**options, "host": agent[0], "port": agent[1], "constant_tags": tags}))
        target = f"the agent at {agent[0]}:{agent[1]} (tagged env:{DEMO_ENV}, {DEMO_TAG})"
    else:
        receiver = Receiver(keep_datagrams=False)
        sm.configure(**cast("sm.Options", {**options, "host": receiver.host, "port": receiver.port}))
        target = f"an embedded DogStatsD receiver on {receiver.address}"
        if named:
            print(
                f"sip-statsd demo: not sending to the agent of {', '.join(named)} (name one with --agent HOST:PORT)",
                file=out,
            )
    if ignored:
        names = ", ".join(f"{ENV_PREFIX}{name.upper()}={os.environ[ENV_PREFIX + name.upper()]!r}" for name in ignored)
        print(f"sip-statsd demo: ignoring {names} (the demo sets up its own sending)", file=out)
    print(f"sip-statsd demo: {calls:,} calls (seed {seed}) to {target}", file=out, flush=True)

    def progress(done: int, elapsed: float) -> None:
        print(f"  {done:,}/{calls:,} calls, {done / elapsed:,.0f} calls/s", file=sys.stderr, flush=True)

    try:
        tally, elapsed = run_calls(calls, rate, seed, progress)
        sm.flush(timeout=30)
        stats = sm.stats()
        print(
            f"sent {tally.helper_calls:,} helper calls in {elapsed:.2f} s "
            f"({tally.helper_calls / elapsed:,.0f}/s, simulation included); "
            f"{stats.lines_sent:,} lines after in-process aggregation",
            file=out,
        )
        if stats.send_errors:
            print(f"send errors: {stats.send_errors}", file=out)
        if receiver is None:
            print("arrival is not checked when sending to a real agent", file=out)
            return 1 if stats.send_errors else 0
        totals = receiver.wait_for(lambda t: t.lines >= stats.lines_sent, timeout=30)
        print(f"arrived: {totals.lines:,} lines in {totals.datagrams:,} datagrams, {totals.bytes:,} bytes\n", file=out)
        agree = compare(tally, totals, out) and not totals.malformed
        if totals.malformed:
            print(f"\nmalformed lines: {totals.malformed[:5]}", file=out)
        print(f"\n{quality_shares(totals)}", file=out)
        verdict = "every series arrived as sent" if agree else "MISMATCH between sent and arrived"
        print(f"\n{verdict}", file=out)
        return 0 if agree else 1
    finally:
        sm.configure(backend="off")
        if receiver is not None:
            receiver.close()
