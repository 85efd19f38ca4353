"""The SIP catalog: the origin package's metrics and those added since, declared with the public family API.

Every series of every family exists once `build_catalog` returns; the helpers that feed
them live in `helpers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from .._core.drops import show
from .._core.family import Counter, Distribution, Family
from .._core.gauge import Gauge
from .._core.names import check_value
from .._core.recorder import Recorder
from .._core.series import FLOAT_MAX
from .values import (
    ATTESTATIONS,
    BY_SIDES,
    BYE_REASONS,
    CODE_CLASSES,
    DEFAULT_RESPONSE_CODES,
    DIRECTIONS,
    DTLS_RESULTS,
    MAX_PEERS,
    MAX_RESPONSE_CODES,
    METHODS,
    METRIC_ACTIVE_CALLS,
    METRIC_BYE_TOTAL,
    METRIC_CALL_DURATION_S,
    METRIC_CALL_JITTER_MS,
    METRIC_CALL_LOSS_FRACTION,
    METRIC_CALL_MOS_ESTIMATE,
    METRIC_CALL_QUALITY_ISSUE_TOTAL,
    METRIC_CALL_QUALITY_TOTAL,
    METRIC_CALL_RTT_MS,
    METRIC_DTLS_HANDSHAKE_TOTAL,
    METRIC_INVITE_RESPONSE_TOTAL,
    METRIC_INVITE_RESULT_TOTAL,
    METRIC_REGISTER_RESULT_TOTAL,
    METRIC_REGISTERED_CONTACTS,
    METRIC_REGISTRATION_REQUEST_DELAY_MS,
    METRIC_REQUEST_RESULT_TOTAL,
    METRIC_SESSION_REQUEST_DELAY_MS,
    METRIC_SESSION_TIMER_REFRESH_TOTAL,
    METRIC_STIR_ATTESTATION_TOTAL,
    METRIC_STIR_VERIFY_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
    METRIC_VOICE_ATTACH_NATIVE_TOTAL,
    METRIC_VOICE_ATTACH_TOTAL,
    NATIVE_RESULT_ERR,
    NATIVE_RESULT_OK,
    PEER_OTHER,
    QUALITY_GRADES,
    QUALITY_ISSUES,
    REFRESH_RESULTS,
    REGISTER_RESULTS,
    REQUEST_METHODS,
    SETUP_RESULTS,
    STIR_RESULTS,
    VOICE_ATTACH_MODES,
    VOICE_MODE_PIPELINE,
    VOICE_MODE_REALTIME,
    VOICE_RESULT_CONFIG_ERROR,
    VOICE_RESULT_OK,
)

SIP_CODES = range(100, 700)


def code_class(code: int) -> str:
    return f"{code // 100}xx"


def check_response_codes(codes: object) -> tuple[int, ...]:
    """The exact codes of sip_invite_response_total, checked: ints 100-699, no repeats, bounded.

    Checked as they are consumed: an endless iterable raises at its first bad, repeated or
    one-too-many code, and the message quotes a bounded repr.
    """
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise ValueError(f"response_codes must be a collection of SIP response codes, not {show(codes)}")
    checked: list[int] = []
    seen: set[int] = set()
    for code in codes:
        if type(code) is not int or code not in SIP_CODES:
            raise ValueError(f"response_codes: {show(code)} is not a SIP response code (an int from 100 to 699)")
        if code in seen:
            raise ValueError(f"response_codes repeats the code {code}")
        if len(checked) == MAX_RESPONSE_CODES:
            raise ValueError(
                f"response_codes has more than {MAX_RESPONSE_CODES} codes; at most {MAX_RESPONSE_CODES} keep the "
                "series bounded"
            )
        seen.add(code)
        checked.append(code)
    return tuple(sorted(checked))


def check_peers(peers: object) -> tuple[str, ...]:
    """The declared peers, checked: label-safe names, no repeats, not `other`, at most MAX_PEERS.

    Kept in the order given (dashboards list them so). A peer is a far end an operator
    names (a carrier, trunk, gateway, dispatcher set), never a raw address.
    """
    if isinstance(peers, str | bytes) or not isinstance(peers, Iterable):
        raise ValueError(f"peers must be a collection of peer names, not {show(peers)}")
    checked: list[str] = []
    for peer in peers:
        try:
            name = check_value("peer", peer)
        except ValueError as error:
            raise ValueError(f"peers: {error}") from None
        if name.lower() == PEER_OTHER:  # Datadog lowercases tag values: `Other` would be `other`
            raise ValueError(f"peers: {PEER_OTHER!r} is where every undeclared peer counts; name yours otherwise")
        if any(name.lower() == seen.lower() for seen in checked):  # one series to Datadog, which lowercases
            raise ValueError(f"peers repeats the peer {name!r} (peer names are compared without case)")
        if len(checked) == MAX_PEERS:
            raise ValueError(
                f"peers has more than {MAX_PEERS} names; at most {MAX_PEERS} (and `other`) keep the series bounded"
            )
        checked.append(name)
    return tuple(checked)


@dataclass(frozen=True)
class SipCatalog:
    """The SIP families of one recorder."""

    invite_result: Counter
    bye: Counter
    transaction_timeout: Counter
    session_timer_refresh: Counter
    dtls_handshake: Counter
    stir_verify: Counter
    voice_attach: Counter
    voice_attach_mode_fallback: Counter
    voice_attach_native: Counter
    call_rtt_ms: Distribution
    call_jitter_ms: Distribution
    call_loss_fraction: Distribution
    call_mos_estimate: Distribution
    invite_response: Counter
    request_result: Counter
    active_calls: Gauge
    call_duration_s: Distribution
    session_request_delay_ms: Distribution
    # Call quality, counted by observe_call_qos too.
    call_quality: Counter
    call_quality_issue: Counter
    # Registration KPIs and STIR attestation (issue 27).
    register_result: Counter
    registration_request_delay_ms: Distribution
    registered_contacts: Gauge
    stir_attestation: Counter
    # The declared peers (empty: no family has a `peer` label).
    peers: tuple[str, ...] = ()

    @property
    def families(self) -> tuple[Family, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "peers")


def build_catalog(
    recorder: Recorder, response_codes: Iterable[int] = DEFAULT_RESPONSE_CODES, peers: Iterable[str] = ()
) -> SipCatalog:
    """Declare the SIP families on `recorder`: every series exists when this returns.

    `response_codes` are the exact codes of sip_invite_response_total (any other code
    counts as its class there); see `check_response_codes`. `peers` (see `check_peers`)
    add a last label, `peer` (the names, then `other`), to the families an operator splits
    by far end; without peers no family has it and the series are those of before.
    """
    codes = check_response_codes(response_codes)
    peer_names = check_peers(peers)
    # The `peer` label, last, on the families split by far end (none without peers).
    per_peer: dict[str, tuple[str, ...]] = {"peer": (*peer_names, PEER_OTHER)} if peer_names else {}

    def counter(name: str, description: str, **labels: Iterable[str]) -> Counter:
        return Counter(name, labels=labels, description=description, recorder=recorder)

    def qos(name: str, description: str, maximum: float, minimum: float = 0.0) -> Distribution:
        return Distribution(
            name, per_peer or None, minimum=minimum, maximum=maximum, description=description, recorder=recorder
        )

    invite_result = counter(
        METRIC_INVITE_RESULT_TOTAL,
        "Final INVITE outcomes by direction and response class.",
        direction=DIRECTIONS,
        code_class=CODE_CLASSES,
        **per_peer,
    )
    invite_response = counter(
        METRIC_INVITE_RESPONSE_TOTAL,
        "Final INVITE responses by direction and exact code (allowlisted; any other code as its class).",
        direction=DIRECTIONS,
        code=(*map(str, codes), *CODE_CLASSES),
        **per_peer,
    )
    # invite_result() counts once, in sip_invite_response_total's series; the flusher derives
    # sip_invite_result_total's classes from them (CounterSeries._take), so the hot path
    # costs what it cost when it fed the classes alone.
    for source in invite_response.all_series:
        code = source.labels["code"]
        klass = code if code in CODE_CLASSES else code_class(int(code))
        labels = {k: v for k, v in source.labels.items() if k != "code"}
        derived = invite_result.series(**labels, code_class=klass)
        derived._count_also(source)  # type: ignore[arg-type]
    return SipCatalog(
        invite_result=invite_result,
        bye=counter(
            METRIC_BYE_TOTAL,
            "BYEs by direction, the side that hung up, and reason.",
            direction=DIRECTIONS,
            by=BY_SIDES,
            reason_class=BYE_REASONS,
        ),
        transaction_timeout=counter(
            METRIC_TRANSACTION_TIMEOUT_TOTAL,
            "Transaction timeouts (Timer B/F) by method; unknown methods count as 'other'.",
            method=METHODS,
            **per_peer,
        ),
        session_timer_refresh=counter(
            METRIC_SESSION_TIMER_REFRESH_TOTAL,
            "RFC 4028 session-timer refresh outcomes.",
            result=REFRESH_RESULTS,
        ),
        dtls_handshake=counter(METRIC_DTLS_HANDSHAKE_TOTAL, "DTLS-SRTP handshake outcomes.", result=DTLS_RESULTS),
        stir_verify=counter(METRIC_STIR_VERIFY_TOTAL, "RFC 8224 STIR verification outcomes.", result=STIR_RESULTS),
        voice_attach=counter(
            METRIC_VOICE_ATTACH_TOTAL,
            "Voice-attach decisions by mode and result.",
            mode=VOICE_ATTACH_MODES,
            result=(VOICE_RESULT_OK, VOICE_RESULT_CONFIG_ERROR),
        ),
        voice_attach_mode_fallback=counter(
            METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
            "Voice-attach mode fallbacks.",
            **{"from": (VOICE_MODE_PIPELINE,), "to": (VOICE_MODE_REALTIME,)},
        ),
        voice_attach_native=counter(
            METRIC_VOICE_ATTACH_NATIVE_TOTAL,
            "Native voice-attach outcomes.",
            result=(NATIVE_RESULT_OK, NATIVE_RESULT_ERR),
        ),
        call_rtt_ms=qos(METRIC_CALL_RTT_MS, "Per-call RTCP round-trip time, milliseconds.", FLOAT_MAX),
        call_jitter_ms=qos(METRIC_CALL_JITTER_MS, "Per-call RTCP interarrival jitter, milliseconds.", FLOAT_MAX),
        call_loss_fraction=qos(METRIC_CALL_LOSS_FRACTION, "Per-call RTCP packet loss fraction, 0 to 1.", 1.0),
        call_mos_estimate=qos(METRIC_CALL_MOS_ESTIMATE, "Per-call estimated MOS, 1 to 5.", 5.0, 1.0),
        invite_response=invite_response,
        request_result=counter(
            METRIC_REQUEST_RESULT_TOTAL,
            "Final responses of non-INVITE transactions by direction, method and class.",
            direction=DIRECTIONS,
            method=REQUEST_METHODS,
            code_class=CODE_CLASSES,
            **per_peer,
        ),
        active_calls=Gauge(
            METRIC_ACTIVE_CALLS,
            {"direction": DIRECTIONS, **per_peer},
            description="Calls in progress (started, not yet ended) by direction.",
            recorder=recorder,
        ),
        call_duration_s=Distribution(
            METRIC_CALL_DURATION_S,
            {"direction": DIRECTIONS, **per_peer},
            minimum=0.0,
            description="Call duration in seconds (RFC 6076 SDT), at call end.",
            recorder=recorder,
        ),
        session_request_delay_ms=Distribution(
            METRIC_SESSION_REQUEST_DELAY_MS,
            {"direction": DIRECTIONS, "result": SETUP_RESULTS, **per_peer},
            minimum=0.0,
            description="Session request delay (RFC 6076 SRD), milliseconds: INVITE to the first "
            "non-100 provisional or 2xx (success), or to a failure final response (failure).",
            recorder=recorder,
        ),
        call_quality=counter(
            METRIC_CALL_QUALITY_TOTAL,
            "Calls by ITU-T G.109 quality grade of their MOS; 'unknown' when no valid MOS was given.",
            grade=QUALITY_GRADES,
            **per_peer,
        ),
        call_quality_issue=counter(
            METRIC_CALL_QUALITY_ISSUE_TOTAL,
            "Calls past a quality threshold (high RTT, jitter or loss; low MOS), one count per issue.",
            issue=QUALITY_ISSUES,
            **per_peer,
        ),
        register_result=counter(
            METRIC_REGISTER_RESULT_TOTAL,
            "REGISTER final responses (RFC 6076 IRA): success (2xx), challenged (401/407), "
            "timeout (408 or Timer F), failure (any other).",
            direction=DIRECTIONS,
            result=REGISTER_RESULTS,
            **per_peer,
        ),
        registration_request_delay_ms=Distribution(
            METRIC_REGISTRATION_REQUEST_DELAY_MS,
            {"direction": DIRECTIONS, "result": SETUP_RESULTS, **per_peer},
            minimum=0.0,
            description="Registration request delay (RFC 6076 RRD), milliseconds: the first REGISTER of an "
            "attempt (before any 401/407 challenge) to its final 2xx (success) or failure response.",
            recorder=recorder,
        ),
        registered_contacts=Gauge(
            METRIC_REGISTERED_CONTACTS,
            None,
            description="Contacts a registrar holds (a level for the whole host, e.g. usrloc's count).",
            recorder=recorder,
        ),
        stir_attestation=counter(
            METRIC_STIR_ATTESTATION_TOTAL,
            "RFC 8224 STIR verifications whose SHAKEN attestation (A, B, C) the verifier knows.",
            result=STIR_RESULTS,
            attestation=ATTESTATIONS,
        ),
        peers=peer_names,
    )
