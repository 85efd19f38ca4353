"""What the integrations share: the RFC 6076 setup-delay rule and one call's clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from sip_statsd import SipMetrics

PeerOf = Callable[[str, int | None], str | None]


def peer_in(peer_map: Mapping[str, str], host: str, port: int | None) -> str | None:
    """The peer name of `host:port`, else of `host`, in `peer_map`; None (`other`) if neither."""
    if port is not None:
        found = peer_map.get(f"{host}:{port}")
        if found is not None:
            return found
    return peer_map.get(host)


# RFC 6076 §4.2: challenges are not setup failures; the retried INVITE follows them.
_NOT_A_SETUP_FAILURE = frozenset((401, 402, 407))


def setup_delay_success(code: int) -> bool | None:
    """True (success SRD) for 101-199 and 2xx, False for 4xx-6xx but 401, 402 and 407,
    None (no SRD) for 3xx and those challenges."""
    if 100 < code < 300:
        return True
    if code >= 400 and code not in _NOT_A_SETUP_FAILURE:
        return False
    return None


class InviteClock:
    """One initial INVITE transaction and the call it may start, for one direction.

    `response(code)` is called with every response first sent (UAS) or first received (UAC)
    on that transaction; it counts the first non-100 as the setup delay, the first final as
    the INVITE's outcome and a 2xx as a call in progress. `ended()` closes the call once."""

    __slots__ = ("_answered_at", "_delay_done", "_final_done", "_sent_at", "direction", "metrics", "peer")

    def __init__(self, metrics: SipMetrics, direction: str, peer: str | None = None) -> None:
        self.metrics = metrics
        self.direction = direction
        self.peer = peer  # the far end's name (None: `other` where peers are declared)
        self._sent_at = time.monotonic()
        self._delay_done = False
        self._final_done = False
        self._answered_at: float | None = None

    def restart(self) -> None:
        """A new initial INVITE transaction (after a challenge or a 422): its own delay and outcome."""
        self._sent_at = time.monotonic()
        self._delay_done = self._final_done = False

    @property
    def answered(self) -> bool:
        return self._answered_at is not None

    def response(self, code: int) -> None:
        if code <= 100 or self._final_done:
            return
        if not self._delay_done:
            self._delay_done = True
            success = setup_delay_success(code)
            if success is not None:
                delay = (time.monotonic() - self._sent_at) * 1000.0
                self.metrics.observe_setup_delay(self.direction, delay, success, self.peer)
        if code >= 200:
            self._final_done = True
            self.metrics.invite_result(self.direction, code, self.peer)
            if code < 300:
                self._answered_at = time.monotonic()
                self.metrics.call_started(self.direction, self.peer)

    def timed_out(self) -> None:
        """Timer B: no final response; a timeout, not an outcome (no invite_result, no delay)."""
        if not self._final_done:
            self._final_done = self._delay_done = True
            self.metrics.transaction_timeout("INVITE", self.peer)

    def ended(
        self,
        rtt_ms: float | None = None,
        jitter_ms: float | None = None,
        loss_fraction: float | None = None,
        mos_estimate: float | None = None,
    ) -> None:
        """The answered call is over: its duration and its QoS, once.

        The figures are what RTCP measured: None where it gave nothing (skipped), and a 0 is a
        measured sample (`zero_is_measured=True`): a clean call's loss is 0, not absent.
        """
        if self._answered_at is None:
            return
        duration = time.monotonic() - self._answered_at
        self._answered_at = None
        self.metrics.call_ended(self.direction, duration, self.peer)
        self.metrics.observe_call_qos(
            rtt_ms=rtt_ms,
            jitter_ms=jitter_ms,
            loss_fraction=loss_fraction,
            mos_estimate=mos_estimate,
            peer=self.peer,
            zero_is_measured=True,
        )
