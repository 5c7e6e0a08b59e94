"""A job with a webhook: its final record arrives signed per Standard Webhooks, verifiable with the
reference library."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from framequeue.errors import FrameQueueError
from tests.acceptance.deployment import Deployment
from tests.mediagen import make_video

pytestmark = pytest.mark.slow

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/fq"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_success_webhook_is_signed_and_carries_the_final_record(
    deployment: Deployment, small_clip: Path, receiver: Receiver
) -> None:
    job = deployment.submit_file(small_clip, webhook={"url": receiver.url, "secret": SECRET})
    record = deployment.wait_done(job["id"])
    assert record["status"] == "succeeded"
    receiver.wait(1)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["id"] == job["id"] and payload["data"]["status"] == "succeeded"
    assert payload["data"]["outputs"] == record["outputs"]
    assert headers["webhook-id"] == f"evt_{job['id']}_succeeded"
    assert SECRET not in body.decode()
    tampered = body.replace(b"succeeded", b"succeedeD", 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)


def test_failure_webhook_uses_the_server_secret(
    deployment: Deployment, tmp_path: Path, receiver: Receiver
) -> None:
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 1000)
    job = deployment.submit_file(bad, webhook={"url": receiver.url})
    assert deployment.wait_done(job["id"])["status"] == "failed"
    receiver.wait(1)
    headers, body = receiver.received[0]
    server_secret = (deployment.home / "webhook_secret").read_text().strip()
    payload = Webhook(server_secret).verify(body, headers)
    assert payload["type"] == "job.failed"
    assert payload["data"]["error"]["code"] == "unsupported_media"
    assert json.loads(body)["data"]["failure_location"].endswith(f"failures/{job['id']}/error.json")


class GoneReceiver(Receiver):
    """Answers 410 Gone; holds the first request until `release` is set (so a test can end another job
    while that delivery is in flight)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.status = 410
        super().__init__()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if len(outer.received) == 1:
                    outer.release.wait(30)
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server.RequestHandlerClass = Handler


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Deployment]:
    """`framequeue up` whose deliveries may wait long (a held receiver) and that sends progress often."""
    dep = Deployment(tmp_path_factory.mktemp("hooks"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2,
                     webhook_timeout_s=60, webhook_progress_s=0.5)
    dep.register_yolox(yolox_model_dir)
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


def _deliveries(dep: Deployment, job_id: str) -> dict[str, dict[str, object]]:
    return {d["id"]: d for d in dep.client.deliveries(job_id)}


def _wait(pred: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_410_disables_the_endpoint_job_still_succeeds_later_events_not_sent(
    hooks: Deployment, small_clip: Path
) -> None:
    rx = GoneReceiver()
    try:
        first = hooks.submit_file(small_clip, webhook={"url": rx.url, "secret": SECRET})
        assert hooks.wait_done(first["id"])["status"] == "succeeded"
        rx.wait(1)  # the delivery is in flight, held
        second = hooks.submit_file(small_clip, webhook={"url": rx.url, "secret": SECRET})  # not disabled yet
        assert hooks.wait_done(second["id"])["status"] == "succeeded"
        rx.release.set()  # 410 Gone
        first_id, second_id = f"evt_{first['id']}_succeeded", f"evt_{second['id']}_succeeded"
        _wait(lambda: _deliveries(hooks, first["id"])[first_id]["state"] == "dead")
        assert "410" in str(_deliveries(hooks, first["id"])[first_id]["last_error"])
        # the job is still succeeded; the endpoint is disabled; the other job's event is never sent
        assert hooks.client.job(first["id"])["status"] == "succeeded"
        assert [d["url"] for d in hooks.client.disabled_webhooks()] == [rx.url]
        _wait(lambda: _deliveries(hooks, second["id"])[second_id]["state"] == "dead")
        later = _deliveries(hooks, second["id"])[second_id]
        assert later["last_error"] == "endpoint disabled (410)" and later["attempts"] == 0
        time.sleep(2)
        assert len(rx.received) == 1
        # a submit naming it is refused, clearly, until an admin enables it again
        with pytest.raises(FrameQueueError) as refused:
            hooks.submit_file(small_clip, webhook={"url": rx.url, "secret": SECRET})
        assert refused.value.code == "webhook_disabled" and refused.value.http_status == 422
        with pytest.raises(FrameQueueError) as not_now:  # and a replay to it too
            hooks.client.replay(second_id)
        assert not_now.value.code == "webhook_disabled"

        hooks.client.enable_webhook(rx.url)
        assert hooks.client.disabled_webhooks() == []
        rx.status = 204
        replayed = hooks.client.replay(second_id)
        assert replayed["state"] == "pending" and replayed["attempts"] == 0
        rx.wait(2)
        headers, body = rx.received[1]
        assert headers["webhook-id"] == second_id  # the same id, signed afresh
        assert Webhook(SECRET).verify(body, headers)["data"]["id"] == second["id"]
        _wait(lambda: _deliveries(hooks, second["id"])[second_id]["state"] == "delivered")
    finally:
        rx.release.set()
        rx.close()


def test_deliveries_list_events_without_secrets_and_replay_resends_the_same_id(
    hooks: Deployment, small_clip: Path, receiver: Receiver
) -> None:
    job = hooks.submit_file(small_clip, webhook={"url": receiver.url, "secret": SECRET})
    assert hooks.wait_done(job["id"])["status"] == "succeeded"
    event_id = f"evt_{job['id']}_succeeded"
    _wait(lambda: _deliveries(hooks, job["id"]).get(event_id, {}).get("state") == "delivered")
    listed = _deliveries(hooks, job["id"])[event_id]
    assert listed["type"] == "job.succeeded" and listed["url"] == receiver.url and listed["attempts"] == 1
    assert listed["delivered_at"] and listed["next_attempt_at"] is None
    raw = hooks.client._http.get(f"/v1/jobs/{job['id']}/deliveries").text
    assert SECRET not in raw and SECRET.removeprefix("whsec_") not in raw
    hooks.client.replay(event_id)
    _wait(lambda: sum(h["webhook-id"] == event_id for h, _ in receiver.received) == 2)
    _wait(lambda: _deliveries(hooks, job["id"])[event_id]["attempts"] == 2)
    for headers, body in receiver.received:
        assert Webhook(SECRET).verify(body, headers)
    with pytest.raises(FrameQueueError) as missing:
        hooks.client.replay("evt_nope")
    assert missing.value.http_status == 404


def test_rotating_secret_both_signatures_verify_with_the_reference_library(
    hooks: Deployment, small_clip: Path, receiver: Receiver
) -> None:
    new = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    job = hooks.submit_file(small_clip, webhook={"url": receiver.url, "secret": f"{new} {SECRET}"})
    assert hooks.wait_done(job["id"])["status"] == "succeeded"
    receiver.wait(1)
    headers, body = receiver.received[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, SECRET):
        assert Webhook(secret).verify(body, headers)["type"] == "job.succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace(b"succeeded", b"succeedeD", 1), headers)


def test_progress_events_are_throttled_signed_and_distinct(
    hooks: Deployment, tmp_path: Path, receiver: Receiver
) -> None:
    clip = make_video(tmp_path / "longer.mp4", frames=300)
    job = hooks.submit_file(clip, params={"sample_fps": 30}, webhook={"url": receiver.url, "secret": SECRET})
    assert hooks.wait_done(job["id"])["status"] == "succeeded"
    terminal = f"evt_{job['id']}_succeeded"
    _wait(lambda: any(h["webhook-id"] == terminal for h, _ in receiver.received))
    events = [(h, Webhook(SECRET).verify(b, h)) for h, b in receiver.received]
    progress = [(h["webhook-id"], p) for h, p in events if p["type"] == "job.progress"]
    assert progress, [h["webhook-id"] for h, _ in events]
    ids = [i for i, _ in progress]
    assert len(set(ids)) == len(ids) and all(i.startswith(f"evt_{job['id']}_progress_") for i in ids)
    for _, payload in progress:  # what a receiver needs to drop a stale one
        assert payload["data"]["status"] == "running" and payload["timestamp"]
        assert isinstance(payload["data"]["progress"]["frames_done"], int)


def test_an_api_that_dies_before_sending_a_webhook_sends_it_after_its_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The terminal event is in the outbox with the job's end; a dispatcher that dies before sending it
    (crash point before_webhook) leaves it there, and the restarted API delivers it, once, same id."""
    dep = Deployment(tmp_path, lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    try:
        dep.start("api", "api", crash_at="before_webhook")
        dep.wait_ready()
        dep.start("w1", "worker")
        payload = tmp_path / "payload.bin"
        payload.write_bytes(b"x")
        key = dep.client.upload(payload)["key"]
        job = dep.client.submit({"pipeline": "noop", "input": {"key": key},
                                 "webhook": {"url": receiver.url, "secret": SECRET}})
        assert dep.procs["api"].wait(60) == 137  # it died with the event in hand, unsent
        assert receiver.received == []
        dep.start("api2", "api")
        dep.wait_ready()
        receiver.wait(1)
        time.sleep(2)  # a second delivery, if any, would arrive now
        assert len(receiver.received) == 1
        headers, body = receiver.received[0]
        assert headers["webhook-id"] == f"evt_{job['id']}_succeeded"
        event = Webhook(SECRET).verify(body, headers)
        assert event["type"] == "job.succeeded" and event["data"]["id"] == job["id"]
    finally:
        dep.stop()
