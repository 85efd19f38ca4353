"""The bounded `peer` label: declared per instance, `other` for the rest, today's wire without it."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import WIRE_BACKENDS, wire_count, wire_options
from peer_scenario import record

import sip_statsd as sm
from sip_statsd._sip.api import env_peers
from sip_statsd._wire.receiver import Receiver
from sip_statsd.testing import capture_metrics

GOLDEN = Path(__file__).parent / "golden"
PEERS = ("carrier-a", "carrier-b", "gw-1", "gw-2", "dispatch-3")
# Each declared peer adds this many series (every family split by peer, all their combinations);
# docs/metrics.md states it.
SERIES_PER_PEER = 274


@pytest.mark.parametrize(("backend", "flavor"), [("datadog", None), ("statsd", "graphite"), ("statsd", "influxdb")])
@pytest.mark.parametrize("peer_kw", [False, True], ids=["no-peer-kw", "peer-kw"])
def test_without_peers_the_wire_is_the_release_before_byte_for_byte(backend: str, flavor: str | None, peer_kw: bool):
    """Golden lines from the release before peers; `peer=` on an instance without peers changes nothing."""
    golden = (GOLDEN / f"no_peers_{backend}{'_' + flavor if flavor else ''}.txt").read_text().splitlines()
    assert record(backend, flavor, peer_kw=peer_kw, peers=()) == golden


# Families the release with peers added (issue 27): not peer labels, but new series. Receivers that
# read a counter's first value as its start (statsd_exporter, Telegraf, the OTel collector, Vector)
# get each declared counter series once as 0, so these families' zeros, and the library's own
# drop and sampled-away series about them, are new lines in their first flush (docs/metrics.md).
NEW_FAMILIES = (
    "sip_register_result_total",
    "sip_registration_request_delay_ms",
    "sip_registered_contacts",
    "sip_stir_attestation_total",
)
ZERO_DIALECTS = ("statsd_exporter", "telegraf", "otel_collector", "vector")
NEW_ZERO_LINES = 33  # 8 register results + 12 attestations + 12 drop series + 1 sampled-away


def of_new_families(line: str) -> bool:
    """A line of a new family, or of the library's own series about one (`metric:NAME` in any tag syntax)."""
    name = re.split(r"[:,;]", line, maxsplit=1)[0]
    return name in NEW_FAMILIES or any(re.search(rf"metric[:=]{f}\b", line) for f in NEW_FAMILIES)


@pytest.mark.parametrize("receiver", [*ZERO_DIALECTS, "etsy"])
@pytest.mark.parametrize("peer_kw", [False, True], ids=["no-peer-kw", "peer-kw"])
def test_without_peers_every_receiver_gets_the_release_before_and_the_new_families_zeros(
    receiver: str, peer_kw: bool
) -> None:
    """Golden lines of the release before peers, per receiver; set aside, only the new families' zeros."""
    golden = (GOLDEN / f"no_peers_receiver_{receiver}.txt").read_text().splitlines()
    got = record(f"receiver={receiver}", None, peer_kw=peer_kw, peers=())
    new = [line for line in got if of_new_families(line)]
    assert [line for line in got if not of_new_families(line)] == golden
    assert all(":0|c" in line for line in new), new
    assert len(new) == (NEW_ZERO_LINES if receiver in ZERO_DIALECTS else 0)


def test_without_peers_the_plain_flavor_is_the_release_before_byte_for_byte() -> None:
    golden = (GOLDEN / "no_peers_statsd_plain.txt").read_text().splitlines()
    assert record("statsd", "plain", peer_kw=True, peers=()) == golden


def test_the_scenario_with_peers_differs_only_by_the_peer_tag():
    """The same mix on an instance with peers: the same lines with `peer:carrier-a` appended where split."""
    golden = (GOLDEN / "no_peers_datadog.txt").read_text().splitlines()
    got = record("datadog", None, peer_kw=True, peers=PEERS)
    assert sum("peer:carrier-a" in line for line in got) > len(got) // 2
    assert not any("peer:other" in line for line in got)
    stripped = [line.replace(",peer:carrier-a", "").replace("|#peer:carrier-a", "") for line in got]
    # A longer tag moves where packed samples split into lines: compare values per series.
    assert _values_by_series(stripped) == _values_by_series(golden)


def _values_by_series(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        head, _, rest = line.partition("|")
        name, *values = head.split(":")
        out.setdefault(f"{name}|{rest}", []).extend(values)
    return {k: sorted(v) for k, v in out.items()}


def drive(metrics: sm.SipMetrics, seed: int = 5) -> dict[tuple[str, str], int]:
    """Outcomes per (peer as counted, code class) through every peer helper; declared, unknown and None."""
    rng = random.Random(seed)
    want: dict[tuple[str, str], int] = {}
    for _ in range(3000):
        given = rng.choice((*PEERS, "unlisted", None))
        counted = given if given in PEERS else "other"
        code = rng.choice((180, 200, 404, 486, 487, 503, 603))
        metrics.invite_result("outbound", code, peer=given)
        metrics.request_result("outbound", "OPTIONS", 200, peer=given)
        metrics.transaction_timeout("INVITE", peer=given)
        metrics.observe_setup_delay("outbound", 10.0, code < 300, peer=given)
        metrics.register_result("outbound", 401, peer=given)
        metrics.observe_registration_delay("outbound", 5.0, True, peer=given)
        metrics.observe_call_qos(rtt_ms=20.0, loss_fraction=0.0, zero_is_measured=True, peer=given)
        if code == 200:
            metrics.call_started("outbound", peer=given)
            metrics.call_ended("outbound", 1.5, peer=given)
        want[(counted, f"{code // 100}xx")] = want.get((counted, f"{code // 100}xx"), 0) + 1
    return want


@pytest.mark.parametrize("backend", WIRE_BACKENDS)
def test_every_peer_helper_counts_by_peer_on_the_wire(
    backend: tuple[str, str | None], receiver: Receiver, make_metrics: Any
) -> None:
    flavor = backend[1]
    metrics = make_metrics(peers=PEERS, **wire_options(backend, receiver, flush_interval=3600))
    want = drive(metrics)
    assert metrics.flush(10)
    total = sum(want.values())
    totals = receiver.wait_for(lambda t: wire_count(t, flavor, sm.METRIC_INVITE_RESULT_TOTAL) >= total)
    for (peer, klass), n in want.items():
        assert wire_count(totals, flavor, sm.METRIC_INVITE_RESULT_TOTAL, code_class=klass, peer=peer) == n
    per_peer = {p: sum(n for (q, _), n in want.items() if q == p) for p in (*PEERS, "other")}
    for peer, n in per_peer.items():
        for name, labels in (
            (sm.METRIC_REQUEST_RESULT_TOTAL, {"method": "OPTIONS"}),
            (sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, {"method": "INVITE"}),
            (sm.METRIC_REGISTER_RESULT_TOTAL, {"result": "challenged"}),
            (sm.METRIC_CALL_QUALITY_TOTAL, {"grade": "unknown"}),
        ):
            assert wire_count(totals, flavor, name, **labels, peer=peer) == n, (name, peer)
    assert metrics.stats().dropped_inputs == {}


def _samples(totals: Any, name: str, **labels: str) -> list[float]:
    return totals.sample_list(name, **labels)


def test_distributions_and_gauges_carry_the_peer(receiver: Receiver, make_metrics):
    metrics = make_metrics(peers=PEERS, host=receiver.host, port=receiver.port, flush_interval=3600)
    metrics.observe_setup_delay("outbound", 120.0, True, peer="gw-1")
    metrics.observe_setup_delay("outbound", 90.0, True, peer="nobody")
    metrics.call_started("inbound", peer="gw-2")
    metrics.call_started("inbound", peer="gw-2")
    metrics.call_ended("inbound", 30.0, peer="gw-2")
    metrics.observe_call_qos(rtt_ms=40.0, loss_fraction=0.0, mos_estimate=4.4, zero_is_measured=True, peer="gw-1")
    assert metrics.flush(10)
    totals = receiver.wait_for(lambda t: t.lines >= 6)
    assert _samples(totals, sm.METRIC_SESSION_REQUEST_DELAY_MS, peer="gw-1") == [120.0]
    assert _samples(totals, sm.METRIC_SESSION_REQUEST_DELAY_MS, peer="other") == [90.0]
    assert totals.gauge(sm.METRIC_ACTIVE_CALLS, direction="inbound", peer="gw-2") == 1
    assert _samples(totals, sm.METRIC_CALL_DURATION_S, peer="gw-2") == [30.0]
    assert _samples(totals, sm.METRIC_CALL_LOSS_FRACTION, peer="gw-1") == [0.0]
    assert totals.count(sm.METRIC_CALL_QUALITY_TOTAL, grade="best", peer="gw-1") == 1


def test_an_unhashable_peer_counts_as_other():
    metrics = sm.SipMetrics(backend="off", peers=PEERS)
    with capture_metrics(metrics=metrics) as cap:
        metrics.invite_result("inbound", 200, peer=["x"])  # type: ignore[arg-type]
        metrics.request_result("inbound", "BYE", 200, peer={})  # type: ignore[arg-type]
        metrics.call_started("inbound", peer=[])  # type: ignore[arg-type]
        metrics.observe_call_qos(rtt_ms=3.0, peer=[])  # type: ignore[arg-type]
    metrics.close()
    assert cap.count(sm.METRIC_INVITE_RESULT_TOTAL, peer="other") == 1
    assert cap.count(sm.METRIC_REQUEST_RESULT_TOTAL, peer="other") == 1


def test_each_peer_adds_the_documented_series():
    def total(metrics: sm.SipMetrics) -> int:
        return sum(len(f.all_series) for f in metrics.catalog.families)

    none, one, two = (sm.SipMetrics(backend="off", peers=PEERS[:n]) for n in (0, 1, 2))
    assert total(two) - total(one) == total(one) - total(none) == SERIES_PER_PEER
    five = sm.SipMetrics(backend="off", peers=PEERS)
    assert total(five) == total(none) + 5 * SERIES_PER_PEER == 1693
    assert "1,693 possible SIP series" in (Path(__file__).parents[1] / "docs" / "metrics.md").read_text()
    five.close()
    docs = Path(__file__).parents[1] / "docs"
    assert f"{SERIES_PER_PEER} series" in (docs / "metrics.md").read_text()
    for page in ("dashboards.md", "prometheus.md", "operating.md"):  # each says it too
        assert f"{SERIES_PER_PEER} " in " ".join((docs / page).read_text().split()), page
    from sip_statsd._cli.billing import billed
    from sip_statsd.dashboard import build as datadog_build

    def custom(metrics: sm.SipMetrics, percentiles: bool = False) -> int:
        return sum(b.custom + (b.percentiles if percentiles else 0) for b in map(billed, metrics.catalog.families))

    page = " ".join((docs / "metrics.md").read_text().split())
    assert f"adds {SERIES_PER_PEER} series, {custom(one) - custom(none)} custom metrics" in page
    assert f"the first peer adds {custom(one, True) - custom(none, True) - (custom(one) - custom(none))} more" in page

    assert f"adds {SERIES_PER_PEER} possible series" in json.dumps(datadog_build(none)[0])  # the group's note
    assert not any("peer" in f.label_keys for f in none.catalog.families)
    for m in (none, one, two):
        m.close()


@pytest.mark.parametrize(
    ("peers", "message"),
    [
        ("carrier-a", "collection"),
        (["a", "a"], "repeats"),
        (["other"], "other"),
        (["has space"], "peer"),
        ([f"p{i}" for i in range(sm.MAX_PEERS + 1)], "at most"),
        ([7], "peer"),
        (["Other"], "other"),
        (["OTHER"], "other"),
        (["Carrier-A", "carrier-a"], "repeats"),
    ],
)
def test_bad_peers_raise_quoting_them(peers: Any, message: str):
    with pytest.raises(ValueError, match=message):
        sm.SipMetrics(backend="off", peers=peers)


def test_configure_names_where_peers_are_declared():
    metrics = sm.SipMetrics(backend="off")
    with pytest.raises(TypeError, match="SIP_STATSD_PEERS"):
        metrics.configure(peers=["a"])  # type: ignore[call-arg]
    metrics.close()


def test_peers_from_the_environment(caplog):
    assert env_peers({"SIP_STATSD_PEERS": " carrier-a, gw-1 ,"}) == ("carrier-a", "gw-1")
    assert env_peers({}) == ()
    assert env_peers({"SIP_STATSD_PEERS": "ok,bad|pipe"}) == ()
    assert "ignoring SIP_STATSD_PEERS" in caplog.text


def test_an_instance_reads_sip_statsd_peers(monkeypatch):
    monkeypatch.setenv("SIP_STATSD_PEERS", "carrier-a,carrier-b")
    metrics = sm.SipMetrics(backend="off")
    assert metrics.peers == ("carrier-a", "carrier-b")
    assert sm.SipMetrics(backend="off", peers=()).peers == ()
    metrics.close()


def test_a_peer_view_counts_in_its_peers_series(receiver: Receiver, make_metrics: Any) -> None:
    """`metrics.peer(name)`: the helpers bound to one peer; an undeclared name is `other`'s view."""
    metrics = make_metrics(peers=PEERS, host=receiver.host, port=receiver.port, flush_interval=3600)
    carrier = metrics.peer("carrier-b")
    assert metrics.peer("carrier-b") is carrier
    assert metrics.peer("10.0.0.9") is metrics.peer(None) is metrics.peer("other")
    for _ in range(3):
        carrier.invite_result("outbound", 200)
        carrier.call_started("outbound")
        carrier.call_ended("outbound", 2.5)
        carrier.observe_setup_delay("outbound", 90.0, True)
        carrier.request_result("outbound", "OPTIONS", 200)
        carrier.transaction_timeout("BYE")
        carrier.observe_call_qos(rtt_ms=10.0, loss_fraction=0.0, zero_is_measured=True)
    metrics.peer("10.0.0.9").invite_result("outbound", 503)
    carrier.invite_result("sideways", 200)  # dropped and counted, as by the peerless helper
    assert metrics.flush(10)
    totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 4)
    b = {"peer": "carrier-b"}
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="2xx", **b) == 3
    assert totals.count(sm.METRIC_INVITE_RESULT_TOTAL, code_class="5xx", peer="other") == 1
    assert totals.count(sm.METRIC_REQUEST_RESULT_TOTAL, method="OPTIONS", **b) == 3
    assert totals.count(sm.METRIC_TRANSACTION_TIMEOUT_TOTAL, method="BYE", **b) == 3
    assert totals.gauge(sm.METRIC_ACTIVE_CALLS, direction="outbound", **b) == 0
    assert totals.sample_list(sm.METRIC_CALL_DURATION_S, **b) == [2.5, 2.5, 2.5]
    assert totals.sample_list(sm.METRIC_SESSION_REQUEST_DELAY_MS, **b) == [90.0] * 3
    assert totals.sample_list(sm.METRIC_CALL_LOSS_FRACTION, **b) == [0.0] * 3
    assert metrics.stats().dropped_inputs == {(sm.METRIC_INVITE_RESULT_TOTAL, "unknown_value"): 1}


def test_without_peers_a_view_is_the_instance_itself() -> None:
    metrics = sm.SipMetrics(backend="off", peers=())
    view = metrics.peer("carrier-a")
    assert view.invite_result is metrics.invite_result
    assert view.observe_call_qos is metrics.observe_call_qos
    metrics.close()


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.invite_result("sideways", 200, peer="gw-1"),
        lambda m: m.invite_result("inbound", 99, peer="gw-1"),
        lambda m: m.request_result("inbound", "INVITE", 200, peer="gw-1"),
        lambda m: m.call_started("sideways", peer="gw-1"),
        lambda m: m.observe_setup_delay("inbound", 10.0, "yes", peer="gw-1"),
        lambda m: m.register_result("inbound", 150, peer="gw-1"),
        lambda m: m.peer("gw-1").invite_result("sideways", 200),
    ],
)
def test_strict_mode_names_the_bad_argument_with_peers(call: Any) -> None:
    metrics = sm.SipMetrics(backend="off", peers=PEERS)
    with capture_metrics(metrics=metrics), pytest.raises(sm.InvalidInputError):
        call(metrics)
    metrics.close()


def test_a_bad_sip_statsd_peers_logs_a_bounded_line(caplog):
    """A 100,000-character value: one warning of a few hundred characters, not the value twice."""
    assert env_peers({"SIP_STATSD_PEERS": "x|" * 50_000}) == ()
    (record,) = [r for r in caplog.records if "SIP_STATSD_PEERS" in r.getMessage()]
    assert len(record.getMessage()) < 600


@pytest.mark.parametrize("tags", [{"peer": "edge-1"}, ["peer:edge-1"], {"direction": "x"}, {"code_class": "2xx"}])
def test_a_constant_tag_on_a_label_key_is_refused_where_peers_are_declared(tags: Any) -> None:
    """`peer:a,peer:edge-1` would give Datadog two peers per series."""
    key = next(iter(tags)).split(":")[0]
    with pytest.raises(ValueError, match=f"constant_tags: '{key}:"):
        sm.SipMetrics(backend="off", peers=["a"], constant_tags=tags)
    metrics = sm.SipMetrics(backend="off", peers=["a"])
    with pytest.raises(ValueError, match=f"label key '{key}'"):
        metrics.configure(backend="off", constant_tags=tags)
    metrics.configure(backend="off", constant_tags={"region": "eu"})  # any other key is fine
    metrics.close()
    sm.SipMetrics(backend="off", constant_tags=tags).close()  # without peers: as before


def test_docs_state_the_new_zero_lines_without_peers() -> None:
    """docs/metrics.md's figure of new lines a peerless user sees is the test's."""
    text = " ".join((Path(__file__).parent.parent / "docs" / "metrics.md").read_text().split())
    assert f"get {NEW_ZERO_LINES} new `0|c` lines in the first flush" in text


def test_a_datadog_tags_tag_on_a_label_key_is_left_out_where_peers_are_declared(monkeypatch, caplog) -> None:
    """DATADOG_TAGS=peer:x would give every peered series two peers: left out and logged, the rest kept."""
    monkeypatch.setenv("DATADOG_TAGS", "peer:x,team:voice")
    with Receiver() as receiver:
        metrics = sm.SipMetrics(host=receiver.host, port=receiver.port, peers=["a"], flush_interval=3600)
        metrics.invite_result("outbound", 200, peer="a")
        assert metrics.flush(10)
        receiver.wait_for(lambda t: t.lines >= 1, 10)
        metrics.close(5)
        got = [line for data in receiver.datagrams() for line in data.decode().splitlines() if "code_class:2xx" in line]
    assert got == ["sip_invite_result_total:1|c|#direction:outbound,code_class:2xx,peer:a,team:voice"]
    assert "leaving out 1 tag(s)" in caplog.text


def test_the_label_keys_refused_as_tags_are_every_familys() -> None:
    from sip_statsd._sip.api import LABEL_KEYS

    metrics = sm.SipMetrics(backend="off", peers=["a"])
    assert {key for family in metrics.families for key in family.label_keys} == LABEL_KEYS
    metrics.close()
