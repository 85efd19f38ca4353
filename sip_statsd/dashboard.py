"""A Datadog dashboard and monitors generated from the catalog, as plain dicts.

>>> from sip_statsd import SipMetrics
>>> from sip_statsd.dashboard import build, write
>>> dashboard, monitors = build(SipMetrics(backend="off"), tags=("env", "service"))
>>> paths = write("datadog", dashboard, monitors)

`apply(dashboard, monitors)` creates or updates them in a Datadog account; it needs the
`dashboard` extra (`python -m pip install '.[dashboard]'`), nothing else here does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._assets.datadog.dashboard import build, count_widgets, generic_widgets, write
from ._assets.datadog.parts import DEFAULT_TAGS, DEFAULT_TITLE, ApplyError, InvalidDocumentError, Thresholds

if TYPE_CHECKING:
    from ._assets.datadog.apply import Applied


def apply(
    dashboard: dict[str, Any],
    monitors: Iterable[dict[str, Any]],
    *,
    api_url: str | None = None,
    report: Callable[[str], None] = print,
    deadline: float = 300.0,
) -> Applied:
    """Create or update the dashboard and monitors (matched by title / name) in your account.

    Keys and site come from DD_API_KEY, DD_APP_KEY and DD_SITE, as datadog-api-client reads
    them. Raises `ApplyError` (a one-line message) when it cannot (within `deadline`
    seconds in all, whatever the server does; a 429 or 5xx is tried again at most three
    times, waiting what it asks up to 30 s, said through `report`), and
    `InvalidDocumentError` before any request if the models refuse a document.
    """
    from ._assets.datadog.apply import apply as _apply

    return _apply(dashboard, monitors, api_url=api_url, report=report, deadline=deadline)


__all__ = [
    "DEFAULT_TAGS",
    "DEFAULT_TITLE",
    "ApplyError",
    "InvalidDocumentError",
    "Thresholds",
    "apply",
    "build",
    "count_widgets",
    "generic_widgets",
    "write",
]
