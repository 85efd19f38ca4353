"""sip-statsd: SIP signalling metrics for StatsD / DogStatsD, bounded and nearly free.

>>> import sip_statsd
>>> sip_statsd.invite_result("inbound", 486)
>>> sip_statsd.observe_call_qos(rtt_ms=38.5, jitter_ms=4.2, loss_fraction=0.003, mos_estimate=4.3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core import process as _process
from ._core.config import BACKENDS, DELIVERIES, FLAVORS, RECEIVERS, Config
from ._core.family import Counter, Distribution, Family
from ._core.gauge import Gauge, GaugeSeries
from ._core.names import (
    DROP_INVALID_NUMBER,
    DROP_REASONS,
    DROP_SAMPLE_OVERFLOW,
    DROP_UNKNOWN_VALUE,
    METRIC_DROPPED_INPUTS_TOTAL,
    METRIC_SAMPLED_AWAY_TOTAL,
    METRIC_SEND_ERRORS_TOTAL,
    DropReason,
)
from ._core.process import flush_on_sigterm
from ._core.sending import Stats
from ._core.series import CounterSeries, DistributionSeries, InvalidInputError, Series
from ._sip import operator_view as _operator_view
from ._sip.api import DEFAULT as _DEFAULT
from ._sip.api import Options, SipMetrics
from ._sip.catalog import SipCatalog
from ._sip.emodel import estimate_mos, r_factor
from ._sip.helpers import Helpers as _Helpers
from ._sip.operator_view import *  # noqa: F403 - peers, registration, STIR attestation: its __all__
from ._sip.quality import QualityThresholds
from ._sip.values import (
    BY_LOCAL,
    BY_REMOTE,
    BY_SIDES,
    BYE_REASON_ERROR,
    BYE_REASON_NORMAL,
    BYE_REASON_TIMER_EXPIRED,
    BYE_REASON_USER_HANGUP,
    BYE_REASONS,
    CODE_CLASS_1XX,
    CODE_CLASS_2XX,
    CODE_CLASS_3XX,
    CODE_CLASS_4XX,
    CODE_CLASS_5XX,
    CODE_CLASS_6XX,
    CODE_CLASSES,
    CODEC_G711,
    CODEC_G729,
    CODECS,
    DEFAULT_RESPONSE_CODES,
    DIRECTION_INBOUND,
    DIRECTION_OUTBOUND,
    DIRECTIONS,
    DTLS_FAIL,
    DTLS_FINGERPRINT_MISMATCH,
    DTLS_OK,
    DTLS_RESULTS,
    DTLS_TIMEOUT,
    MAX_RESPONSE_CODES,
    METHOD_ACK,
    METHOD_BYE,
    METHOD_CANCEL,
    METHOD_INFO,
    METHOD_INVITE,
    METHOD_MESSAGE,
    METHOD_NOTIFY,
    METHOD_OPTIONS,
    METHOD_OTHER,
    METHOD_PRACK,
    METHOD_PUBLISH,
    METHOD_REFER,
    METHOD_REGISTER,
    METHOD_SUBSCRIBE,
    METHOD_UPDATE,
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
    METRIC_REQUEST_RESULT_TOTAL,
    METRIC_SESSION_REQUEST_DELAY_MS,
    METRIC_SESSION_TIMER_REFRESH_TOTAL,
    METRIC_STIR_VERIFY_TOTAL,
    METRIC_TRANSACTION_TIMEOUT_TOTAL,
    METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL,
    METRIC_VOICE_ATTACH_NATIVE_TOTAL,
    METRIC_VOICE_ATTACH_TOTAL,
    NATIVE_RESULT_ERR,
    NATIVE_RESULT_OK,
    NATIVE_RESULTS,
    QUALITY_GRADE_BEST,
    QUALITY_GRADE_HIGH,
    QUALITY_GRADE_LOW,
    QUALITY_GRADE_MEDIUM,
    QUALITY_GRADE_POOR,
    QUALITY_GRADE_UNKNOWN,
    QUALITY_GRADE_UNUSABLE,
    QUALITY_GRADES,
    QUALITY_ISSUE_HIGH_JITTER,
    QUALITY_ISSUE_HIGH_LOSS,
    QUALITY_ISSUE_HIGH_RTT,
    QUALITY_ISSUE_LOW_MOS,
    QUALITY_ISSUES,
    REFRESH_422_BUMPED,
    REFRESH_422_GAVE_UP,
    REFRESH_481,
    REFRESH_OK,
    REFRESH_RESULTS,
    REFRESH_ROLE_SWAP,
    REQUEST_METHODS,
    SETUP_RESULT_FAILURE,
    SETUP_RESULT_SUCCESS,
    SETUP_RESULTS,
    STIR_FAILED,
    STIR_NO_IDENTITY,
    STIR_RESULTS,
    STIR_SOFT_FAIL,
    STIR_VERIFIED,
    VOICE_ATTACH_MODES,
    VOICE_MODE_CASCADED,
    VOICE_MODE_PIPELINE,
    VOICE_MODE_REALTIME,
    VOICE_RESULT_CONFIG_ERROR,
    VOICE_RESULT_OK,
    VOICE_RESULTS,
    By,
    ByeReason,
    Codec,
    CodeClass,
    Direction,
    DtlsResult,
    Method,
    NativeResult,
    QualityGrade,
    QualityIssue,
    RefreshResult,
    SetupResult,
    StirResult,
    VoiceMode,
    VoiceResult,
)
from ._wire.transport import FAULT_KINDS


def __getattr__(name: str) -> Any:
    """A recording helper (its first look-up starts delivery), or `__version__`, read from
    the installed metadata when asked (importlib.metadata costs ~60 ms)."""
    if name in _RECORDING:
        _DEFAULT.recorder.wake()
        helper = getattr(_DEFAULT, name)
        globals()[name] = helper  # later look-ups find it here, at no cost
        return helper
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("sip-statsd")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        found = "0+unknown"
    globals()["__version__"] = found
    return found


# The recording helpers (and the catalog) are looked up on first use, through `__getattr__`
# below, which starts the process-wide instance's delivery: `import sip_statsd` starts no thread.
_RECORDING = frozenset((*_Helpers.__annotations__, "catalog", "peer"))  # every helper (Helpers), peer views
if TYPE_CHECKING:
    invite_result = _DEFAULT.invite_result
    bye = _DEFAULT.bye
    bye_outbound = _DEFAULT.bye_outbound
    transaction_timeout = _DEFAULT.transaction_timeout
    session_timer_refresh = _DEFAULT.session_timer_refresh
    dtls_handshake = _DEFAULT.dtls_handshake
    stir_verify = _DEFAULT.stir_verify
    voice_attach = _DEFAULT.voice_attach
    voice_attach_mode_fallback = _DEFAULT.voice_attach_mode_fallback
    voice_attach_native = _DEFAULT.voice_attach_native
    observe_call_qos = _DEFAULT.observe_call_qos
    request_result = _DEFAULT.request_result
    call_started = _DEFAULT.call_started
    call_ended = _DEFAULT.call_ended
    observe_setup_delay = _DEFAULT.observe_setup_delay
    register_result = _DEFAULT.register_result
    observe_registration_delay = _DEFAULT.observe_registration_delay
    registered_contacts = _DEFAULT.registered_contacts
    peer = _DEFAULT.peer  # the hot helpers bound to one peer: peer("carrier-a").invite_result(...)
    catalog = _DEFAULT.catalog

configure = _DEFAULT.configure
flush = _DEFAULT.flush
# delivery="host": at the end of each handler of a host that holds the GIL (Kamailio).
host_tick = _DEFAULT.recorder.host_tick
close = _DEFAULT.close
stats = _DEFAULT.stats


def default() -> SipMetrics:
    """The process-wide instance behind the module-level helpers (asking for it starts its delivery)."""
    _DEFAULT.recorder.wake()
    return _DEFAULT


__all__ = [
    "BACKENDS",
    "BYE_REASONS",
    "BYE_REASON_ERROR",
    "BYE_REASON_NORMAL",
    "BYE_REASON_TIMER_EXPIRED",
    "BYE_REASON_USER_HANGUP",
    "BY_LOCAL",
    "BY_REMOTE",
    "BY_SIDES",
    "CODECS",
    "CODEC_G711",
    "CODEC_G729",
    "CODE_CLASSES",
    "CODE_CLASS_1XX",
    "CODE_CLASS_2XX",
    "CODE_CLASS_3XX",
    "CODE_CLASS_4XX",
    "CODE_CLASS_5XX",
    "CODE_CLASS_6XX",
    "DEFAULT_RESPONSE_CODES",
    "DELIVERIES",
    "DIRECTIONS",
    "DIRECTION_INBOUND",
    "DIRECTION_OUTBOUND",
    "DROP_INVALID_NUMBER",
    "DROP_REASONS",
    "DROP_SAMPLE_OVERFLOW",
    "DROP_UNKNOWN_VALUE",
    "DTLS_FAIL",
    "DTLS_FINGERPRINT_MISMATCH",
    "DTLS_OK",
    "DTLS_RESULTS",
    "DTLS_TIMEOUT",
    "FAULT_KINDS",
    "FLAVORS",
    "MAX_RESPONSE_CODES",
    "METHODS",
    "METHOD_ACK",
    "METHOD_BYE",
    "METHOD_CANCEL",
    "METHOD_INFO",
    "METHOD_INVITE",
    "METHOD_MESSAGE",
    "METHOD_NOTIFY",
    "METHOD_OPTIONS",
    "METHOD_OTHER",
    "METHOD_PRACK",
    "METHOD_PUBLISH",
    "METHOD_REFER",
    "METHOD_REGISTER",
    "METHOD_SUBSCRIBE",
    "METHOD_UPDATE",
    "METRIC_ACTIVE_CALLS",
    "METRIC_BYE_TOTAL",
    "METRIC_CALL_DURATION_S",
    "METRIC_CALL_JITTER_MS",
    "METRIC_CALL_LOSS_FRACTION",
    "METRIC_CALL_MOS_ESTIMATE",
    "METRIC_CALL_QUALITY_ISSUE_TOTAL",
    "METRIC_CALL_QUALITY_TOTAL",
    "METRIC_CALL_RTT_MS",
    "METRIC_DROPPED_INPUTS_TOTAL",
    "METRIC_DTLS_HANDSHAKE_TOTAL",
    "METRIC_INVITE_RESPONSE_TOTAL",
    "METRIC_INVITE_RESULT_TOTAL",
    "METRIC_REQUEST_RESULT_TOTAL",
    "METRIC_SAMPLED_AWAY_TOTAL",
    "METRIC_SEND_ERRORS_TOTAL",
    "METRIC_SESSION_REQUEST_DELAY_MS",
    "METRIC_SESSION_TIMER_REFRESH_TOTAL",
    "METRIC_STIR_VERIFY_TOTAL",
    "METRIC_TRANSACTION_TIMEOUT_TOTAL",
    "METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL",
    "METRIC_VOICE_ATTACH_NATIVE_TOTAL",
    "METRIC_VOICE_ATTACH_TOTAL",
    "NATIVE_RESULTS",
    "NATIVE_RESULT_ERR",
    "NATIVE_RESULT_OK",
    "QUALITY_GRADES",
    "QUALITY_GRADE_BEST",
    "QUALITY_GRADE_HIGH",
    "QUALITY_GRADE_LOW",
    "QUALITY_GRADE_MEDIUM",
    "QUALITY_GRADE_POOR",
    "QUALITY_GRADE_UNKNOWN",
    "QUALITY_GRADE_UNUSABLE",
    "QUALITY_ISSUES",
    "QUALITY_ISSUE_HIGH_JITTER",
    "QUALITY_ISSUE_HIGH_LOSS",
    "QUALITY_ISSUE_HIGH_RTT",
    "QUALITY_ISSUE_LOW_MOS",
    "RECEIVERS",
    "REFRESH_422_BUMPED",
    "REFRESH_422_GAVE_UP",
    "REFRESH_481",
    "REFRESH_OK",
    "REFRESH_RESULTS",
    "REFRESH_ROLE_SWAP",
    "REQUEST_METHODS",
    "SETUP_RESULTS",
    "SETUP_RESULT_FAILURE",
    "SETUP_RESULT_SUCCESS",
    "STIR_FAILED",
    "STIR_NO_IDENTITY",
    "STIR_RESULTS",
    "STIR_SOFT_FAIL",
    "STIR_VERIFIED",
    "VOICE_ATTACH_MODES",
    "VOICE_MODE_CASCADED",
    "VOICE_MODE_PIPELINE",
    "VOICE_MODE_REALTIME",
    "VOICE_RESULTS",
    "VOICE_RESULT_CONFIG_ERROR",
    "VOICE_RESULT_OK",
    "By",
    "ByeReason",
    "CodeClass",
    "Codec",
    "Config",
    "Counter",
    "CounterSeries",
    "Direction",
    "Distribution",
    "DistributionSeries",
    "DropReason",
    "DtlsResult",
    "Family",
    "Gauge",
    "GaugeSeries",
    "InvalidInputError",
    "Method",
    "NativeResult",
    "Options",
    "QualityGrade",
    "QualityIssue",
    "QualityThresholds",
    "RefreshResult",
    "Series",
    "SetupResult",
    "SipCatalog",
    "SipMetrics",
    "Stats",
    "StirResult",
    "VoiceMode",
    "VoiceResult",
    "__version__",  # noqa: F405 - module __getattr__ gives it
    "bye",
    "bye_outbound",
    "call_ended",
    "call_started",
    "catalog",
    "close",
    "configure",
    "default",
    "dtls_handshake",
    "estimate_mos",
    "flush",
    "flush_on_sigterm",
    "host_tick",
    "invite_result",
    "observe_call_qos",
    "observe_setup_delay",
    "r_factor",
    "request_result",
    "session_timer_refresh",
    "stats",
    "stir_verify",
    "transaction_timeout",
    "voice_attach",
    "voice_attach_mode_fallback",
    "voice_attach_native",
]

__all__ += _operator_view.__all__
__all__ += ["observe_registration_delay", "peer", "register_result", "registered_contacts"]

# Last: atexit runs the last registered first, and the exit flush must follow what the
# modules imported above registered (see _core.process._at_exit).
_process.register_exit_flush()
