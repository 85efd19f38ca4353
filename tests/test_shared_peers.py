"""Shared delivery with declared peers: the mapping holds every family of the peered catalog.

The peers multiply the catalog's series past the mapping's spare room: the mapping must be made
once the catalog exists, whether shared delivery comes from the environment (the process-wide
instance, made at import) or from `SipMetrics(delivery="shared", peers=...)`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SCRIPT = """
import os, sys
import sip_statsd
if sys.argv[2] == "instance":
    metrics = sip_statsd.SipMetrics(host="127.0.0.1", port=int(sys.argv[1]), delivery="shared",
                                    peers=["carrier-a", "carrier-b"], flush_interval=3600)
else:  # the environment: SIP_STATSD_DELIVERY=shared, SIP_STATSD_PEERS
    metrics = sip_statsd.default()
pids = []
for worker in range(2):
    pid = os.fork()
    if pid == 0:
        for _ in range(100):
            metrics.invite_result("outbound", 200, peer="carrier-a")
            metrics.peer("carrier-b").invite_result("outbound", 486)
            metrics.invite_result("outbound", 503, peer="nobody-declared")
        os._exit(0)
    pids.append(pid)
for pid in pids:
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
assert metrics.flush(timeout=10)
"""


@pytest.mark.parametrize("how", ["environment", "instance"])
def test_peers_with_shared_delivery_count_every_worker_once(tmp_path, how):
    """Before: `ValueError: no room left in the shared mapping` at import or in the constructor."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(SCRIPT))
    with Receiver() as receiver:
        env = {**os.environ, "DD_ORIGIN_DETECTION_ENABLED": "false"}
        if how == "environment":
            env |= {
                "SIP_STATSD_DELIVERY": "shared",
                "SIP_STATSD_PEERS": "carrier-a,carrier-b",
                "SIP_STATSD_HOST": "127.0.0.1",
                "SIP_STATSD_PORT": str(receiver.port),
                "SIP_STATSD_FLUSH_INTERVAL": "3600",
            }
        done = subprocess.run(
            [sys.executable, str(path), str(receiver.port), how],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        totals = receiver.wait_for(lambda t: t.count(sm.METRIC_INVITE_RESULT_TOTAL) >= 600, timeout=10)
    name = sm.METRIC_INVITE_RESULT_TOTAL
    assert totals.count(name, code_class="2xx", peer="carrier-a") == 200
    assert totals.count(name, code_class="4xx", peer="carrier-b") == 200
    assert totals.count(name, code_class="5xx", peer="other") == 200
