"""The strict line parser behind the tests, `listen` and `demo`: what it accepts and rejects."""

from __future__ import annotations

import pytest

from sip_statsd._wire.lines import Line, MalformedLineError, parse_datagram, parse_line


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("a:1|c", Line("a", "c", (1.0,), ())),
        ("a.b:2.5|d|#k:v,k2:v-2", Line("a.b", "d", (2.5,), ("k:v", "k2:v-2"))),
        ("a:1|c|@0.5|#k:v|c:abc123|T1700000000", Line("a", "c", (1.0,), ("k:v",), 0.5)),
        ("a,k=v,k2=w:3|c", Line("a", "c", (3.0,), ("k:v", "k2:w"))),
        ("a;k=v:3|ms", Line("a", "ms", (3.0,), ("k:v",))),
        ("a.inbound.2xx:1|c", Line("a.inbound.2xx", "c", (1.0,), ())),
        ("a:1:2:3|d", Line("a", "d", (1.0, 2.0, 3.0), ())),
        ("a:1e-05|d", Line("a", "d", (1e-05,), ())),
        ("a:1|c|#url:http://x/y,version:1.2.3", Line("a", "c", (1.0,), ("url:http://x/y", "version:1.2.3"))),
        ("a:3|g|#direction:inbound", Line("a", "g", (3.0,), ("direction:inbound",))),
        ("a;direction=inbound:-3|g", Line("a", "g", (-3.0,), ("direction:inbound",))),
        ("a.inbound:0|g", Line("a.inbound", "g", (0.0,), ())),
    ],
)
def test_accepts(line, parsed):
    assert parse_line(line) == parsed


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("", "empty"),
        (" a:1|c", "white space"),
        ("a:1", "no '|type'"),
        ("a:1|x", "unknown type"),
        ("a|c", "no ':value'"),
        ("a:one|c", "not a number"),
        ("a:nan|c", "not a number"),
        ("a:inf|c", "not a number"),
        ("1a:1|c", "metric name"),
        ("a.:1|c", "metric name"),
        ("a:1|c|@2", "sample rate"),
        ("a:1|c|#k", "not key:value"),
        ("a:1|c|#k:v|#k2:v", "second tag section"),
        ("a,k=v:1|c|#k2:v", "second tag section"),
        ("a,kv:1|c", "not k=v"),
        ("a:1|c|?x", "unknown field"),
    ],
)
def test_rejects_with_a_reason(line, why):
    with pytest.raises(MalformedLineError, match=why):
        parse_line(line)


def test_datagram_keeps_good_lines_and_reports_bad_ones():
    good, bad = parse_datagram(b"a:1|c\nbroken\nb:2|d\n")
    assert [line.name for line in good] == ["a", "b"]
    assert bad == [("broken", "no '|type' in 'broken'")]
    _, bad = parse_datagram(b"\xff\xfe")
    assert "not UTF-8" in bad[0][1]


def test_a_gauge_keeps_its_last_level_in_the_totals():
    from sip_statsd._wire.receiver import Totals

    totals = Totals()
    for raw in (b"a:5|g|#d:in\na:0|g|#d:in\na:-2|g|#d:in", b"a:7|g|#d:out"):
        lines, bad = parse_datagram(raw)
        assert bad == []
        for line in lines:
            totals.add(line)
    assert totals.gauge("a", d="in") == -2
    assert totals.gauge("a") == 5
    assert totals.gauge("b") is None


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("users:alice|s|#env:lab", Line("users", "s", (), ("env:lab",), members=("alice",))),
        ("users:a:b|s", Line("users", "s", (), (), members=("a:b",))),
        ("_sc|trunk.up|0", Line("trunk.up", "sc", (0.0,), ())),
        (
            "_sc|trunk.up|2|d:1700000000|h:sbc1|#trunk:b,bare|m:no m\\: answer\\nat all|c:ci-1|card:low",
            Line("trunk.up", "sc", (2.0,), ("trunk:b", "bare"), text="no m: answer\nat all"),
        ),
        ("_e{4,3}:a|bc|xyz|p:low|t:info|#env:lab", Line("a|bc", "e", (), ("env:lab",), text="xyz")),
        ("_e{5,0}:héé|", Line("héé", "e", (), ())),
    ],
)
def test_accepts_sets_service_checks_and_events_as_the_agent_does(line, parsed):
    assert parse_line(line) == parsed


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("_sc|trunk.up|4", "status '4' is not 0-3"),
        ("_sc||0", "needs a name"),
        ("_sc|trunk.up|0|x:1", "unknown field"),
        ("_e{9,3}:a|bc|xyz", "do not fit"),
        ("_e{1,1}:a|bcd", "longer than 1 bytes"),
        ("_e{a,1}:a|b", "starts _e{"),
        ("_e{1,1}:a|é", "cut a character"),
    ],
)
def test_rejects_service_checks_and_events_with_a_reason(line, why):
    with pytest.raises(MalformedLineError, match=why.replace("{", r"\{").replace("(", r"\(")):
        parse_line(line)
