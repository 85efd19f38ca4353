"""A loopback stand-in for the Datadog API's dashboard and monitor paths (v1).

It speaks the paths, query parameters, keys and JSON that `datadog-api-client` uses, and
validates every request body with that client's own models (type checks on, and the tree
walked for unparsed objects and unknown keys), answering 400 with the problems as Datadog
does. State is in memory; it binds 127.0.0.1 and stops with the test.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sip_statsd._assets.datadog.apply import InvalidDocumentError, to_model


class DatadogAPI:
    """`with DatadogAPI() as api:` then point the client at `api.url`."""

    def __init__(self, api_key: str = "test-api-key", app_key: str = "test-app-key") -> None:
        self.api_key, self.app_key = api_key, app_key
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.monitors: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, int]] = []  # method, path, status answered
        self.rejected: list[str] = []  # why bodies were refused
        self._lock = threading.Lock()
        self._next = 1000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="datadog-api", daemon=True
        )

    def __enter__(self) -> DatadogAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def calls(self, method: str, path_pattern: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(path_pattern, p))

    # --- the API -----------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next += 1
        return self._next

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v1/dashboard":
            start, count = int(query.get("start", ["0"])[0]), int(query.get("count", ["100"])[0])
            summaries = [
                {"id": i, "title": d["title"], "layout_type": d["layout_type"], "url": d["url"]}
                for i, d in self.dashboards.items()
            ]
            return 200, {"dashboards": summaries[start : start + count]}
        if method == "GET" and path == "/api/v1/monitor":
            items = list(self.monitors.values())
            if "page" in query:
                size = int(query.get("page_size", ["100"])[0])
                page = int(query["page"][0])
                items = items[page * size : (page + 1) * size]
            return 200, items
        if method in ("POST", "PUT") and (m := re.fullmatch(r"/api/v1/dashboard(?:/([\w-]+))?", path)):
            key = m.group(1)
            if (method == "PUT") != (key is not None):
                return 405, {"errors": ["Method Not Allowed"]}
            if key is not None and key not in self.dashboards:
                return 404, {"errors": ["Dashboard not found"]}
            if (refused := self._invalid(body, "dashboard")) is not None:
                return 400, refused
            key = key or f"sip-{self._new_id()}-xyz"
            self.dashboards[key] = {**body, "id": key, "url": f"/dashboard/{key}/sip"}
            return 200, self.dashboards[key]
        if method in ("POST", "PUT") and (m := re.fullmatch(r"/api/v1/monitor(?:/(\d+))?", path)):
            ident = int(m.group(1)) if m.group(1) else None
            if (method == "PUT") != (ident is not None):
                return 405, {"errors": ["Method Not Allowed"]}
            if ident is not None and ident not in self.monitors:
                return 404, {"errors": ["Monitor not found"]}
            kind = "monitor_update" if ident is not None else "monitor"
            if (refused := self._invalid(body, kind)) is not None:
                return 400, refused
            ident = ident or self._new_id()
            self.monitors[ident] = {**self.monitors.get(ident, {}), **body, "id": ident}
            return 200, self.monitors[ident]
        return 404, {"errors": [f"no route for {method} {path}"]}

    def _invalid(self, body: Any, kind: str) -> dict[str, list[str]] | None:
        try:
            to_model(body, kind)
        except InvalidDocumentError as error:
            self.rejected.extend(error.problems)
            return {"errors": error.problems}
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("DD-API-KEY") != api.api_key or self.headers.get("DD-APPLICATION-KEY") != (
                    api.app_key
                ):
                    status, doc = 403, {"errors": ["Forbidden"]}
                else:
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        status, doc = 400, {"errors": ["Invalid JSON"]}
                    else:
                        with api._lock:
                            status, doc = api.answer(self.command, url.path, parse_qs(url.query), body)
                api.requests.append((self.command, url.path, status))
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
