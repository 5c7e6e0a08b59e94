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

from tests.acceptance.deployment import Deployment

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
