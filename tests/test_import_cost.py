"""`import sip_statsd` is cheap: no HTTP client, no datadog API client, no thread (issue 25 item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, sys, threading
import sip_statsd
after_import = {
    "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
    "loaded": sorted(m for m in ("requests", "urllib3", "datadog", "datadog.api", "multiprocessing",
                                 "importlib.metadata") if m in sys.modules),
}
sip_statsd.invite_result("inbound", 200)
after_use = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
print(json.dumps({**after_import, "after_use": after_use, "version": sip_statsd.__version__}))
"""


def test_import_loads_no_http_client_and_starts_no_thread_until_a_helper_is_used():
    env = {**os.environ, "SIP_STATSD_BACKEND": "off"}  # the helper's count goes nowhere
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    found = json.loads(done.stdout)
    assert found["threads"] == [], found
    assert found["loaded"] == [], found
    assert found["after_use"] == ["sip-statsd-flusher"], found
    assert found["version"]


def test_the_container_reader_is_the_datadog_packages_own():
    """Loaded from its file without datadog/__init__.py: the same class behaviour as the package's."""
    from datadog.dogstatsd.container import Cgroup as packaged
    from datadog.util.format import normalize_tags as packaged_normalize

    from sip_statsd._wire import agent

    assert agent.Cgroup.__qualname__ == packaged.__qualname__
    assert agent.Cgroup.__init__.__code__.co_code == packaged.__init__.__code__.co_code
    tags = ["env:prod west", "service:s|b#c", "team/voice:1.2", "ünï:cödé", "a,b"]
    assert agent.normalize_tags(tags) == packaged_normalize(tags)
