"""The client's retries: Retry-After read in both forms, the backoff rule as a table, and the clients
(blocking and async) against a real HTTP server in a thread that answers 429/503 before 200."""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from framequeue.client import AsyncClient, Client, RetryPolicy, parse_retry_after
from framequeue.errors import JobNotFound, RateLimited, ServiceUnavailable

NOW_S = 1_800_000_000.0


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ("5", 5.0),
    (" 0 ", 0.0),
    ("1.5", 1.5),
    ("-1", None),
    ("soon", None),
    ("inf", None),
    ("nan", None),
    (email.utils.formatdate(NOW_S + 12, usegmt=True), 12.0),
    (email.utils.formatdate(NOW_S - 30, usegmt=True), 0.0),
    ("Mon, 32 Foo 2026 99:00:00 GMT", None),
])
def test_retry_after_is_read_as_seconds_or_an_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW_S) == expected


POLICY = RetryPolicy(max_attempts=4, backoff_s=1.0, max_wait_s=10.0)


@pytest.mark.parametrize(("attempt", "retry_after_s", "rand", "expected"), [
    (1, None, 0.0, 0.5),      # the first backoff, drawn from its upper half
    (1, None, 1.0, 1.0),
    (3, None, 0.0, 2.0),      # doubled per retry
    (3, None, 1.0, 4.0),
    (1, 2.0, 0.0, 2.0),       # the server's ask, at least
    (1, 2.0, 1.0, 2.2),       # plus at most 10 %
    (1, 9.5, 1.0, 10.0),      # never past max_wait_s
    (1, 11.0, 0.0, None),     # an ask over max_wait_s is not waited for
    (4, None, 0.0, None),     # max_attempts tries in all
    (4, 0.0, 0.0, None),
])
def test_the_retry_policy(attempt: int, retry_after_s: float | None, rand: float, expected: float | None) -> None:
    got = POLICY.delay_s(attempt, retry_after_s, rand)
    assert got == (None if expected is None else pytest.approx(expected))


def test_a_backoff_is_capped() -> None:
    assert RetryPolicy(max_attempts=20, backoff_s=1.0, max_wait_s=3.0).delay_s(10, None, 1.0) == 3.0


# -- against a real server ------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    #: close the connection without answering (the client sees a transport error)
    hang_up: bool = False


@dataclass
class Script:
    """Answers handed out in order (the last one repeats), and what each request looked like."""

    answers: list[Answer]
    seen: list[tuple[float, str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, method: str, path: str, headers: dict[str, str]) -> Answer:
        with self.lock:
            self.seen.append((time.monotonic(), method, path, headers))
            return self.answers[min(len(self.seen), len(self.answers)) - 1]


@pytest.fixture
def server() -> Iterator[tuple[str, list[Script]]]:
    """A base URL and a one-slot holder of the script its next requests follow."""
    holder: list[Script] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            answer = holder[0].next(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            if answer.hang_up:
                self.close_connection = True
                return
            data = b"" if answer.body is None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            ctype = "application/problem+json" if answer.status >= 400 else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", holder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


RECORD = {"id": "j1", "status": "queued"}
FAST = RetryPolicy(max_attempts=3, backoff_s=0.05, max_wait_s=5.0)


def problem(status: int, code: str, **headers: str) -> Answer:
    return Answer(status, headers, {"code": code, "detail": f"{code} now"})


def script(holder: list[Script], *answers: Answer) -> Script:
    holder[:] = [Script(list(answers))]
    return holder[0]


def gaps_s(s: Script) -> list[float]:
    return [b[0] - a[0] for a, b in zip(s.seen, s.seen[1:], strict=False)]


def test_a_read_waits_out_a_429s_retry_after_then_succeeds(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(429, "rate_limited", **{"Retry-After": "1"}), Answer(200, body=RECORD))
    with Client(url, retry=FAST) as c:
        assert c.job("j1") == RECORD
    assert len(s.seen) == 2
    assert 1.0 <= gaps_s(s)[0] < 2.0


def test_a_503_with_an_http_date_is_honoured(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1..2 s from now
    s = script(holder, problem(503, "service_unavailable", **{"Retry-After": when}), Answer(200, body=RECORD))
    with Client(url, retry=FAST) as c:
        assert c.job("j1")["id"] == "j1"
    assert len(s.seen) == 2
    assert gaps_s(s)[0] >= 0.9


def test_retries_are_bounded(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(503, "service_unavailable", **{"Retry-After": "0"}))
    with Client(url, retry=FAST) as c, pytest.raises(ServiceUnavailable, match="service_unavailable now"):
        c.jobs()
    assert len(s.seen) == FAST.max_attempts


def test_a_retry_after_longer_than_max_wait_raises_at_once_with_the_delay(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(429, "rate_limited", **{"Retry-After": "120"}), Answer(200, body=RECORD))
    with Client(url, retry=FAST) as c, pytest.raises(RateLimited) as caught:
        c.job("j1")
    assert caught.value.retry_after_s == 120.0
    assert len(s.seen) == 1


def test_other_errors_are_not_retried(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(404, "job_not_found"), Answer(200, body=RECORD))
    with Client(url, retry=FAST) as c, pytest.raises(JobNotFound):
        c.job("nope")
    assert len(s.seen) == 1


def test_a_dropped_connection_is_retried_for_a_read(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, Answer(0, hang_up=True), Answer(200, body=RECORD))
    with Client(url, retry=FAST) as c:
        assert c.job("j1") == RECORD
    assert len(s.seen) == 2


def test_a_submit_without_idempotency_key_is_sent_once(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(503, "service_unavailable", **{"Retry-After": "0"}), Answer(202, body=RECORD))
    with Client(url, retry=FAST) as c, pytest.raises(ServiceUnavailable):
        c.submit({"pipeline": "noop", "input": {"key": "k"}})
    assert len(s.seen) == 1


def test_a_submit_with_an_idempotency_key_is_retried_with_the_same_key(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, Answer(0, hang_up=True), problem(429, "quota_exceeded", **{"Retry-After": "0"}),
               Answer(202, body=RECORD))
    with Client(url, retry=FAST) as c:
        assert c.submit({"pipeline": "noop", "input": {"key": "k"}}, idempotency_key="once")["id"] == "j1"
    assert [h["idempotency-key"] for _, _, _, h in s.seen] == ["once"] * 3
    assert {(m, p) for _, m, p, _ in s.seen} == {("POST", "/v1/jobs")}


def test_cancel_is_not_retried(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, Answer(0, hang_up=True), Answer(202, body=RECORD))
    with Client(url, retry=FAST) as c, pytest.raises(ServiceUnavailable, match="cannot reach"):
        c.cancel("j1")
    assert len(s.seen) == 1


def test_a_client_without_retries_sends_once(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(503, "service_unavailable", **{"Retry-After": "0"}), Answer(200, body=RECORD))
    with Client(url, retry=None) as c, pytest.raises(ServiceUnavailable):
        c.job("j1")
    assert len(s.seen) == 1


def test_the_async_client_retries_the_same_way(server: tuple[str, list[Script]]) -> None:
    url, holder = server
    s = script(holder, problem(429, "rate_limited", **{"Retry-After": "1"}), Answer(0, hang_up=True),
               Answer(200, body={"jobs": [RECORD], "next_after": None}))

    async def go() -> Any:
        async with AsyncClient(url, retry=FAST) as c:
            page = await c.jobs(status="queued", limit=5)
            with pytest.raises(RateLimited):
                script(holder, problem(429, "rate_limited", **{"Retry-After": "60"}))
                await c.job("j1")
            return page

    page = asyncio.run(go())
    assert page["jobs"] == [RECORD]
    assert len(s.seen) == 3
    assert gaps_s(s)[0] >= 1.0
    assert s.seen[-1][2] == "/v1/jobs?limit=5&status=queued"


def test_the_client_needs_none_of_the_servers_dependencies() -> None:
    import subprocess
    import sys

    server_side = ("fastapi", "starlette", "sqlalchemy", "numpy", "cv2", "av", "onnxruntime", "pydantic", "redis",
                   "framequeue.config", "framequeue.jobs", "framequeue.service")
    code = ("import sys, framequeue.client; "
            f"print(','.join(m for m in {server_side!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == ""


def test_the_clients_public_names() -> None:
    import framequeue.client

    assert sorted(framequeue.client.__all__) == sorted([
        "AsyncClient", "BatchItem", "Client", "ErrorInfo", "JobPage", "JobRecord", "JobStatus", "ModelEndpoint",
        "NO_RETRY", "Progress", "Record", "RetryPolicy", "TERMINAL", "Upload", "parse_retry_after",
    ])
    sync_surface = {n for n in vars(Client) if not n.startswith("_")} - {"close"}
    async_surface = {n for n in vars(AsyncClient) if not n.startswith("_")} - {"aclose"}
    assert sync_surface == async_surface
