"""Outbox dispatcher against real loopback receivers: retries, timeouts, 410, redirects, pinning, SSRF."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from framequeue.notify.outbox import ENDPOINT_DISABLED, Dispatcher, OutboxEvent, OutboxStore
from framequeue.notify.ssrf import check_url
from framequeue.notify.webhooks import generate_secret

pytestmark = pytest.mark.timeout(30)

BODY = b'{"type":"job.succeeded","data":{"job_id":"job_1"}}'


# --- an in-memory OutboxStore: a working implementation of the protocol ------------------------------


@dataclass
class Row:
    event: OutboxEvent
    state: str = "pending"  # pending | delivered | dead
    error: str = ""
    delivered_at_s: float | None = None


class InMemoryOutbox:
    """Dict-backed OutboxStore."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        #: url -> when a 410 disabled it
        self.disabled: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, event: OutboxEvent) -> None:
        with self._lock:
            self.rows[event.id] = Row(event)

    def due_events(self, now_s: float, limit: int) -> list[OutboxEvent]:
        with self._lock:
            due = [
                r.event
                for r in self.rows.values()
                if r.state == "pending" and r.event.next_attempt_at_s <= now_s
            ]
        return sorted(due, key=lambda e: e.next_attempt_at_s)[:limit]

    def mark_delivered(self, event_id: str, now_s: float) -> None:
        with self._lock:
            row = self.rows[event_id]
            row.state, row.delivered_at_s = "delivered", now_s
            row.event = replace(row.event, attempts=row.event.attempts + 1)

    def mark_retry(self, event_id: str, attempts: int, next_attempt_at_s: float, error: str) -> None:
        with self._lock:
            row = self.rows[event_id]
            row.event = replace(row.event, attempts=attempts, next_attempt_at_s=next_attempt_at_s)
            row.error = error

    def mark_dead(self, event_id: str, attempts: int, error: str) -> None:
        with self._lock:
            row = self.rows[event_id]
            row.state, row.error = "dead", error
            row.event = replace(row.event, attempts=attempts)

    def disable_endpoint(self, event_id: str, attempts: int, error: str, now_s: float) -> None:
        self.mark_dead(event_id, attempts, error)
        with self._lock:
            url = self.rows[event_id].event.url
            self.disabled[url] = now_s  # one tenant here
            for row in self.rows.values():
                if row.event.url == url and row.state == "pending":
                    row.state, row.error = "dead", ENDPOINT_DISABLED


def _store_type_checks(store: InMemoryOutbox) -> OutboxStore:
    return store  # mypy proves the in-memory store satisfies the protocol


# --- loopback receivers -------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]  # names lowercased
    body: bytes
    at_s: float  # time.monotonic() on arrival


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses` (the last repeats); hangs instead when hang is set."""

    statuses: Sequence[int] = (200,)
    hang: bool = False
    location: str | None = None
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                )
                if receiver.hang:
                    receiver.release.wait(10.0)  # released at teardown; then drop the connection
                    return
                index = min(len(receiver.requests), len(receiver.statuses)) - 1
                self.send_response(receiver.statuses[index])
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**kwargs: object) -> Receiver:
        started.append(Receiver(**kwargs).start())  # type: ignore[arg-type]
        return started[-1]

    yield start
    for r in started:
        r.close()


class FakeClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def event(
    url: str, *, event_id: str = "evt_job_1_succeeded", attempts: int = 0, at_s: float = 0.0
) -> OutboxEvent:
    return OutboxEvent(event_id, "job_1", url, generate_secret(), BODY, attempts, at_s)


def loopback_as(name: str) -> Callable[[str, int], list[str]]:
    """A stub DNS: `name` resolves to 127.0.0.1; counts lookups. The real resolver knows no such name."""

    def resolve(host: str, port: int) -> list[str]:
        resolve.lookups += 1  # type: ignore[attr-defined]
        assert host == name
        return ["127.0.0.1"]

    resolve.lookups = 0  # type: ignore[attr-defined]
    return resolve


# --- tests ---------------------------------------------------------------------------------------------


def test_500_twice_then_200_is_three_deliveries_with_one_id(receiver: Callable[..., Receiver]) -> None:
    rx = receiver(statuses=[500, 500, 200])
    t0 = 1_700_000_000.0
    clock = FakeClock(t0)
    store = InMemoryOutbox()
    ev = event(f"http://hooks.test:{rx.port}/hook", at_s=t0)
    store.add(ev)
    resolve = loopback_as("hooks.test")
    dispatcher = Dispatcher(store, clock=clock, allow_private=True, resolve=resolve, timeout_s=2.0)

    assert dispatcher.run_once() == 1
    assert store.rows[ev.id].event.next_attempt_at_s == t0 + 5.0
    assert dispatcher.run_once() == 0  # not due before its backoff
    clock.now_s = t0 + 5.0
    assert dispatcher.run_once() == 1
    assert store.rows[ev.id].event.next_attempt_at_s == t0 + 5.0 + 300.0
    clock.now_s = t0 + 305.0
    assert dispatcher.run_once() == 1
    clock.now_s = t0 + 10 * 86400.0
    assert dispatcher.run_once() == 0

    row = store.rows[ev.id]
    assert (row.state, row.event.attempts, row.delivered_at_s) == ("delivered", 3, t0 + 305.0)
    assert len(rx.requests) == 3
    assert {r.headers["webhook-id"] for r in rx.requests} == {ev.id}
    # each attempt carries its own time and is signed again, with the same body
    assert [int(r.headers["webhook-timestamp"]) for r in rx.requests] == [int(t0), int(t0) + 5, int(t0) + 305]
    for r in rx.requests:
        at = datetime.fromtimestamp(int(r.headers["webhook-timestamp"]), tz=UTC)
        assert r.headers["webhook-signature"] == Webhook(ev.secret).sign(ev.id, at, r.body.decode())
        assert r.body == BODY
        # pinned to the checked address, yet the receiver still sees its own name
        assert r.headers["host"] == f"hooks.test:{rx.port}"
    assert resolve.lookups == 3  # type: ignore[attr-defined]  # checked again at every send


def test_delivered_request_verifies_with_the_reference_library(receiver: Callable[..., Receiver]) -> None:
    rx = receiver()
    store = InMemoryOutbox()
    ev = event(rx.url)
    store.add(ev)
    Dispatcher(store, allow_private=True).run_once()
    assert store.rows[ev.id].state == "delivered"
    (request,) = rx.requests
    assert Webhook(ev.secret).verify(request.body, request.headers) is not None


def test_hanging_receiver_times_out_without_blocking_other_deliveries(
    receiver: Callable[..., Receiver],
) -> None:
    hanging, healthy = receiver(hang=True), receiver()
    store = InMemoryOutbox()
    store.add(event(hanging.url, event_id="evt_hang", at_s=0.0))  # due first
    store.add(event(healthy.url, event_id="evt_ok", at_s=1.0))
    timeout_s = 0.5
    dispatcher = Dispatcher(
        store, clock=FakeClock(100.0), timeout_s=timeout_s, allow_private=True, max_parallel=4
    )

    started = time.monotonic()
    assert dispatcher.run_once() == 2
    elapsed_s = time.monotonic() - started

    assert store.rows["evt_ok"].state == "delivered"
    assert healthy.requests[0].at_s - started < timeout_s  # not queued behind the hanging one
    hang_row = store.rows["evt_hang"]
    assert (hang_row.state, hang_row.event.attempts, hang_row.event.next_attempt_at_s) == (
        "pending",
        1,
        105.0,
    )
    assert "timed out" in hang_row.error
    assert timeout_s <= elapsed_s < timeout_s + 1.5


def test_410_marks_dead_and_is_never_retried(receiver: Callable[..., Receiver]) -> None:
    rx = receiver(statuses=[410])
    clock = FakeClock(1000.0)
    store = InMemoryOutbox()
    ev = event(rx.url)
    store.add(ev)
    dispatcher = Dispatcher(store, clock=clock, allow_private=True)
    assert dispatcher.run_once() == 1
    clock.now_s += 30 * 86400.0
    assert dispatcher.run_once() == 0
    row = store.rows[ev.id]
    assert (row.state, row.event.attempts) == ("dead", 1)
    assert "410" in row.error
    assert len(rx.requests) == 1
    assert store.disabled == {rx.url: 1000.0}  # the endpoint, not just the event


def test_410_disables_the_endpoint_and_its_other_pending_events(receiver: Callable[..., Receiver]) -> None:
    gone, other = receiver(statuses=[410]), receiver(statuses=[500])
    store = InMemoryOutbox()
    store.add(event(gone.url, event_id="evt_a", at_s=0.0))
    store.add(event(gone.url, event_id="evt_b", at_s=50.0))  # not due yet when the 410 arrives
    store.add(event(other.url, event_id="evt_c", at_s=0.0))
    Dispatcher(store, clock=FakeClock(10.0), allow_private=True).run_once()
    assert store.rows["evt_b"].state == "dead" and store.rows["evt_b"].error == ENDPOINT_DISABLED
    assert store.rows["evt_b"].event.attempts == 0 and len(gone.requests) == 1
    assert store.rows["evt_c"].state == "pending"  # a 500 elsewhere disables nothing
    assert list(store.disabled) == [gone.url]


def test_ssrf_refusal_at_send_kills_the_event_but_disables_no_endpoint() -> None:
    store = InMemoryOutbox()
    ev = event("http://hooks.example.com/cb")
    store.add(ev)
    Dispatcher(store, clock=FakeClock(0.0), resolve=lambda host, port: ["10.0.0.5"]).run_once()
    assert store.rows[ev.id].state == "dead" and store.rows[ev.id].error.startswith("refused:")
    assert store.disabled == {}


def test_redirect_to_an_internal_address_is_not_followed(receiver: Callable[..., Receiver]) -> None:
    internal = receiver()  # stands for 169.254.169.254: it must never see a request
    redirector = receiver(statuses=[307], location="http://169.254.169.254/latest/meta-data/")
    redirector2 = receiver(statuses=[301], location=internal.url)
    store = InMemoryOutbox()
    store.add(event(redirector.url, event_id="evt_1"))
    store.add(event(redirector2.url, event_id="evt_2"))
    Dispatcher(store, clock=FakeClock(0.0), allow_private=True).run_once()
    assert internal.requests == []
    for event_id, code in (("evt_1", "307"), ("evt_2", "301")):
        row = store.rows[event_id]
        assert (row.state, row.event.attempts) == ("pending", 1)  # a failure, retried on the schedule
        assert code in row.error and "not followed" in row.error


def test_rotating_secret_signs_with_both_and_either_verifies(receiver: Callable[..., Receiver]) -> None:
    rx = receiver()
    new, old = generate_secret(), generate_secret()
    store = InMemoryOutbox()
    ev = replace(event(rx.url), secret=f"{new} {old}")
    store.add(ev)
    Dispatcher(store, allow_private=True).run_once()
    (request,) = rx.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(request.body, request.headers) is not None


def test_redirect_is_a_failure_and_is_not_followed(receiver: Callable[..., Receiver]) -> None:
    target = receiver()
    redirector = receiver(statuses=[302], location=target.url)
    store = InMemoryOutbox()
    ev = event(redirector.url)
    store.add(ev)
    Dispatcher(store, clock=FakeClock(0.0), allow_private=True).run_once()
    assert len(redirector.requests) == 1
    assert target.requests == []
    row = store.rows[ev.id]
    assert (row.state, row.event.attempts, row.event.next_attempt_at_s) == ("pending", 1, 5.0)
    assert "302" in row.error and "not followed" in row.error


def test_exhausted_schedule_marks_dead(receiver: Callable[..., Receiver]) -> None:
    rx = receiver(statuses=[503])
    store = InMemoryOutbox()
    ev = event(rx.url, attempts=7)  # the 8th attempt is the last
    store.add(ev)
    Dispatcher(store, clock=FakeClock(0.0), allow_private=True).run_once()
    row = store.rows[ev.id]
    assert (row.state, row.event.attempts) == ("dead", 8)
    assert "503" in row.error


def test_name_rebound_to_loopback_after_submit_is_refused_at_send(receiver: Callable[..., Receiver]) -> None:
    rx = receiver()
    answers = ["93.184.216.34"]
    resolve = lambda host, port: list(answers)  # noqa: E731
    url = f"https://rebind.test:{rx.port}/hook"  # refused before any connection: TLS never matters
    assert check_url(url, resolve=resolve)  # accepted at submit
    answers[:] = ["127.0.0.1"]  # the attacker's DNS now points at the service's own machine
    store = InMemoryOutbox()
    ev = event(url)
    store.add(ev)
    Dispatcher(store, clock=FakeClock(0.0), resolve=resolve).run_once()
    row = store.rows[ev.id]
    assert (row.state, row.event.attempts) == ("dead", 1)
    assert row.error.startswith("refused:") and "loopback" in row.error
    assert rx.requests == []


def test_proxy_settings_from_the_environment_are_ignored(
    receiver: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = receiver()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    store = InMemoryOutbox()
    ev = event(rx.url)
    store.add(ev)
    Dispatcher(store, allow_private=True).run_once()
    assert store.rows[ev.id].state == "delivered"
    assert len(rx.requests) == 1


def test_run_forever_delivers_and_stops(receiver: Callable[..., Receiver]) -> None:
    rx = receiver()
    store = InMemoryOutbox()
    ev = event(rx.url)
    store.add(ev)
    stop = threading.Event()
    thread = threading.Thread(target=Dispatcher(store, allow_private=True).run_forever, args=(stop, 0.05))
    thread.start()
    deadline_s = time.monotonic() + 5.0
    while store.rows[ev.id].state != "delivered" and time.monotonic() < deadline_s:
        time.sleep(0.01)
    stop.set()
    thread.join(2.0)
    assert not thread.is_alive()
    assert store.rows[ev.id].state == "delivered"
    assert len(rx.requests) == 1
