"""docs/events.md's Kamailio recipe, as it is written there: its kamailio.cfg and kemi.py, read from
the page, started with exactly the modules it lists (only its ports and paths replaced by this
test's), under sipp: every series exact at our receiver within 1 s plus the sender's interval,
calls in progress one series back at 0, SIGTERM stop within 5 s.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from conftest import free_port
from kamailio_harness import Kamailio, require_kamailio_or_skip
from test_kamailio import DELIVERY_DEADLINE, STOP_DEADLINE, drive, expected_from_sipp, kamailio_agrees, received

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

_SKIP = require_kamailio_or_skip()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

DOC = Path(__file__).parent.parent / "docs" / "events.md"


def recipe() -> tuple[str, str]:
    """The Kamailio section's two code blocks: kamailio.cfg, then kemi.py."""
    text = DOC.read_text()
    section = text[text.index("## Kamailio (KEMI in Python)") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    config, script = blocks[0], blocks[1]
    assert config.startswith("#!KAMAILIO")
    assert "import KSR" in script
    return config, script


def test_the_recipe_lists_the_modules_kamailio_needs():
    config, _ = recipe()
    modules = re.findall(r'^loadmodule "(\w+)\.so"', config, re.MULTILINE)
    assert {"pv", "rr", "tm", "tmx", "sl", "siputils", "dialog", "rtimer", "app_python3"} <= set(modules)
    assert "ksr_metrics_timer" in config


def test_the_documented_recipe_delivers_every_series_exactly(tmp_path):
    config, script = recipe()
    with Receiver() as receiver:
        port, silent_port = free_port(), free_port()
        ctl = tmp_path / "ctl.sock"
        config = (
            config.replace("listen=udp:127.0.0.1:5060", f"listen=udp:127.0.0.1:{port}")
            .replace("unix:/run/kamailio/kamailio_ctl", f"unix:{ctl}")
            .replace("/etc/kamailio/kemi.py", str(tmp_path / "kemi.py"))
        )
        script = script.replace("port=8125", f"port={receiver.port}")
        assert f"port={receiver.port}" in script
        started = time.monotonic()
        proxy = Kamailio(tmp_path, port, dict(os.environ), recipe=(config, script))
        try:
            # No timed-out calls: the recipe keeps tm's 30 s default fr_timer.
            traffic = drive(tmp_path, f"127.0.0.1:{port}", silent_port, timeouts=False)
            expected = expected_from_sipp(traffic)
            totals = receiver.wait_for(lambda t: received(t) == expected, timeout=DELIVERY_DEADLINE)
            assert received(totals) == expected, proxy.log()
            assert [k for k in totals.gauges if k.startswith(sm.METRIC_ACTIVE_CALLS)] == [
                "sip_active_calls{direction:inbound}"
            ]
            stats = proxy.statistics()
            timer_runs = stats["core:rcv_requests_options"] - traffic.non_invite.calls("SuccessfulCall")
            assert 0 <= timer_runs <= time.monotonic() - started + 1  # rtimer's faked OPTIONS, one a second
            stats["core:rcv_requests_options"] -= timer_runs
            agreement = kamailio_agrees(stats, traffic)
            assert {name: k for name, (k, _) in agreement.items()} == {name: s for name, (_, s) in agreement.items()}
            took = proxy.stop(timeout=STOP_DEADLINE)
            assert took is not None, f"not stopped within {STOP_DEADLINE} s: {proxy.log()}"
        finally:
            proxy.close()
