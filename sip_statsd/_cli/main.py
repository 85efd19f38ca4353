"""The `sip-statsd` command: catalog, listen, demo, dashboard, prometheus."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, TextIO

import sip_statsd as sm

from .listen import listen, render_window  # noqa: F401 - render_window: the tests render a window


def catalog_entries() -> list[dict[str, Any]]:
    """Every metric of the process-wide instance: the SIP catalog, then the library's own."""
    entries = [
        {
            "name": f.name,
            "type": f.kind,
            "origin": "library" if f.name.startswith("sip_statsd_") else "sip",
            "labels": {k: list(v) for k, v in f.allowed.items()},
            "series": len(f.all_series),
            "description": f.description,
        }
        for f in sm.default().families
    ]
    return sorted(entries, key=lambda e: (e["origin"] == "library", e["name"]))


def _labels_text(labels: dict[str, list[str]]) -> str:
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in labels.items()) or "(none)"


def render_catalog(fmt: str, out: TextIO) -> None:
    entries = catalog_entries()
    sip = sum(e["series"] for e in entries if e["origin"] == "sip")
    own = sum(e["series"] for e in entries if e["origin"] == "library")
    if fmt == "json":
        doc = {"metrics": entries, "series_total": sip + own, "sip_series": sip, "library_series": own}
        json.dump(doc, out, indent=2)
        out.write("\n")
    elif fmt == "markdown":
        out.write("| metric | type | labels (allowed values) | series |\n|---|---|---|---:|\n")
        for e in entries:
            labels = "; ".join(f"{k}: {', '.join(f'`{x}`' for x in v)}" for k, v in e["labels"].items()) or "none"
            out.write(f"| `{e['name']}` | {e['type']} | {labels} | {e['series']} |\n")
        out.write(f"| **total** | | {sip} SIP series + {own} of the library's own | **{sip + own}** |\n")
    else:
        width = max(len(e["name"]) for e in entries)
        out.write(f"{'metric':{width}}  {'type':12}  {'series':>6}  labels (allowed values)\n")
        for e in entries:
            out.write(f"{e['name']:{width}}  {e['type']:12}  {e['series']:>6}  {_labels_text(e['labels'])}\n")
        out.write(f"\nseries budget: {sip + own} ({sip} SIP, {own} the library's own)\n")


def _agent(text: str) -> tuple[str, int]:
    """HOST:PORT, an IPv6 address in brackets ([::1]:8125)."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (an IPv6 address in brackets: [::1]:8125)")
    return host, int(port)


def _codes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(code) for code in text.split(",") if code.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of SIP codes") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UDP port (1 to 65535)")
    return int(text)


def _positive(kind: type[int] | type[float], allow_zero: bool = False) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"{text!r} must be {'>= 0' if allow_zero else '> 0'}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sip-statsd",
        description="SIP signalling metrics for StatsD / DogStatsD: catalog, listen, demo, dashboard, prometheus.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {sm.__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cat = sub.add_parser("catalog", help="every metric, its labels, allowed values and series count")
    fmt = cat.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="fmt", action="store_const", const="json", help="JSON for machines")
    fmt.add_argument("--markdown", dest="fmt", action="store_const", const="markdown", help="a Markdown table")
    cat.add_argument(
        "--billing",
        action="store_true",
        help="the Datadog custom metrics it can send, per host and env/service/version (table or --json)",
    )
    cat.add_argument(
        "--percentiles", action="store_true", help="with --billing: percentiles enabled on the distributions"
    )
    cat.add_argument(
        "--response-codes",
        type=_codes,
        metavar="CODE,...",
        help="with --billing: the exact codes sip_invite_response_total keeps (SipMetrics(response_codes=...))",
    )
    cat.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE[:NAME]",
        help="import MODULE first, so that your families count too (MODULE:NAME: that SipMetrics instance)",
    )

    lis = sub.add_parser("listen", help="an embedded DogStatsD/StatsD receiver that prints what arrives")
    lis.add_argument("--host", default="127.0.0.1", help="address to bind, IPv4 or IPv6 (default: %(default)s)")
    lis.add_argument("--port", type=_port, default=8125, help="UDP port (default: %(default)s)")
    lis.add_argument("--interval", type=_positive(float), default=2.0, help="seconds between tables (default: 2)")
    lis.add_argument(
        "--max-series",
        type=_positive(int),
        default=10_000,
        help="series kept per kind; a new one evicts the oldest, and the table says so (default: %(default)s)",
    )

    dem = sub.add_parser("demo", help="simulate SIP traffic through the real helpers and check what arrives")
    dem.add_argument("--calls", type=_positive(int), default=20_000, help="calls to simulate (default: 20000)")
    dem.add_argument("--rate", type=_positive(float, allow_zero=True), default=0.0, help="calls/s; 0 = flat out")
    dem.add_argument("--agent", type=_agent, help="send to a real agent at HOST:PORT instead of the embedded one")
    dem.add_argument("--seed", type=int, default=1, help="random seed for the traffic mix (default: 1)")
    add_dashboard_parser(sub)
    add_prometheus_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "catalog":
            return catalog(args, sys.stdout)
        if args.command == "listen":
            return listen(args.host, args.port, args.interval, sys.stdout, args.max_series)
        if args.command in ("dashboard", "prometheus"):
            return (dashboard if args.command == "dashboard" else prometheus)(args, sys.stdout)
        from .demo import demo

        return demo(args.calls, args.rate, args.seed, args.agent)
    except BrokenPipeError:  # `sip-statsd catalog | head`
        return 0
    except KeyboardInterrupt:
        return 130


# --- dashboard ---------------------------------------------------------------------------


def _threshold(text: str) -> tuple[str, float]:
    from .._assets.datadog.parts import Thresholds

    name, sep, raw = text.partition("=")
    if not sep or name not in Thresholds.names():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE with NAME one of {', '.join(Thresholds.names())}")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {raw!r} is not a number") from None
    try:
        Thresholds(**{name: value})  # type: ignore[arg-type]  # its own range check: a usage error (exit 2)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return name, value


def _handle(text: str) -> str:
    """A Datadog notification handle: `@` then no white space (`@pagerduty-sip`, `@ops@example.com`)."""
    if not text.startswith("@") or len(text) < 2 or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Datadog handle: @pagerduty-NAME, @slack-CHANNEL, @EMAIL")
    return text


def add_dashboard_parser(sub: Any) -> None:
    from .._assets.datadog.parts import DEFAULT_TAGS, DEFAULT_TITLE, Thresholds

    das = sub.add_parser(
        "dashboard",
        help="a Datadog dashboard and monitors generated from the catalog (JSON, or --apply to your account)",
        description="Without --out, prints the dashboard (or with --monitors the monitors) in the Datadog API's JSON.",
    )
    das.add_argument("--out", metavar="DIR", help="write DIR/dashboard.json and DIR/monitors.json")
    das.add_argument("--monitors", action="store_true", help="print the monitors instead of the dashboard")
    das.add_argument("--prefix", help="the prefix the service configures (configure(prefix=...))")
    das.add_argument(
        "--tag",
        action="append",
        dest="tags",
        metavar="KEY",
        help=f"a tag key for template variables and monitor groups, repeatable (default: {' '.join(DEFAULT_TAGS)})",
    )
    das.add_argument("--title", default=DEFAULT_TITLE, help="dashboard title; monitor names start with it")
    das.add_argument(
        "--threshold",
        action="append",
        default=[],
        type=_threshold,
        metavar="NAME=VALUE",
        help=f"a monitor threshold, repeatable; NAME one of {', '.join(Thresholds.names())}",
    )
    das.add_argument(
        "--notify", action="append", default=[], type=_handle, metavar="@HANDLE", help="add to every monitor message"
    )
    das.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE[:NAME]",
        help="import MODULE first, so the families it defines (your own) are on the dashboard; "
        "MODULE:NAME builds from the SipMetrics instance MODULE.NAME instead of the process-wide one",
    )
    das.add_argument(
        "--apply",
        action="store_true",
        help="create or update them in your Datadog account (DD_API_KEY, DD_APP_KEY, DD_SITE)",
    )
    das.add_argument("--api-url", metavar="URL", help="the API's base URL instead of the one DD_SITE names")


def _fail(message: str, command: str = "dashboard") -> int:
    print(f"sip-statsd {command}: {message}", file=sys.stderr)
    return 1


def _import_metrics(specs: list[str]) -> sm.SipMetrics | None:
    """Import each MODULE (or MODULE:NAME); the SipMetrics instance named, if one is. ValueError if not."""
    found: sm.SipMetrics | None = None
    if specs and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: a module beside the user imports
    for spec in specs:
        module_name, _, name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise ValueError(f"cannot import {module_name!r}: {type(error).__name__}: {error}") from None
        if not name:
            continue
        instance = getattr(module, name, None)
        if not isinstance(instance, sm.SipMetrics):
            raise ValueError(f"{spec!r} is {type(instance).__name__}, not a SipMetrics instance")
        if found is not None and found is not instance:
            raise ValueError(f"{spec!r}: --import names more than one SipMetrics instance")
        found = instance
    return found


def catalog(args: argparse.Namespace, out: TextIO) -> int:
    if args.billing or args.modules or args.response_codes or args.percentiles:
        return billing(args, out)
    render_catalog(args.fmt or "table", out)
    return 0


def billing(args: argparse.Namespace, out: TextIO) -> int:
    """`catalog --billing`: the custom metrics of the catalog, your families and your allowlist."""
    from .billing import render_billing

    try:
        base = _import_metrics(args.modules) or sm.default()
        families = list(base.families)
        if args.response_codes is not None:
            # The SIP families as that allowlist makes them; the rest (yours, the library's own,
            # which count your families' drops) as imported.
            own = sm.SipMetrics(backend="off", response_codes=args.response_codes)
            sip = [f for f in own.families if not f.name.startswith("sip_statsd_")]
            names = {f.name for f in sip}
            families = [*sip, *(f for f in families if f.name not in names)]
            own.close()
    except ValueError as error:
        print(f"sip-statsd catalog: {error}", file=sys.stderr)
        return 2
    render_billing(families, args.percentiles, args.fmt, out)
    return 0


def dashboard(args: argparse.Namespace, out: TextIO) -> int:
    from .._assets.datadog.dashboard import build, write
    from .._assets.datadog.parts import DEFAULT_TAGS, Thresholds

    try:
        metrics = _import_metrics(args.modules)
        thresholds = Thresholds(**dict(args.threshold))
        board, monitors = build(
            metrics,
            prefix=args.prefix,
            tags=DEFAULT_TAGS if args.tags is None else args.tags,
            title=args.title,
            thresholds=thresholds,
            notify=args.notify,
        )
    except ValueError as error:
        return _fail(str(error))
    if args.out:
        try:
            paths = write(args.out, board, monitors)
        except OSError as error:
            return _fail(f"cannot write to {args.out!r}: {error.strerror or error}")
        print(f"wrote {paths[0]} and {paths[1]} ({len(monitors)} monitors)", file=out)
    elif not args.apply:
        json.dump(monitors if args.monitors else board, out, indent=2)
        out.write("\n")
    if not args.apply:
        return 0
    try:
        from .._assets.datadog.apply import ApplyError, InvalidDocumentError, apply
    except ImportError:
        return _fail("--apply needs datadog-api-client: python -m pip install '.[dashboard]' in a sip-statsd checkout")
    try:
        apply(board, monitors, api_url=args.api_url, report=lambda line: print(line, file=out, flush=True))
    except (ApplyError, InvalidDocumentError) as error:
        return _fail(str(error))
    return 0


# --- prometheus --------------------------------------------------------------------------


def add_prometheus_parser(sub: Any) -> None:
    from .._assets.datadog.parts import DEFAULT_TAGS, DEFAULT_TITLE, Thresholds

    pro = sub.add_parser(
        "prometheus",
        help="a statsd_exporter mapping, Prometheus rules and a Grafana dashboard generated from the catalog",
        description="Writes DIR/statsd_exporter.yml, DIR/sip_statsd.rules.yml and DIR/grafana-dashboard.json.",
    )
    pro.add_argument("--out", metavar="DIR", required=True, help="the directory to write the three files into")
    pro.add_argument("--prefix", help="the prefix the service configures (configure(prefix=...))")
    pro.add_argument(
        "--tag",
        action="append",
        dest="tags",
        metavar="KEY",
        help=f"a tag key for dashboard variables and rule groups, repeatable (default: {' '.join(DEFAULT_TAGS)})",
    )
    pro.add_argument("--title", default=DEFAULT_TITLE, help="dashboard title; alert summaries start with it")
    pro.add_argument(
        "--threshold",
        action="append",
        default=[],
        type=_threshold,
        metavar="NAME=VALUE",
        help=f"an alert threshold (the Datadog monitors'), repeatable; NAME one of {', '.join(Thresholds.names())}",
    )
    pro.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE[:NAME]",
        help="import MODULE first, so the families it defines (your own) are mapped and on the dashboard; "
        "MODULE:NAME builds from the SipMetrics instance MODULE.NAME instead of the process-wide one",
    )


def prometheus(args: argparse.Namespace, out: TextIO) -> int:
    from .._assets.datadog.parts import DEFAULT_TAGS, Thresholds
    from .._assets.prometheus.build import build, write

    try:
        assets = build(
            _import_metrics(args.modules),
            prefix=args.prefix,
            tags=DEFAULT_TAGS if args.tags is None else args.tags,
            title=args.title,
            thresholds=Thresholds(**dict(args.threshold)),
        )
    except ValueError as error:
        return _fail(str(error), "prometheus")
    try:
        paths = write(args.out, assets)
    except OSError as error:
        return _fail(f"cannot write to {args.out!r}: {error.strerror or error}", "prometheus")
    alerts = sum(1 for g in assets.rules["groups"] for r in g["rules"] if "alert" in r)
    records = sum(1 for g in assets.rules["groups"] for r in g["rules"] if "record" in r)
    print(f"wrote {', '.join(str(p) for p in paths)} ({records} recording and {alerts} alerting rules)", file=out)
    return 0
