"""How the integrations name a call's peer from its remote URI (PJSUA2) or address (Sippy)."""

from __future__ import annotations

import pytest

from sip_statsd.integrations._calls import canonical_host, peer_in, uri_host

PEER_MAP = {
    "10.0.0.5": "carrier-a",
    "gw.example.com": "gw",
    "2001:db8::5": "carrier-v6",
    "[2001:db8::5]:5070": "v6-port",
}


@pytest.mark.parametrize(
    ("uri", "peer"),
    [
        ("<sip:alice@10.0.0.5:5060;transport=tcp>", "carrier-a"),
        # a display name is the sender's to write: only the URI inside <...> counts
        ('"sip:x@10.0.0.5:5060" <sip:mallory@203.0.113.9>', None),
        ('"<sip:x@10.0.0.5>" <sip:mallory@203.0.113.9>', None),
        ("sip:x@10.0.0.5 <sip:mallory@203.0.113.9>", None),
        ("sip:bob@10.0.0.5?X=1", "carrier-a"),
        ("sip:bob@10.0.0.5;lr", "carrier-a"),
        ("<sip:bob@GW.Example.com>", "gw"),
        ("<sips:bob@gw.example.com.>", "gw"),
        ("<sip:bob@[2001:DB8:0::5]:5060>", "carrier-v6"),
        ("<sip:bob@[2001:db8::5]>", "carrier-v6"),
        ("<sip:bob@[2001:db8::5]:5070>", "v6-port"),
        ("<tel:+15551234>", None),
        ("sip:x@h:5x", None),
        ("", None),
    ],
)
def test_the_peer_of_a_remote_uri_reads_only_its_uri_host(uri: str, peer: str | None) -> None:
    found = uri_host(uri)
    assert (peer_in(PEER_MAP, *found) if found else None) == peer


def test_sippy_addresses_and_pjsua2_uris_share_one_host_form() -> None:
    """Sippy gives IPv6 bare, a URI bracketed: both meet the same peer_map key."""
    assert uri_host("<sip:[2001:db8:0:0::5]:5060>") == (canonical_host("2001:DB8::5"), 5060)
    assert peer_in(PEER_MAP, "[2001:db8::5]", 5070) == peer_in(PEER_MAP, "2001:db8::5", 5070) == "v6-port"
    # `host:port` of an IPv6 host is bracketed: a bare v6 key ending in a port-like group is no port
    assert peer_in({"2001:db8::5:5060": "X"}, "2001:db8::5", 5060) is None
