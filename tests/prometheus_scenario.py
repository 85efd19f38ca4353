"""SIP traffic through the library, as statsd_exporter would expose it minute by minute.

Each service is a real `SipMetrics` sending DogStatsD lines over loopback UDP to a socket this
module reads; the lines go through `statsd_exporter_model.Exporter` with the generated mapping,
and the exposition after each minute is one scrape. `promtool test rules` gets the scrapes as
`input_series`. The traffic per minute is fixed below, so the tests know every ratio from it,
independently of the exporter model and of the rules.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from statsd_exporter_model import Exporter

from sip_statsd import Options, SipMetrics

# Final INVITE responses per minute and service (code -> count), and the rest of their traffic.
INVITES = {
    "sbc": {200: 8, 486: 2, 302: 1, 503: 1},
    "edge": {200: 2, 503: 3, 603: 1, 486: 2, 408: 2},
    "idle": {},
}
TIMEOUTS = {"sbc": 1, "edge": 10, "idle": 0}  # INVITE transaction timeouts per minute
DTLS = {"sbc": {"ok": 20}, "edge": {"ok": 8, "timeout": 2}, "idle": {}}
STIR = {"sbc": {"verified": 10}, "edge": {"verified": 9, "failed": 1}, "idle": {}}
# Calls with RTCP per minute: (count, rtt_ms, jitter_ms, loss, mos); calls without RTCP.
QOS = {"sbc": (4, 80.0, 5.0, 0.001, 4.2), "edge": (4, 400.0, 40.0, 0.08, 2.4), "idle": (0, 0.0, 0.0, 0.0, 0.0)}
NO_RTCP = {"sbc": 0, "edge": 1, "idle": 0}
DROPS = {"sbc": 0, "edge": 1, "idle": 0}  # undeclared inputs per minute


def promtool() -> str:
    """promtool's path; missing, the test fails in CI (.ci/run installs it) and is skipped elsewhere."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is missing (Debian: apt-get install prometheus)")
    return path


class Wire:
    """A loopback UDP socket: what a flush sent is in its buffer when flush() returns."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.sock.close()


# What statsd_exporter gets: configure(receiver="statsd_exporter"): DogStatsD tags, `|ms` for
# distributions in milliseconds, `|h` for the others, one value per line. Before that option
# exists, the datadog backend's lines rewritten so (`as_dialect`).
NATIVE = "receiver" in Options.__annotations__
DIALECT: dict[str, Any] = {"receiver": "statsd_exporter"} if NATIVE else {"backend": "datadog"}
RESTART = 2  # the exporter restarts at this minute: what was sent before (counters' zeros) is gone


def as_dialect(datagram: str) -> str:
    """A datadog-backend datagram as the statsd_exporter dialect writes it (a stand-in, see above)."""
    if NATIVE:
        return datagram
    out = []
    for line in datagram.splitlines():
        name, _, rest = line.partition(":")
        values, _, tail = rest.partition("|")
        letter, _, fields = tail.partition("|")
        if letter != "d":
            out.append(line)
            continue
        letter = "ms" if name.endswith(("_ms", "_milliseconds")) else "h"
        out += [f"{name}:{v}|{letter}" + (f"|{fields}" if fields else "") for v in values.split(":")]
    return "\n".join(out) + "\n"


def check_letters(datagram: str) -> None:
    """`|ms` only for a name in milliseconds (statsd_exporter divides it by 1000); no packed lines."""
    for line in datagram.splitlines():
        name, _, rest = line.partition(":")
        if "|ms" in rest:
            assert name.endswith(("_ms", "_milliseconds")), line
        if rest.split("|")[1:2] in (["ms"], ["h"], ["d"]):
            assert ":" not in rest.split("|")[0], line


def service(wire: Wire, name: str, **options: Any) -> SipMetrics:
    return SipMetrics(
        **DIALECT,
        host="127.0.0.1",
        port=wire.port,
        constant_tags={"env": "prod", "service": name},
        flush_interval=3600,
        **options,
    )


def minute(m: SipMetrics, name: str, once: bool) -> None:
    """One minute of a service's traffic; `idle` sends one INVITE outcome, at the minute `once`."""
    invites = INVITES[name] if name != "idle" else ({200: 1} if once else {})
    for code, n in invites.items():
        for _ in range(n):
            m.invite_result("inbound", code)
    for _ in range(TIMEOUTS[name]):
        m.transaction_timeout("INVITE")
    for result, n in DTLS[name].items():
        for _ in range(n):
            m.dtls_handshake(result)
    for result, n in STIR[name].items():
        for _ in range(n):
            m.stir_verify(result)
    count, rtt, jitter, loss, mos = QOS[name]
    for _ in range(count):
        m.observe_call_qos(rtt_ms=rtt, jitter_ms=jitter, loss_fraction=loss, mos_estimate=mos)
    for _ in range(NO_RTCP[name]):
        m.observe_call_qos()
    for _ in range(DROPS[name]):
        m.invite_result("sideways", 200)


Scrape = dict[str, float]


def run(mapping: dict[str, Any], minutes: int, extra: Callable[[int, Wire], None] | None = None) -> list[Scrape]:
    """Scrapes at minutes 0..minutes of the three services (and `extra`'s own sending)."""
    wire = Wire()
    exporter = Exporter(mapping)
    services = {name: service(wire, name) for name in INVITES}
    scrapes = []
    try:
        for i in range(minutes + 1):
            if i == RESTART:
                unmapped, exporter = exporter.unmapped, Exporter(mapping)
                exporter.unmapped |= unmapped
            for name, m in services.items():
                minute(m, name, i == RESTART)
                assert m.flush(timeout=5), name
            if extra is not None:
                extra(i, wire)
            for datagram in wire.drain():
                text = as_dialect(datagram)
                check_letters(text)
                exporter.feed(text)
            scrapes.append(exporter.exposition())
    finally:
        for m in services.values():
            m.close(timeout=2)
        wire.close()
    unmapped = {n for n in exporter.unmapped if not n.startswith("datadog.")}  # the client's own telemetry
    assert not unmapped, f"lines no mapping matched: {sorted(unmapped)}"
    return scrapes


def input_series(scrapes: list[Scrape], keep: Callable[[str], bool] = lambda s: True) -> list[dict[str, str]]:
    """promtool `input_series`: each series' value per scrape, `_` where it was not exposed yet."""
    names = sorted({s for scrape in scrapes for s in scrape if keep(s)})
    return [
        {"series": s, "values": " ".join(_number(scrape[s]) if s in scrape else "_" for scrape in scrapes)}
        for s in names
    ]


def _number(x: float) -> str:
    return repr(float(x)).removesuffix(".0")


def write_test(path: Path, rules: Path, tests: list[dict[str, Any]]) -> None:
    import yaml

    doc = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1 << 16), encoding="utf-8")
