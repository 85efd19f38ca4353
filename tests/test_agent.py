"""DogStatsD as today's Agent and clients speak it (issue 18): real sockets, exact bytes."""

from __future__ import annotations

import pytest
from conftest import WIRE_BACKENDS, wire_count, wire_options, wire_samples

import sip_statsd as sm


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_every_datagram_ends_with_a_newline(backend, receiver, make_metrics):
    """An Agent with dogstatsd_eol_required drops a last line without one."""
    metrics = make_metrics(**wire_options(backend, receiver))
    for code in range(100, 700):
        metrics.invite_result("inbound", code)
        metrics.observe_call_qos(rtt_ms=code / 7, jitter_ms=3.5, loss_fraction=0.01, mos_estimate=4.1)
    metrics.flush()
    totals = receiver.wait_for(
        lambda t: (
            wire_count(t, backend[1], sm.METRIC_INVITE_RESULT_TOTAL) >= 600
            and len(wire_samples(t, backend[1], sm.METRIC_CALL_MOS_ESTIMATE)) >= 600
        )
    )
    datagrams = receiver.datagrams()
    assert wire_count(totals, backend[1], sm.METRIC_INVITE_RESULT_TOTAL) == 600
    assert len(datagrams) > 1
    assert all(d.endswith(b"\n") and not d.endswith(b"\n\n") for d in datagrams)
    assert all(len(d) <= 1432 for d in datagrams)
