"""configure(): every bad value raises ValueError quoting it, and the old configuration stays."""

from __future__ import annotations

import pytest

import sip_statsd as sm


@pytest.mark.parametrize(
    ("options", "quoted"),
    [
        ({"backend": "prometheus"}, "'prometheus'"),
        ({"backend": "statsd", "flavor": "opentsdb"}, "'opentsdb'"),
        ({"port": 0}, "port 0"),
        ({"port": 70000}, "port 70000"),
        ({"port": "8125"}, "'8125'"),
        ({"host": ""}, "host ''"),
        ({"host": "agent host"}, "'agent host'"),
        ({"socket_path": ""}, "socket_path ''"),
        ({"socket_path": "/run/dsd.sock", "host": "localhost"}, "not both"),
        ({"prefix": "edge|x"}, "'edge|x'"),
        ({"prefix": "edge."}, "'edge.'"),
        ({"constant_tags": "pop:fra1"}, "not the string 'pop:fra1'"),
        ({"constant_tags": ["pop"]}, "'pop' is not of the form"),
        ({"constant_tags": ["pop:fra:1"]}, "'pop:fra:1' is not of the form"),
        ({"constant_tags": {"pop": "fra 1"}}, "'fra 1'"),
        ({"constant_tags": {"Pop": "fra1"}}, "'Pop'"),
        ({"backend": "statsd", "flavor": "plain", "constant_tags": {"pop": "fra1"}}, "plain flavor"),
        ({"flush_interval": 0}, "flush_interval 0"),
        ({"flush_interval": float("nan")}, "flush_interval nan"),
        ({"flush_interval": True}, "flush_interval True"),
        ({"flush_interval": "1"}, "flush_interval '1'"),
        ({"strict": "yes"}, "strict 'yes'"),
    ],
)
def test_bad_configuration_raises_quoting_the_value_and_keeps_the_old_one(options, quoted):
    metrics = sm.SipMetrics(backend="memory", flush_interval=2.0)
    try:
        with pytest.raises(ValueError) as err:
            metrics.configure(**options)
        assert quoted in str(err.value)
        assert metrics.config.backend == "memory"
        assert metrics.config.flush_interval == 2.0
    finally:
        metrics.close()


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="colour"):
        sm.SipMetrics(colour="blue")  # type: ignore[call-arg]


def test_constant_tags_as_mapping_or_list_are_the_same():
    a = sm.Config(constant_tags=("pop:fra1", "tier:edge"))
    b = sm.SipMetrics(backend="off", constant_tags={"pop": "fra1", "tier": "edge"})
    try:
        assert b.config.constant_tags == a.constant_tags == ("pop:fra1", "tier:edge")
    finally:
        b.close()


def test_configure_replaces_the_whole_configuration():
    metrics = sm.SipMetrics(backend="memory", prefix="edge", strict=True)
    try:
        metrics.configure(backend="off")
        assert metrics.config == sm.Config(backend="off")
        metrics.invite_result("sideways", 200)  # strict went with the rest: no exception
    finally:
        metrics.close()
