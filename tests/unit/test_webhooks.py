"""Standard Webhooks signing (checked with the reference library), retry schedule, refusals at send."""

from __future__ import annotations

import base64
import re
import socket
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from framequeue.notify.webhooks import (
    RETRY_SCHEDULE_S,
    SECRETS_PATTERN,
    backoff_s,
    deliver,
    generate_secret,
    sign,
    signed_headers,
)

BODY = b'{"type":"job.succeeded","data":{"job_id":"job_123","status":"succeeded"}}'


def test_generated_secret_is_whsec_and_24_random_bytes() -> None:
    secret = generate_secret()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert generate_secret() != secret


def test_signature_verifies_with_the_reference_library() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, "evt_job_123_succeeded", int(time.time()), BODY)
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == "evt_job_123_succeeded"
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "job.succeeded",
        "data": {"job_id": "job_123", "status": "succeeded"},
    }


def test_signature_fails_after_a_one_byte_change_of_the_body() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, "evt_1", int(time.time()), BODY)
    tampered = BODY.replace(b"job_123", b"job_124")
    assert len(tampered) == len(BODY) and sum(a != b for a, b in zip(BODY, tampered, strict=True)) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):  # another secret must not verify either
        Webhook(generate_secret()).verify(BODY, headers)


def test_signature_covers_id_and_timestamp() -> None:
    secret = generate_secret()
    base = sign(secret, "evt_1", 1_700_000_000, BODY)
    assert base.startswith("v1,")
    assert sign(secret, "evt_2", 1_700_000_000, BODY) != base
    assert sign(secret, "evt_1", 1_700_000_001, BODY) != base


def test_backoff_spreads_retries_over_about_a_day_then_stops() -> None:
    delays_s = [backoff_s(attempt) for attempt in range(1, len(RETRY_SCHEDULE_S) + 1)]
    assert delays_s[0] == 5.0
    assert all(d is not None for d in delays_s)
    assert delays_s == sorted(delays_s)  # type: ignore[type-var]
    assert 20 * 3600 <= sum(RETRY_SCHEDULE_S) <= 36 * 3600
    assert backoff_s(len(RETRY_SCHEDULE_S) + 1) is None
    assert backoff_s(100) is None
    with pytest.raises(ValueError):
        backoff_s(0)


def test_refused_url_disables_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused URL must not be connected to")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    result = deliver("http://hooks.example.com/cb", BODY, {}, resolve=lambda host, port: ["10.0.0.5"])
    assert (result.ok, result.retry, result.disable, result.status_code) == (False, False, True, None)
    assert result.error.startswith("refused:")


def test_dns_failure_at_send_is_retried_not_disabled() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    result = deliver("https://hooks.example.com/cb", BODY, {}, resolve=fail)
    assert (result.ok, result.retry, result.disable) == (False, True, False)
    assert "could not be resolved" in result.error


def test_two_secrets_while_rotating_give_two_signatures_each_verifying() -> None:
    new, old = generate_secret(), generate_secret()
    headers = signed_headers(f"{new} {old}", "evt_1", int(time.time()), BODY)
    signatures = headers["webhook-signature"].split(" ")
    assert signatures == [sign(new, "evt_1", int(headers["webhook-timestamp"]), BODY),
                          sign(old, "evt_1", int(headers["webhook-timestamp"]), BODY)]
    for secret in (new, old):  # a receiver holding either one verifies, with the reference library
        assert Webhook(secret).verify(BODY, headers) is not None
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY.replace(b"job_123", b"job_124"), headers)


def test_secrets_pattern_takes_one_or_two_secrets() -> None:
    one, two = generate_secret(), generate_secret()
    assert re.fullmatch(SECRETS_PATTERN, one) and re.fullmatch(SECRETS_PATTERN, f"{one} {two}")
    for bad in (f"{one}  {two}", f"{one} {two} {one}", f"{one} plain", "whsec_short"):
        assert not re.fullmatch(SECRETS_PATTERN, bad)
