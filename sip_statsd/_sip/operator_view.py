"""The public names of the operator's view (issue 27), re-exported by the package.

Peers, registration KPIs and STIR attestation: their constants, enums and the peer view's
type. `sip_statsd` star-imports them and adds this `__all__` to its own.
"""

from __future__ import annotations

from .peered import PeerView
from .values import (
    ATTESTATION_A,
    ATTESTATION_B,
    ATTESTATION_C,
    ATTESTATIONS,
    MAX_PEERS,
    METRIC_REGISTER_RESULT_TOTAL,
    METRIC_REGISTERED_CONTACTS,
    METRIC_REGISTRATION_REQUEST_DELAY_MS,
    METRIC_STIR_ATTESTATION_TOTAL,
    PEER_OTHER,
    REGISTER_CHALLENGED,
    REGISTER_FAILURE,
    REGISTER_RESULTS,
    REGISTER_SUCCESS,
    REGISTER_TIMEOUT,
    Attestation,
    RegisterResult,
)

__all__ = [
    "ATTESTATIONS",
    "ATTESTATION_A",
    "ATTESTATION_B",
    "ATTESTATION_C",
    "MAX_PEERS",
    "METRIC_REGISTERED_CONTACTS",
    "METRIC_REGISTER_RESULT_TOTAL",
    "METRIC_REGISTRATION_REQUEST_DELAY_MS",
    "METRIC_STIR_ATTESTATION_TOTAL",
    "PEER_OTHER",
    "REGISTER_CHALLENGED",
    "REGISTER_FAILURE",
    "REGISTER_RESULTS",
    "REGISTER_SUCCESS",
    "REGISTER_TIMEOUT",
    "Attestation",
    "PeerView",
    "RegisterResult",
]
