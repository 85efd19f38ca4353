"""Validate a generated dashboard and monitors with `datadog-api-client`'s models, and apply them.

The only module that imports `datadog_api_client` (the `dashboard` extra); the library
itself never needs it. Validation is the client's own deserialisation with type checks
on, plus a walk of the resulting tree: the models do not raise on everything (an invalid
enum or a `oneOf` that matches nothing leaves an object marked `_unparsed`, an unknown
key is kept as an extra property), and either would reach the API unnoticed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, OpenApiException
from datadog_api_client.model_utils import ModelComposed, ModelSimple, OpenApiModel, UnparsedObject
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest

from .parts import ApplyError, InvalidDocumentError

__all__ = ["Applied", "ApplyError", "InvalidDocumentError", "apply", "problems", "to_model"]

MODELS: dict[str, type[OpenApiModel]] = {
    "dashboard": Dashboard,
    "monitor": Monitor,
    "monitor_update": MonitorUpdateRequest,
}
REQUEST_TIMEOUT = 30.0
DEADLINE = 300.0  # the whole apply, whatever the server does
MAX_TRIES = 3  # a request answered 429 or 5xx: tried at most this many times
MAX_WAIT = 30.0  # the longest Retry-After waited for; a longer one gives up at once, saying so
MAX_LISTED = 10_000  # dashboards or monitors listed: more means the API ignores pagination
T = TypeVar("T")


def problems(node: object, path: str = "") -> list[str]:
    """Every `_unparsed` object and unknown property under `node` (a deserialised model)."""
    if isinstance(node, OpenApiModel):
        return _model_problems(node, path)
    found: list[str] = []
    if isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(problems(item, f"{path}[{i}]"))
    elif isinstance(node, dict):
        for key, item in node.items():
            found.extend(problems(item, f"{path}.{key}"))
    return found


def _model_problems(node: OpenApiModel, path: str) -> list[str]:
    where = path or "(top)"
    if isinstance(node, UnparsedObject):
        return [f"{where}: matches no schema (keys {sorted(node._data_store)})"]
    if isinstance(node, ModelSimple):
        allowed = sorted(map(str, node.allowed_values))
        return [f"{where}: {node.value!r} is not one of {allowed}"] if node._unparsed else []
    if isinstance(node, ModelComposed):
        if not node._composed_instances:
            return [f"{where}: matches none of the {type(node).__name__} schemas"]
        return [
            p
            for inner in node._composed_instances
            for p in (
                _explain(inner, (type(node),), path) if isinstance(inner, UnparsedObject) else problems(inner, path)
            )
        ]
    found: list[str] = []
    for key, value in node._data_store.items():
        shown = node.attribute_map.get(key, key)
        inner = f"{path}.{shown}" if path else shown
        if key not in node.openapi_types:
            found.append(f"{inner}: unknown property of {type(node).__name__}")
        elif isinstance(value, UnparsedObject):
            found.extend(_explain(value, node.openapi_types[key], inner))
        else:
            found.extend(problems(value, inner))
    if node._unparsed and not found:
        found.append(f"{where}: {type(node).__name__} marked unparsed")
    return found


def _explain(unparsed: UnparsedObject, expected: tuple[Any, ...], path: str) -> list[str]:
    """Why `unparsed` matched none of a `oneOf`: the problems of the schema its `type` names.

    A wrong value deep inside a widget makes the whole widget definition unparsed; this
    finds the definition the widget meant (by its `type`) and reports the value itself.
    """
    data = dict(unparsed._data_store)
    for composed in expected:
        if not (isinstance(composed, type) and issubclass(composed, ModelComposed)):
            continue
        for candidate in composed._composed_schemas.get("oneOf", ()):
            kinds = getattr(candidate, "openapi_types", {}).get("type", ())
            if any(data.get("type") in getattr(k, "allowed_values", ()) for k in kinds):
                try:
                    model = _offline_client().deserialize(json.dumps(data), (candidate,), True)
                except (OpenApiException, TypeError, ValueError) as error:
                    return [f"{path}: {' '.join(str(error).split())}"]
                return problems(model, path) or [f"{path}: not a valid {candidate.__name__}"]
    return _model_problems(unparsed, path)


_CLIENT: list[ApiClient] = []


def _offline_client() -> ApiClient:
    if not _CLIENT:
        _CLIENT.append(ApiClient(Configuration()))
    return _CLIENT[0]


def to_model(doc: Any, kind: str) -> Any:
    """`doc` (JSON-ready) as the client's `kind` model, type-checked; InvalidDocumentError if not valid."""
    try:
        model = _offline_client().deserialize(json.dumps(doc), (MODELS[kind],), True)
    except (OpenApiException, TypeError, ValueError) as error:
        raise InvalidDocumentError(kind, [" ".join(str(error).split())]) from None
    found = problems(model)
    if not isinstance(model, MODELS[kind]):
        found.insert(0, f"not a {MODELS[kind].__name__} object")
    if found:
        raise InvalidDocumentError(kind, found)
    return model


@dataclass
class Applied:
    """What `apply` did: (action, title or name, id) per object, action 'created' or 'updated'."""

    dashboard: tuple[str, str, str] = ("", "", "")
    monitors: list[tuple[str, str, int]] = field(default_factory=list)
    url: str = ""


def configuration(api_url: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Configuration:
    """The client's configuration from DD_API_KEY, DD_APP_KEY, DD_SITE (or `api_url`), checked."""
    config = Configuration(request_timeout=timeout)
    missing = [
        k for k, auth in (("DD_API_KEY", "apiKeyAuth"), ("DD_APP_KEY", "appKeyAuth")) if not config.api_key.get(auth)
    ]
    if missing:
        raise ApplyError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: export an API key and an "
            "application key with the dashboards_write and monitors_write scopes (and DD_SITE if not datadoghq.com)"
        )
    if api_url:
        if not api_url.startswith(("http://", "https://")):
            raise ApplyError(f"--api-url {api_url!r} must start with http:// or https://")
        config.host = api_url.rstrip("/")
    try:
        config.host  # noqa: B018  # an unknown DD_SITE raises here
    except ValueError:
        raise ApplyError(f"DD_SITE {os.environ.get('DD_SITE')!r} is not a Datadog site (e.g. datadoghq.eu)") from None
    return config


def _one_line(error: BaseException, action: str, host: str) -> str:
    if isinstance(error, ApiException) and error.status:
        body = error.body
        detail = ""
        if isinstance(body, dict) and body.get("errors"):
            detail = "; ".join(str(e) for e in body["errors"])
        elif body:
            detail = str(body)
        hint = {
            401: " (DD_API_KEY is not valid for this site; check DD_SITE)",
            403: " (check DD_APP_KEY, its scopes dashboards_write / monitors_write, and DD_SITE)",
        }.get(error.status, "")
        text = f"Datadog refused to {action}: HTTP {error.status} {error.reason or ''}{hint}: {detail}"
    elif isinstance(error, ApiException):
        text = f"could not {action}: {error.reason}"
    elif isinstance(error, OpenApiException):  # an answer the models do not accept
        text = f"unexpected answer from the Datadog API at {host} to {action}: {error}"
    else:
        reason = getattr(error, "reason", None) or error
        text = f"cannot reach the Datadog API at {host} to {action}: {reason}"
    return " ".join(text.split()).rstrip(": ")


def apply(
    dashboard: dict[str, Any],
    monitors: Iterable[dict[str, Any]],
    *,
    api_url: str | None = None,
    report: Callable[[str], None] = lambda line: None,
    deadline: float = DEADLINE,
) -> Applied:
    """Create or update (matched by title / name) the dashboard and each monitor.

    Everything is validated with the models before the first request. Raises ApplyError
    (one line) on missing keys, a refused request, an unreachable API, an API that lists
    more than `MAX_LISTED` objects (pagination ignored), or when `deadline` seconds pass
    (whatever the server does: slow answers, trickled bytes, long Retry-After); what was
    done before has been reported through `report`. A 429 or 5xx is tried again at most
    `MAX_TRIES` times, waiting what the API asks (at most `MAX_WAIT` s), said through `report`.
    """
    board = to_model(dashboard, "dashboard")
    wanted = [(m, to_model(m, "monitor"), to_model(m, "monitor_update")) for m in monitors]
    config = configuration(api_url)
    config.retry_policy = False  # the client's retry sleeps any Retry-After, three times: ours is bounded
    run = _Run(config, time.monotonic() + deadline, report)
    worker = threading.Thread(target=run.main, args=(dashboard, board, wanted), name="sip-statsd-apply", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():  # left behind: a daemon thread, its socket closed with the pool
        run.give_up()
        raise ApplyError(
            f"gave up on the Datadog API at {config.host} after the {deadline:.0f} s deadline, trying to {run.action}"
        )
    if isinstance(run.outcome, BaseException):
        raise run.outcome
    assert run.outcome is not None
    return run.outcome


class _Run:
    """One apply, run on a worker thread the caller waits for with the deadline."""

    def __init__(self, config: Configuration, deadline: float, report: Callable[[str], None]) -> None:
        self.config = config
        self.deadline = deadline
        self.report = report
        self.action = "list dashboards"
        self.outcome: Applied | BaseException | None = None
        self.client: ApiClient | None = None

    def give_up(self) -> None:
        client = self.client
        if client is not None:
            with contextlib.suppress(Exception):
                client.rest_client.pool_manager.clear()

    def call(self, action: str, request: Callable[[], T]) -> T:
        """`request()`, tried again on 429 and 5xx (at most MAX_TRIES in all), saying what it waits for."""
        self.action = action
        for attempt in range(1, MAX_TRIES + 1):
            try:
                return request()
            except ApiException as error:
                status = error.status or 0
                if status != 429 and not 500 <= status < 600:
                    raise
                wait, why = _retry_after(error, attempt)
                left = self.deadline - time.monotonic()
                if attempt == MAX_TRIES or wait > MAX_WAIT or wait >= left:
                    asked = "an unreadable time" if math.isinf(wait) else f"{wait:.0f} s"
                    limit = "no tries left" if attempt == MAX_TRIES else f"the limit is {min(MAX_WAIT, left):.0f} s"
                    raise ApplyError(
                        f"Datadog answered HTTP {status} to {action} and asks to wait {asked} ({why}); "
                        f"{limit}: try again later"
                    ) from None
                self.report(
                    f"HTTP {status} from Datadog to {action}: waiting {wait:.0f} s ({why}) before try "
                    f"{attempt + 1} of {MAX_TRIES}"
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    def listed(self, action: str, pages: Callable[[], Iterable[T]]) -> list[T]:
        """Every object a paginated listing gives, at most MAX_LISTED (else the API ignores pagination)."""
        got = self.call(action, lambda: list(itertools.islice(pages(), MAX_LISTED + 1)))
        if len(got) > MAX_LISTED:
            raise ApplyError(
                f"the Datadog API listed more than {MAX_LISTED:,} objects to {action}: it seems to ignore "
                "pagination (page limit reached)"
            )
        return got

    def main(self, dashboard: dict[str, Any], board: Any, wanted: list[tuple[Any, Any, Any]]) -> None:
        try:
            self.outcome = self._apply(dashboard, board, wanted)
        except ApplyError as error:
            self.outcome = error
        except Exception as error:  # urllib3 and socket errors, ApiException: one line, no traceback
            failure = ApplyError(_one_line(error, self.action, self.config.host))
            failure.__cause__ = error
            self.outcome = failure

    def _apply(self, dashboard: dict[str, Any], board: Any, wanted: list[tuple[Any, Any, Any]]) -> Applied:
        host = self.config.host
        done = Applied(url=host)
        report = self.report
        with ApiClient(self.config) as client:
            # Older clients (2.17 among them) have no retry_policy: urllib3's default then sleeps a 429's
            # Retry-After (an hour, say) itself. The pools it makes take their retries from here.
            client.rest_client.pool_manager.connection_pool_kw["retries"] = False
            self.client = client
            dashboards, monitors_api = DashboardsApi(client), MonitorsApi(client)
            title = dashboard["title"]
            listed = self.listed("list dashboards", dashboards.list_dashboards_with_pagination)
            same = [d.id for d in listed if d.title == title]
            if same:
                result = self.call(f"update dashboard {same[0]}", lambda: dashboards.update_dashboard(same[0], board))
                done.dashboard = ("updated", title, result.id)
            else:
                result = self.call("create the dashboard", lambda: dashboards.create_dashboard(board))
                done.dashboard = ("created", title, result.id)
            extra = f" ({len(same)} dashboards have this title; the first was updated)" if len(same) > 1 else ""
            link = getattr(result, "url", None) or ""
            if link.startswith("/"):  # the API answers a path on the web app's host
                link = host.replace("://api.", "://app.", 1) + link
            report(f"{done.dashboard[0]} dashboard {title!r}: {link or result.id}{extra}")

            existing: dict[str, int] = {}
            for m in self.listed("list monitors", lambda: monitors_api.list_monitors_with_pagination(page_size=500)):
                existing.setdefault(m.name, m.id)
            for doc, create, update in wanted:
                name = doc["name"]
                if name in existing:
                    mid = existing[name]
                    got = self.call(f"update monitor {mid} {name!r}", partial(monitors_api.update_monitor, mid, update))
                    done.monitors.append(("updated", name, got.id))
                else:
                    got = self.call(f"create monitor {name!r}", partial(monitors_api.create_monitor, create))
                    done.monitors.append(("created", name, got.id))
                    existing[name] = got.id
                report(f"{done.monitors[-1][0]} monitor {got.id} {name!r}")
        return done


def _retry_after(error: ApiException, attempt: int) -> tuple[float, str]:
    """How long the API asks to wait (Retry-After, or Datadog's X-RateLimit-Reset), else a back-off."""
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    for header in ("retry-after", "x-ratelimit-reset"):
        text = headers.get(header)
        if text is not None:
            try:
                seconds = float(text)
            except ValueError:  # an HTTP date: not worth a clock comparison, given up as too long
                seconds = math.inf
            if not math.isfinite(seconds):
                return math.inf, f"{header.title()}: {text[:40]!r}"
            return max(0.0, seconds), header.title()
    return float(2 ** (attempt - 1)), "back-off"
