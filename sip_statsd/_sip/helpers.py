"""The SIP helpers, bound to one catalog (those beyond the origin are made in `kpis`).

Each helper walks nested dicts with `dict.get` down to a series' `itertools.count` and
calls `next()` on it. An undeclared value falls through to the family's miss iterator
(the drop counter in soft mode), so the drop path costs what the hit path costs; only an
exception (an unhashable argument, or the strict-mode miss) takes the slow path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core.family import Counter
from .._core.series import CounterSeries
from .catalog import SipCatalog
from .kpis import make_kpi_helpers
from .peered import make_peered_helpers, make_peered_kpis, make_peered_qos
from .peerless import _NOWHERE, _arg, _follow_miss, _slow, make_origin_peerless
from .qos import make_observe_call_qos
from .registration import make_registration_helpers, make_stir_verify
from .values import (
    BY_SIDES,
    BYE_REASONS,
    DIRECTION_OUTBOUND,
    DIRECTIONS,
    NATIVE_RESULT_ERR,
    NATIVE_RESULT_OK,
    VOICE_ATTACH_MODES,
    VOICE_MODE_PIPELINE,
    VOICE_MODE_REALTIME,
    VOICE_RESULT_CONFIG_ERROR,
    VOICE_RESULT_OK,
)

_BOOLS = (True, False)
_Emit = Callable[..., None]


# What each helper's arguments may be, for naming the bad one on the slow path (made once).
_BYE_ARGS = (_arg("direction", DIRECTIONS), _arg("by", BY_SIDES), _arg("reason_class", BYE_REASONS))
_VOICE_ATTACH_ARGS = (_arg("mode", VOICE_ATTACH_MODES), _arg("ok", _BOOLS, "True or False"))
_FALLBACK_ARGS = (_arg("from", (VOICE_MODE_PIPELINE,)), _arg("to", (VOICE_MODE_REALTIME,)))
_NATIVE_ARGS = (_arg("ok", _BOOLS, "True or False"),)


def _counts(family: Counter, *keys: str) -> dict[object, Any]:
    """Nested dicts, one level per label key, down to each series' itertools.count."""
    table: dict[object, Any] = {}
    for series in family.all_series:
        assert isinstance(series, CounterSeries)
        level = table
        for key in keys[:-1]:
            level = level.setdefault(series.labels[key], {})
        level[series.labels[keys[-1]]] = series._count
    return table


class Helpers:
    """The helpers, bound to one catalog. Each is a plain function attribute.

    A helper walks nested dicts with `dict.get` down to a series' `itertools.count` and
    calls `next()` on it: exact under threads, no lock, no allocation but the int. An
    undeclared value falls through to the family's miss iterator (the drop counter in
    soft mode), so the drop path costs what the hit path costs. Only an exception (an
    unhashable argument, or the strict-mode miss) takes the slow path that names the
    bad argument.
    """

    invite_result: Callable[..., None]
    bye: Callable[[str, str, str], None]
    bye_outbound: Callable[[str, str], None]
    transaction_timeout: Callable[..., None]
    session_timer_refresh: Callable[[str], None]
    dtls_handshake: Callable[[str], None]
    stir_verify: Callable[..., None]
    voice_attach: Callable[[str, bool], None]
    voice_attach_mode_fallback: Callable[[str, str], None]
    voice_attach_native: Callable[[bool], None]
    observe_call_qos: Callable[..., None]
    # Beyond the origin (_kpis).
    request_result: Callable[..., None]
    call_started: Callable[..., None]
    call_ended: Callable[..., None]
    observe_setup_delay: Callable[..., None]
    # Registration KPIs (_registration).
    register_result: Callable[..., None]
    observe_registration_delay: Callable[..., None]
    registered_contacts: Callable[[int], None]

    def __init__(self, cat: SipCatalog) -> None:  # noqa: PLR0915 - one closure per helper
        if cat.peers:  # the same helpers, each looking its peer up first (in _peered)
            peered = make_peered_helpers(cat)
            self.invite_result, self.transaction_timeout = peered.invite_result, peered.transaction_timeout
        else:
            self.invite_result, self.transaction_timeout = make_origin_peerless(cat)

        bye_f = cat.bye
        bye_table = _counts(bye_f, "direction", "by", "reason_class")
        bye_get = bye_table.get
        bye_out_get = bye_table[DIRECTION_OUTBOUND].get
        bye_miss = bye_f._miss

        def bye(direction: str, by: str, reason_class: str) -> None:
            """Count a BYE: `by` local/remote, `reason_class` normal/timer-expired/error/user-hangup.

            >>> bye("inbound", "remote", "user-hangup")  # the far end hung up
            """
            try:
                next(bye_get(direction, _NOWHERE).get(by, _NOWHERE).get(reason_class, bye_miss))
            except Exception:
                _slow(bye_f, _BYE_ARGS, direction, by, reason_class)

        def bye_outbound(by: str, reason_class: str) -> None:
            """Count a BYE on an outbound call (the origin's `Bye`).

            >>> bye_outbound("local", "user-hangup")
            """
            try:
                next(bye_out_get(by, _NOWHERE).get(reason_class, bye_miss))
            except Exception:
                _slow(bye_f, _BYE_ARGS, DIRECTION_OUTBOUND, by, reason_class)

        _follow_miss(bye_f, bye, "bye_miss")  # the cell is shared with bye_outbound

        def one_label(family: Counter, name: str, doc: str) -> Callable[[str], None]:
            (key,) = family.label_keys
            args = (_arg(key, family.allowed[key]),)
            get = _counts(family, key).get
            miss = family._miss

            def emit(value: str) -> None:
                try:
                    next(get(value, miss))
                except Exception:
                    _slow(family, args, value)

            emit.__name__ = emit.__qualname__ = name
            emit.__doc__ = doc
            _follow_miss(family, emit, "miss")
            return emit

        session_timer_refresh = one_label(
            cat.session_timer_refresh,
            "session_timer_refresh",
            """Count an RFC 4028 refresh: ok, 422-bumped, 422-gave-up, 481 or role-swap.

            >>> session_timer_refresh("422-bumped")
            """,
        )
        dtls_handshake = one_label(
            cat.dtls_handshake,
            "dtls_handshake",
            """Count a DTLS-SRTP handshake: ok, fail, timeout or fingerprint-mismatch.

            >>> dtls_handshake("ok")
            """,
        )
        stir_verify = make_stir_verify(cat)

        va = cat.voice_attach
        va_table: dict[object, Any] = {
            mode: {
                ok: va.series(mode=mode, result=VOICE_RESULT_OK if ok else VOICE_RESULT_CONFIG_ERROR)._count
                for ok in _BOOLS
            }
            for mode in map(str, VOICE_ATTACH_MODES)
        }
        va_get = va_table.get
        va_miss = va._miss

        def voice_attach(mode: str, ok: bool) -> None:
            """Count a voice-attach decision: `mode` cascaded/realtime; `ok` False → config_error.

            >>> voice_attach("realtime", True)
            """
            try:
                next(va_get(mode, _NOWHERE).get(ok, va_miss))
            except Exception:
                _slow(va, _VOICE_ATTACH_ARGS, mode, ok)

        _follow_miss(va, voice_attach, "va_miss")

        fb = cat.voice_attach_mode_fallback
        fb_get = _counts(fb, "from", "to").get
        fb_miss = fb._miss

        def voice_attach_mode_fallback(from_mode: str, to_mode: str) -> None:
            """Count a voice-attach fallback (the only one declared: pipeline → realtime).

            >>> voice_attach_mode_fallback("pipeline", "realtime")
            """
            try:
                next(fb_get(from_mode, _NOWHERE).get(to_mode, fb_miss))
            except Exception:
                _slow(fb, _FALLBACK_ARGS, from_mode, to_mode)

        _follow_miss(fb, voice_attach_mode_fallback, "fb_miss")

        nat = cat.voice_attach_native
        nat_get = {ok: nat.series(result=NATIVE_RESULT_OK if ok else NATIVE_RESULT_ERR)._count for ok in _BOOLS}.get
        nat_miss = nat._miss

        def voice_attach_native(ok: bool) -> None:
            """Count a native voice attach: `ok` True → ok, False → err.

            >>> voice_attach_native(False)
            """
            try:
                next(nat_get(ok, nat_miss))
            except Exception:
                _slow(nat, _NATIVE_ARGS, ok)

        _follow_miss(nat, voice_attach_native, "nat_miss")

        self.bye = bye
        self.bye_outbound = bye_outbound
        self.session_timer_refresh = session_timer_refresh
        self.dtls_handshake = dtls_handshake
        self.stir_verify = stir_verify
        self.voice_attach = voice_attach
        self.voice_attach_mode_fallback = voice_attach_mode_fallback
        self.voice_attach_native = voice_attach_native
        self.observe_call_qos = make_peered_qos(cat) if cat.peers else make_observe_call_qos(cat)
        kpis = make_peered_kpis(cat) if cat.peers else make_kpi_helpers(cat)
        self.request_result = kpis.request_result
        self.call_started = kpis.call_started
        self.call_ended = kpis.call_ended
        self.observe_setup_delay = kpis.observe_setup_delay
        registration = make_registration_helpers(cat)
        self.register_result = registration.register_result
        self.observe_registration_delay = registration.observe_registration_delay
        self.registered_contacts = registration.registered_contacts
