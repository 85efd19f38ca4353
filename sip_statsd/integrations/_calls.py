"""What the integrations share: the RFC 6076 setup-delay rule and one call's clock."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping

from sip_statsd import SipMetrics

PeerOf = Callable[[str, int | None], str | None]


def canonical_host(host: str) -> str:
    """The one form of a host in `peer_map` keys and `peer_of`: lower case, no root dot, IPv6
    without brackets and compressed (`[2001:DB8:0::5]` -> `2001:db8::5`), as Sippy's addresses are."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return host
    return host[:-1] if host.endswith(".") else host


def host_key(host: str, port: int | None) -> str:
    """`peer_map`'s key of a host and port: `10.0.0.5:5060`, `[2001:db8::5]:5060` (as in a URI)."""
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_in(peer_map: Mapping[str, str], host: str, port: int | None) -> str | None:
    """The peer name of `host:port`, else of `host`, in `peer_map`; None (`other`) if neither.

    `host` is taken in its canonical form (`canonical_host`); the keys must be written in it:
    lower case, IPv6 bare alone (`2001:db8::5`) and bracketed with a port (`[2001:db8::5]:5060`).
    """
    host = canonical_host(host)
    if port is not None:
        found = peer_map.get(host_key(host, port))
        if found is not None:
            return found
    return peer_map.get(host)


def uri_host(uri: str) -> tuple[str, int | None] | None:
    """The canonical host and port of a SIP URI or name-addr; None for another scheme or junk.

    Only the URI counts: in `"sip:x@10.0.0.5" <sip:mallory@203.0.113.9>` that is the one inside
    the last `<...>` (a display name says what its sender wants); user info, `;params` and
    `?headers` are cut off.
    """
    start, end = uri.rfind("<"), uri.rfind(">")
    if start >= 0 and end > start:
        uri = uri[start + 1 : end]
    uri = uri.strip()
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        return None
    rest = rest.split("?", 1)[0]
    hostport = rest.rpartition("@")[2].split(";", 1)[0]
    if hostport.startswith("["):
        host, bracket, port_text = hostport[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            return None
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or (port_text and not (port_text.isascii() and port_text.isdigit())):
        return None
    port = int(port_text) if port_text else None
    return canonical_host(host), port if port is None or 0 < port < 65536 else None


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
