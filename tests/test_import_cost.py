"""`import sip_statsd` is cheap: no HTTP client, no datadog API client, no thread (issue 25 item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import sip_statsd as sm
from sip_statsd._wire.receiver import Receiver

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


PERIODIC = """
import os, sys, sip_statsd
how = sys.argv[1]
if how == "default":
    record = lambda: sip_statsd.default().bye("outbound", "local", "normal")
elif how == "catalog":
    family = next(f for f in sip_statsd.catalog.families if f.name == "sip_bye_total")
    record = family.series(direction="outbound", by="local", reason_class="normal").inc
else:
    record = lambda: sip_statsd.bye("outbound", "local", "normal")
for _ in range(100):
    record()
print("recorded", flush=True)
sys.stdin.read()  # until the test has seen the periodic flush (or given up)
os._exit(0)  # no exit flush: only the periodic one counts
"""


@pytest.mark.parametrize("how", ["default", "catalog", "module_helper"])
def test_recording_through_default_or_the_catalog_starts_periodic_delivery(how):
    """The Sippy and PJSUA2 integrations record through default(): its flusher must start then."""
    with Receiver() as receiver:
        env = {
            **os.environ,
            "SIP_STATSD_HOST": receiver.host,
            "SIP_STATSD_PORT": str(receiver.port),
            "SIP_STATSD_FLUSH_INTERVAL": "0.1",
            "DD_ORIGIN_DETECTION_ENABLED": "false",
        }
        child = subprocess.Popen(
            [sys.executable, "-c", PERIODIC, how], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "recorded"
            totals = receiver.wait_for(lambda t: t.count(sm.METRIC_BYE_TOTAL) >= 100, timeout=10)
        finally:
            child.communicate("", timeout=30)
    assert totals.count(sm.METRIC_BYE_TOTAL) == 100


OFF_THREAD_IMPORTS = """
import sys, threading
imported = []
def audit(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        imported.append((threading.current_thread().name, args[0]))
sys.addaudithook(audit)
import sip_statsd
sip_statsd.bye("inbound", "local", "normal")
sip_statsd.observe_call_qos(rtt_ms=10, jitter_ms=1, loss_fraction=0.01, mos_estimate=4.1)
sip_statsd.call_started("inbound")
assert sip_statsd.flush(timeout=10)
print(sorted(set(imported)))
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_flusher_thread_imports_nothing(host):
    """STYLE: never leave a lazy import to our thread (a child forked from C inherits its lock)."""
    with Receiver() as receiver:
        env = {
            **os.environ,
            "SIP_STATSD_HOST": host,
            "SIP_STATSD_PORT": str(receiver.port),
            "DD_ORIGIN_DETECTION_ENABLED": "false",
        }
        done = subprocess.run(
            [sys.executable, "-c", OFF_THREAD_IMPORTS], capture_output=True, text=True, timeout=60, env=env, check=False
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
