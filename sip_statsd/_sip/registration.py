"""Registration KPIs (RFC 6076 §4.1 RRD, §4.2 IRA), the registered-contacts gauge, STIR attestation.

Same discipline as `helpers`: look-up tables made once; an undeclared value falls through
to the family's miss iterator; only an exception takes the slow path naming the argument.
With declared peers each table is looked up by peer first (an undeclared peer is `other`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._core.drops import allowed_text
from .._core.family import Family
from .._core.gauge import GaugeSeries
from .._core.names import DROP_INVALID_NUMBER, DROP_UNKNOWN_VALUE
from .._core.series import DistributionSeries
from .catalog import SipCatalog
from .values import (
    ATTESTATIONS,
    DIRECTIONS,
    PEER_OTHER,
    REGISTER_CHALLENGED,
    REGISTER_FAILURE,
    REGISTER_SUCCESS,
    REGISTER_TIMEOUT,
    SETUP_RESULT_FAILURE,
    SETUP_RESULT_SUCCESS,
    STIR_NO_IDENTITY,
    STIR_RESULTS,
)

_NOWHERE: dict[object, Any] = {}
_FINAL_CODES = range(200, 700)
_DIRECTION = f"one of {allowed_text(DIRECTIONS)}"
MAX_CONTACTS = 2**53  # a count a float carries exactly; far beyond any location table


def register_result_of(code: int) -> str:
    """The `result` a REGISTER's final response counts as (RFC 6076 §4.1-4.2).

    A 401/407 is a challenge (the attempt goes on), 408 a timeout (also what a client
    transaction reports when Timer F fires, RFC 3261 §8.1.3.1), 2xx a success.
    """
    if 200 <= code < 300:
        return REGISTER_SUCCESS
    if code in (401, 407):
        return REGISTER_CHALLENGED
    if code == 408:
        return REGISTER_TIMEOUT
    return REGISTER_FAILURE


def _drop(family: Family, key: str, value: object, expected: str) -> None:
    family.recorder._drop(family, DROP_UNKNOWN_VALUE, key, value, expected)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except Exception:
        return False
    return True


def peer_labels(cat: SipCatalog) -> tuple[dict[str, str], ...]:
    """The extra labels of each peer's series, the declared peers first and `other` last."""
    return tuple({"peer": p} for p in (*cat.peers, PEER_OTHER)) if cat.peers else ({},)


@dataclass(frozen=True)
class RegistrationHelpers:
    register_result: Callable[..., None]
    observe_registration_delay: Callable[..., None]
    registered_contacts: Callable[[int], None]


def make_registration_helpers(cat: SipCatalog) -> RegistrationHelpers:
    rr = cat.register_result
    rrd = cat.registration_request_delay_ms

    def results(extra: dict[str, str]) -> dict[object, Any]:  # direction → code → count
        return {
            str(d): {c: rr.series(direction=d, result=register_result_of(c), **extra)._count for c in _FINAL_CODES}
            for d in DIRECTIONS
        }

    def delays(extra: dict[str, str]) -> dict[object, Any]:  # direction → success → series
        return {
            str(d): {
                True: rrd.series(direction=d, result=SETUP_RESULT_SUCCESS, **extra),
                False: rrd.series(direction=d, result=SETUP_RESULT_FAILURE, **extra),
            }
            for d in DIRECTIONS
        }

    *declared, other_labels = peer_labels(cat)
    by_peer = {labels["peer"]: (results(labels), delays(labels)) for labels in declared}
    other_results, other_delays = results(other_labels), delays(other_labels)
    results_by_peer: dict[object, Any] = {p: t[0] for p, t in by_peer.items()}
    delays_by_peer: dict[object, Any] = {p: t[1] for p, t in by_peer.items()}
    results_get, delays_get = results_by_peer.get, delays_by_peer.get
    rr_miss = rr._miss

    def register_result_slow(direction: object, code: object, peer: object) -> None:
        if not _hashable(peer):  # not a declared peer: `other`
            register_result(direction, code)  # type: ignore[arg-type]
        elif direction not in DIRECTIONS:
            _drop(rr, "direction", direction, _DIRECTION)
        else:
            _drop(rr, "code", code, "a final SIP response code from 200 to 699 (408 for a timeout)")

    def register_result(direction: str, code: int, peer: str | None = None) -> None:
        """Count a REGISTER's final response: 2xx success, 401/407 challenged, 408 timeout, else failure.

        A client whose transaction timed out (Timer F) passes 408. IRA (RFC 6076 §4.2) is
        (failure + timeout) / (success + failure + timeout); challenges are in neither.

        >>> register_result("inbound", 401)   # sip_register_result_total{direction:inbound,result:challenged}
        """
        try:
            next(results_get(peer, other_results).get(direction, _NOWHERE).get(code, rr_miss))
        except Exception:
            register_result_slow(direction, code, peer)

    rr._follow_miss(lambda miss: _set_cell(register_result, "rr_miss", miss))

    def observe_registration_delay(direction: str, delay_ms: float, success: bool, peer: str | None = None) -> None:
        """Record an RFC 6076 registration request delay (RRD), in milliseconds (>= 0).

        From the first REGISTER of an attempt (a 401/407 challenge and the REGISTER that
        answers it are inside) to its final 2xx (`success` True) or failure response (False).

        >>> observe_registration_delay("outbound", 41.0, True)
        """
        try:
            series: DistributionSeries | None = delays_get(peer, other_delays).get(direction, _NOWHERE).get(success)
        except Exception:
            series = None if _hashable(peer) else other_delays.get(direction, _NOWHERE).get(success)
        if series is not None:
            series.observe(delay_ms)
        elif direction not in DIRECTIONS:
            _drop(rrd, "direction", direction, _DIRECTION)
        else:
            _drop(rrd, "success", success, "True or False")

    contacts_family = cat.registered_contacts
    contacts = contacts_family.series()
    assert isinstance(contacts, GaugeSeries)

    def registered_contacts(count: int) -> None:
        """Set the number of contacts a registrar holds (a level; one series for the host).

        Call it from one place per host (a timer, or after each REGISTER) with the
        location table's count: every process setting it sends the same series.

        A count that is not an integer from 0 to 2**53 (a bool, -1, 1.5) is dropped and
        counted as invalid_number (raised under strict).

        >>> registered_contacts(1520)
        """
        if type(count) is int and 0 <= count <= MAX_CONTACTS:
            contacts.set(count)
        else:
            contacts_family._drop(DROP_INVALID_NUMBER, "count", count)

    return RegistrationHelpers(register_result, observe_registration_delay, registered_contacts)


def make_stir_verify(cat: SipCatalog) -> Callable[..., None]:
    """`stir_verify(result, attestation=None)`: sip_stir_verify_total, and the attestation if known."""
    sv, att = cat.stir_verify, cat.stir_attestation
    sv_get = {str(r): sv.series(result=r)._count for r in STIR_RESULTS}.get
    att_get = {
        str(r): {str(a): att.series(result=r, attestation=a)._count for a in ATTESTATIONS} for r in STIR_RESULTS
    }.get
    sv_miss, att_miss = sv._miss, att._miss
    results_text = f"one of {allowed_text(STIR_RESULTS)}"

    def stir_verify(result: str, attestation: str | None = None) -> None:
        """Count an RFC 8224 STIR verification: verified, failed, soft-fail or no-identity.

        `attestation` (A, B or C, RFC 8588), where the verifier knows it, also counts the
        verification in sip_stir_attestation_total{result, attestation}. With `no-identity`
        there was no PASSporT, so no attestation: one given is dropped (unknown_value, raised
        under strict); the verification itself is counted.

        >>> stir_verify("verified", attestation="A")
        """
        try:
            next(sv_get(result, sv_miss))
        except Exception:
            _drop(sv, "result", result, results_text)
            return
        if attestation is not None:
            if result == STIR_NO_IDENTITY:
                _drop(att, "attestation", attestation, "None with no-identity (no PASSporT, no attestation)")
                return
            try:
                next(att_get(result, _NOWHERE).get(attestation, att_miss))
            except Exception:
                _drop(att, "attestation", attestation, f"one of {allowed_text(ATTESTATIONS)}")

    sv._follow_miss(lambda miss: _set_cell(stir_verify, "sv_miss", miss))
    att._follow_miss(lambda miss: _set_cell(stir_verify, "att_miss", miss))
    return stir_verify


def _set_cell(emit: Callable[..., None], name: str, value: object) -> None:
    """Rewrite the closure variable `name` of `emit` (shared by every closure over it)."""
    assert emit.__closure__ is not None
    emit.__closure__[emit.__code__.co_freevars.index(name)].cell_contents = value
