"""Metric names and allowed label values of the SIP catalog.

Each value exists twice, as the origin package's constant (upper snake case) and as a
`StrEnum` member, so a caller may pass either: a `StrEnum` member hashes and compares
equal to its string, and the helpers' look-up tables are keyed by the strings.
"""

from __future__ import annotations

from enum import StrEnum

# Metric names.
METRIC_INVITE_RESULT_TOTAL = "sip_invite_result_total"
METRIC_BYE_TOTAL = "sip_bye_total"
METRIC_TRANSACTION_TIMEOUT_TOTAL = "sip_transaction_timeout_total"
METRIC_SESSION_TIMER_REFRESH_TOTAL = "sip_session_timer_refresh_total"
METRIC_DTLS_HANDSHAKE_TOTAL = "sip_dtls_handshake_total"
METRIC_STIR_VERIFY_TOTAL = "sip_stir_verify_total"
METRIC_VOICE_ATTACH_TOTAL = "sip_voice_attach_total"
METRIC_VOICE_ATTACH_MODE_FALLBACK_TOTAL = "sip_voice_attach_mode_fallback_total"
METRIC_VOICE_ATTACH_NATIVE_TOTAL = "sip_voice_attach_native_total"
METRIC_CALL_RTT_MS = "sip_call_rtt_ms"
METRIC_CALL_JITTER_MS = "sip_call_jitter_ms"
METRIC_CALL_LOSS_FRACTION = "sip_call_loss_fraction"
METRIC_CALL_MOS_ESTIMATE = "sip_call_mos_estimate"

# Beyond the origin: RFC 6076 KPIs, non-INVITE outcomes, calls in progress.
METRIC_INVITE_RESPONSE_TOTAL = "sip_invite_response_total"
METRIC_REQUEST_RESULT_TOTAL = "sip_request_result_total"
METRIC_ACTIVE_CALLS = "sip_active_calls"
METRIC_CALL_DURATION_S = "sip_call_duration_s"
METRIC_SESSION_REQUEST_DELAY_MS = "sip_session_request_delay_ms"

# Registration KPIs (RFC 6076 §4.1 RRD, §4.2 IRA) and STIR/SHAKEN attestation.
METRIC_REGISTER_RESULT_TOTAL = "sip_register_result_total"
METRIC_REGISTRATION_REQUEST_DELAY_MS = "sip_registration_request_delay_ms"
METRIC_REGISTERED_CONTACTS = "sip_registered_contacts"
METRIC_STIR_ATTESTATION_TOTAL = "sip_stir_attestation_total"


DIRECTION_INBOUND = "inbound"
DIRECTION_OUTBOUND = "outbound"

CODE_CLASS_1XX = "1xx"
CODE_CLASS_2XX = "2xx"
CODE_CLASS_3XX = "3xx"
CODE_CLASS_4XX = "4xx"
CODE_CLASS_5XX = "5xx"
CODE_CLASS_6XX = "6xx"

BY_LOCAL = "local"
BY_REMOTE = "remote"

BYE_REASON_NORMAL = "normal"
BYE_REASON_TIMER_EXPIRED = "timer-expired"
BYE_REASON_ERROR = "error"
BYE_REASON_USER_HANGUP = "user-hangup"

# RFC 3261 methods and the common extensions; SIP methods are case-sensitive.
METHOD_INVITE = "INVITE"
METHOD_ACK = "ACK"
METHOD_BYE = "BYE"
METHOD_CANCEL = "CANCEL"
METHOD_REGISTER = "REGISTER"
METHOD_OPTIONS = "OPTIONS"
METHOD_PRACK = "PRACK"  # RFC 3262
METHOD_SUBSCRIBE = "SUBSCRIBE"  # RFC 6665
METHOD_NOTIFY = "NOTIFY"  # RFC 6665
METHOD_PUBLISH = "PUBLISH"  # RFC 3903
METHOD_INFO = "INFO"  # RFC 6086
METHOD_REFER = "REFER"  # RFC 3515
METHOD_MESSAGE = "MESSAGE"  # RFC 3428
METHOD_UPDATE = "UPDATE"  # RFC 3311
METHOD_OTHER = "other"

REFRESH_OK = "ok"
REFRESH_422_BUMPED = "422-bumped"
REFRESH_422_GAVE_UP = "422-gave-up"
REFRESH_481 = "481"
REFRESH_ROLE_SWAP = "role-swap"

DTLS_OK = "ok"
DTLS_FAIL = "fail"
DTLS_TIMEOUT = "timeout"
DTLS_FINGERPRINT_MISMATCH = "fingerprint-mismatch"

STIR_VERIFIED = "verified"
STIR_FAILED = "failed"
STIR_SOFT_FAIL = "soft-fail"
STIR_NO_IDENTITY = "no-identity"

VOICE_MODE_CASCADED = "cascaded"
VOICE_MODE_REALTIME = "realtime"
VOICE_MODE_PIPELINE = "pipeline"

VOICE_RESULT_OK = "ok"
VOICE_RESULT_CONFIG_ERROR = "config_error"

NATIVE_RESULT_OK = "ok"
NATIVE_RESULT_ERR = "err"

# The `result` label of sip_session_request_delay_ms (RFC 6076 SRD): the INVITE reached the
# first non-100 provisional or a 2xx (success), or a failure final response (failure).
SETUP_RESULT_SUCCESS = "success"
SETUP_RESULT_FAILURE = "failure"

# The exact codes sip_invite_response_total keeps by default; any other code counts as its
# class (`4xx`). RFC 6076: 200 (SER, SEER), 480 486 600 603 (SEER), 408 500 503 504 (ISA),
# 3xx (subtracted from the SER/SEER denominators, kept as classes and 301 302); 487 (a
# cancelled call) and the common failures (401 403 404 407 481 484 488 502 604 606).
DEFAULT_RESPONSE_CODES = (
    200, 301, 302, 401, 403, 404, 407, 408, 480, 481, 484, 486, 487, 488, 500, 502, 503, 504, 600, 603, 604, 606,
)  # fmt: skip
MAX_RESPONSE_CODES = 100

# The `peer` label (a carrier, trunk, gateway or dispatcher set), declared per instance; a
# far end not on the list counts as `other`. Bounded: each peer multiplies the series of
# the families that carry the label (docs/metrics.md gives the count per peer).
PEER_OTHER = "other"
MAX_PEERS = 10

# The `result` of sip_register_result_total, from a REGISTER's final response (RFC 6076):
# 2xx `success`; 401/407 `challenged` (the authentication exchange goes on: neither a success
# nor an ineffective attempt, RFC 6076 §4.1 measures RRD across it); 408 or no response at
# all (Timer F) `timeout`; any other final response `failure`. IRA = (failure + timeout) /
# (success + failure + timeout).
REGISTER_SUCCESS = "success"
REGISTER_CHALLENGED = "challenged"
REGISTER_FAILURE = "failure"
REGISTER_TIMEOUT = "timeout"

# STIR/SHAKEN attestation levels (RFC 8588 `attest`), where the verifier knows them.
ATTESTATION_A = "A"
ATTESTATION_B = "B"
ATTESTATION_C = "C"


class Direction(StrEnum):
    INBOUND = DIRECTION_INBOUND
    OUTBOUND = DIRECTION_OUTBOUND


class CodeClass(StrEnum):
    C1XX = CODE_CLASS_1XX
    C2XX = CODE_CLASS_2XX
    C3XX = CODE_CLASS_3XX
    C4XX = CODE_CLASS_4XX
    C5XX = CODE_CLASS_5XX
    C6XX = CODE_CLASS_6XX


class By(StrEnum):
    LOCAL = BY_LOCAL
    REMOTE = BY_REMOTE


class ByeReason(StrEnum):
    NORMAL = BYE_REASON_NORMAL
    TIMER_EXPIRED = BYE_REASON_TIMER_EXPIRED
    ERROR = BYE_REASON_ERROR
    USER_HANGUP = BYE_REASON_USER_HANGUP


class Method(StrEnum):
    INVITE = METHOD_INVITE
    ACK = METHOD_ACK
    BYE = METHOD_BYE
    CANCEL = METHOD_CANCEL
    REGISTER = METHOD_REGISTER
    OPTIONS = METHOD_OPTIONS
    PRACK = METHOD_PRACK
    SUBSCRIBE = METHOD_SUBSCRIBE
    NOTIFY = METHOD_NOTIFY
    PUBLISH = METHOD_PUBLISH
    INFO = METHOD_INFO
    REFER = METHOD_REFER
    MESSAGE = METHOD_MESSAGE
    UPDATE = METHOD_UPDATE
    OTHER = METHOD_OTHER


class RefreshResult(StrEnum):
    OK = REFRESH_OK
    BUMPED_422 = REFRESH_422_BUMPED
    GAVE_UP_422 = REFRESH_422_GAVE_UP
    CALL_DOES_NOT_EXIST_481 = REFRESH_481
    ROLE_SWAP = REFRESH_ROLE_SWAP


class DtlsResult(StrEnum):
    OK = DTLS_OK
    FAIL = DTLS_FAIL
    TIMEOUT = DTLS_TIMEOUT
    FINGERPRINT_MISMATCH = DTLS_FINGERPRINT_MISMATCH


class StirResult(StrEnum):
    VERIFIED = STIR_VERIFIED
    FAILED = STIR_FAILED
    SOFT_FAIL = STIR_SOFT_FAIL
    NO_IDENTITY = STIR_NO_IDENTITY


class RegisterResult(StrEnum):
    SUCCESS = REGISTER_SUCCESS
    CHALLENGED = REGISTER_CHALLENGED
    FAILURE = REGISTER_FAILURE
    TIMEOUT = REGISTER_TIMEOUT


class Attestation(StrEnum):
    A = ATTESTATION_A
    B = ATTESTATION_B
    C = ATTESTATION_C


class VoiceMode(StrEnum):
    CASCADED = VOICE_MODE_CASCADED
    REALTIME = VOICE_MODE_REALTIME
    PIPELINE = VOICE_MODE_PIPELINE


class VoiceResult(StrEnum):
    OK = VOICE_RESULT_OK
    CONFIG_ERROR = VOICE_RESULT_CONFIG_ERROR


class NativeResult(StrEnum):
    OK = NATIVE_RESULT_OK
    ERR = NATIVE_RESULT_ERR


class SetupResult(StrEnum):
    SUCCESS = SETUP_RESULT_SUCCESS
    FAILURE = SETUP_RESULT_FAILURE


DIRECTIONS = tuple(Direction)
CODE_CLASSES = tuple(CodeClass)
BY_SIDES = tuple(By)
BYE_REASONS = tuple(ByeReason)
METHODS = tuple(Method)
REFRESH_RESULTS = tuple(RefreshResult)
DTLS_RESULTS = tuple(DtlsResult)
STIR_RESULTS = tuple(StirResult)
VOICE_ATTACH_MODES = (VoiceMode.CASCADED, VoiceMode.REALTIME)
VOICE_RESULTS = tuple(VoiceResult)
NATIVE_RESULTS = tuple(NativeResult)
SETUP_RESULTS = tuple(SetupResult)
REGISTER_RESULTS = tuple(RegisterResult)
ATTESTATIONS = tuple(Attestation)
# request_result's methods: every declared method but INVITE (invite_result counts those) and
# ACK (no response), then `other`.
REQUEST_METHODS = tuple(m for m in Method if m not in (Method.INVITE, Method.ACK))

# --- Call quality: the grade and issues of observe_call_qos, the E-model's codecs --------

METRIC_CALL_QUALITY_TOTAL = "sip_call_quality_total"
METRIC_CALL_QUALITY_ISSUE_TOTAL = "sip_call_quality_issue_total"

# ITU-T G.109 categories of speech transmission quality, by the call's MOS.
QUALITY_GRADE_BEST = "best"  # MOS >= 4.34 (R >= 90)
QUALITY_GRADE_HIGH = "high"  # MOS >= 4.03 (R >= 80)
QUALITY_GRADE_MEDIUM = "medium"  # MOS >= 3.60 (R >= 70)
QUALITY_GRADE_LOW = "low"  # MOS >= 3.10 (R >= 60)
QUALITY_GRADE_POOR = "poor"  # MOS >= 2.58 (R >= 50)
QUALITY_GRADE_UNUSABLE = "unusable"  # MOS below 2.58
QUALITY_GRADE_UNKNOWN = "unknown"  # no valid MOS

QUALITY_ISSUE_HIGH_RTT = "high_rtt"
QUALITY_ISSUE_HIGH_JITTER = "high_jitter"
QUALITY_ISSUE_HIGH_LOSS = "high_loss"
QUALITY_ISSUE_LOW_MOS = "low_mos"

CODEC_G711 = "G.711"
CODEC_G729 = "G.729"


class QualityGrade(StrEnum):
    BEST = QUALITY_GRADE_BEST
    HIGH = QUALITY_GRADE_HIGH
    MEDIUM = QUALITY_GRADE_MEDIUM
    LOW = QUALITY_GRADE_LOW
    POOR = QUALITY_GRADE_POOR
    UNUSABLE = QUALITY_GRADE_UNUSABLE
    UNKNOWN = QUALITY_GRADE_UNKNOWN


class QualityIssue(StrEnum):
    HIGH_RTT = QUALITY_ISSUE_HIGH_RTT
    HIGH_JITTER = QUALITY_ISSUE_HIGH_JITTER
    HIGH_LOSS = QUALITY_ISSUE_HIGH_LOSS
    LOW_MOS = QUALITY_ISSUE_LOW_MOS


class Codec(StrEnum):
    G711 = CODEC_G711
    G729 = CODEC_G729


QUALITY_GRADES = tuple(QualityGrade)
QUALITY_ISSUES = tuple(QualityIssue)
CODECS = tuple(Codec)
