"""`dashboard --apply` ends: one overall deadline, a bounded retry that says what it waits for,
and a page limit, against misbehaving APIs served by a real HTTPServer on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sip_statsd.dashboard import ApplyError, apply, build

Answer = Callable[[BaseHTTPRequestHandler, threading.Event], None]


class BadAPI:
    """Answers every request with `answer`; counts requests; stops with the test."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[str] = []
        self.stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(f"GET {self.path}")
                answer(self, api.stop)

            def do_POST(self) -> None:
                api.requests.append(f"POST {self.path}")
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                made = {"id": "abc-def-ghi", "url": "/dashboard/abc"} if "dashboard" in self.path else {"id": 1234}
                reply(self, 200, {**body, **made})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def __enter__(self) -> BadAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def reply(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", "k")
    monkeypatch.setenv("DD_APP_KEY", "a")
    monkeypatch.delenv("DD_SITE", raising=False)


def apply_within(url: str, limit: float = 60.0, **options: Any) -> tuple[BaseException | None, list[str]]:
    """Run apply on a thread; fail the test if it has not ended by `limit` (it would hang)."""
    said: list[str] = []
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            apply(*build(), api_url=url, report=said.append, **options)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"apply did not end within {limit} s")
    return outcome[0], said


def test_a_long_retry_after_is_not_slept(keys):
    with BadAPI(lambda h, _: reply(h, 429, {"errors": ["slow down"]}, {"Retry-After": "3600"})) as api:
        error, _ = apply_within(api.url, deadline=20)
    assert isinstance(error, ApplyError)
    assert "3600" in str(error)
    assert "429" in str(error)
    assert len(api.requests) <= 3


def test_a_short_retry_is_waited_for_and_said(keys):
    answers = iter([503, 429])

    def answer(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        status = next(answers, 200)
        if status != 200:
            reply(handler, status, {"errors": ["busy"]}, {"Retry-After": "1"})
        elif handler.path.startswith("/api/v1/dashboard"):
            reply(handler, 200, {"dashboards": []})
        else:
            reply(handler, 200, [])

    with BadAPI(answer) as api:
        error, said = apply_within(api.url, deadline=30)
    assert error is None, error
    waits = [line for line in said if "waiting" in line]
    assert len(waits) == 2
    assert "HTTP 503" in waits[0]
    assert "HTTP 429" in waits[1]


def test_a_trickled_answer_meets_the_deadline(keys):
    def trickle(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        handler.wfile.write(b'{"dashboards": [')
        handler.wfile.flush()
        while not stop.wait(0.5):  # one byte every half second, for as long as the client reads
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                return

    with BadAPI(trickle) as api:
        error, _ = apply_within(api.url, deadline=3)
    assert isinstance(error, ApplyError)
    assert "deadline" in str(error)


def test_an_api_that_ignores_pagination_is_given_up(keys):
    page = {"dashboards": [{"id": f"id-{i}", "title": f"t{i}"} for i in range(100)]}
    with BadAPI(lambda h, _: reply(h, 200, page)) as api:
        error, _ = apply_within(api.url, deadline=60)
    assert isinstance(error, ApplyError)
    assert "page" in str(error)
    assert len(api.requests) <= 101
