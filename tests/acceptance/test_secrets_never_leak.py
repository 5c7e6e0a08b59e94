"""Secrets (RELIABILITY.md): run a job with a known API key, webhook secret and job store / queue password,
then search every log, job record, error body and webhook delivery: none of them appears."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.deployment import Deployment
from tests.acceptance.test_webhooks_over_http import Receiver
from tests.contract.backends import PG_DSN, cleanup, require_service

pytestmark = pytest.mark.slow

PASSWORD = "SECRETPASS-7d1f3c"
SERVER_WEBHOOK_SECRET = "whsec_" + "c2VydmVyLXNlY3JldC1kbzRub3RsZWFr"
JOB_WEBHOOK_SECRET = "whsec_" + "am9iLXNlY3JldC1uZXZlci1zaG93bg=="


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_no_secret_appears_in_logs_records_errors_or_webhooks(tmp_path: Path, receiver: Receiver) -> None:
    require_service("postgres")
    # the local PostgreSQL trusts loopback, so the password is sent and ignored: it still travels every path
    assert PG_DSN.startswith("postgresql://postgres@")
    schema = f"fq_{uuid.uuid4().hex[:12]}"
    url = PG_DSN.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@") + f"?schema={schema}"
    dep = Deployment(tmp_path, database_url=url, broker_url=f"{url}&queue={schema}",
                     webhook_secret=SERVER_WEBHOOK_SECRET, reap_interval_s=1, log_level="debug")
    key = dep.cli("keys", "create", "--tenant", "acme", "--scope", "submit").stdout.strip()
    secrets = [PASSWORD, SERVER_WEBHOOK_SECRET, JOB_WEBHOOK_SECRET, key, key.rsplit("_", 1)[1]]
    seen: list[str] = []
    try:
        dep.start("api", "api")
        dep.wait_ready()
        dep.start("w1", "worker")
        with httpx.Client(base_url=dep.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            up = c.post("/v1/uploads", params={"filename": "in.bin"}, content=b"x" * 64)
            assert up.status_code == 201, up.text
            seen.append(up.text)
            jobs = []
            for secret in (JOB_WEBHOOK_SECRET, None):
                hook = {"url": receiver.url, **({"secret": secret} if secret else {})}
                r = c.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": up.json()["key"]},
                                             "webhook": hook})
                assert r.status_code == 202, r.text
                jobs.append(r.json()["id"])
                seen.append(r.text)
            receiver.wait(2)
            for job_id in jobs:
                seen.append(c.get(f"/v1/jobs/{job_id}").text)
            seen.append(c.get("/v1/jobs").text)
            seen.append(c.get("/v1/jobs/0123456789abcdef").text)  # 404
            seen.append(c.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": "../x"}}).text)  # 422
            seen.append(c.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": "uploads/acme/none"},
                                                 "webhook": {"url": "http://user:pw@example.com/"}}).text)
        with httpx.Client(base_url=dep.base_url, timeout=30) as anon:
            seen.append(anon.get("/v1/jobs", headers={"Authorization": f"Bearer {key}x"}).text)  # 401
            seen.append(anon.get("/metrics").text)
        assert len(receiver.received) == 2, receiver.received
        for headers, body in receiver.received:
            seen.append(body.decode())
            seen.extend(f"{k}: {v}" for k, v in headers.items())
    finally:
        dep.stop()
        cleanup(url)
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert logs and all(logs.values())
    for secret in secrets:
        for text in seen:
            assert secret not in text, (secret, text)
        for name, text in logs.items():
            assert secret not in text, (secret, name)
