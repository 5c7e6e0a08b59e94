"""Standard Webhooks (https://www.standardwebhooks.com): signing, retry schedule, one pinned delivery.

A delivery POSTs to the address the SSRF check just approved (never a fresh DNS answer), never follows a
redirect, and reads only the status line: 2xx is delivered, 410 means the receiver is gone for good, and
anything else (3xx included) is tried again on the `backoff_s` schedule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import httpx

from framequeue.errors import InvalidParams
from framequeue.notify.ssrf import Resolver, check_url, resolve_host

__all__ = [
    "SECRETS_PATTERN", "DeliveryResult", "backoff_s", "deliver", "generate_secret", "sign", "signed_headers",
]

_SECRET_PREFIX = "whsec_"
#: one secret, or two separated by one space while rotating (the new one first): "whsec_new whsec_old"
SECRETS_PATTERN = r"^whsec_[A-Za-z0-9+/=]{16,}( whsec_[A-Za-z0-9+/=]{16,})?$"
#: random bytes in a generated secret (the spec asks for 24 to 64)
SECRET_BYTES = 24
#: wait after the n-th failed delivery (index n - 1): the Standard Webhooks / Svix schedule, ~27.6 h in all
RETRY_SCHEDULE_S: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def generate_secret() -> str:
    """A new endpoint secret: "whsec_" + base64 of 24 random bytes."""
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """Signature header value: "v1," + base64 HMAC-SHA256 of "{msg_id}.{timestamp_s}." + body."""
    key = base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
    signed = f"{msg_id}.{int(timestamp_s)}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt, plus the JSON content type.

    ``secret`` may be several secrets separated by spaces (``"whsec_new whsec_old"``, while a secret is
    rotated): the signature header then carries one space-separated ``v1,`` signature per secret, and a
    receiver holding any one of them verifies the request.
    """
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp_s)),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp_s, body) for s in secret.split()),
        "content-type": "application/json",
    }


def backoff_s(attempt: int) -> float | None:
    """Seconds to wait after the attempt-th failed delivery (1-based); None when no retry is left."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return RETRY_SCHEDULE_S[attempt - 1] if attempt <= len(RETRY_SCHEDULE_S) else None


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one delivery attempt; exactly one of ok / retry / disable is true."""

    #: the receiver's HTTP status, None when no response arrived
    status_code: int | None
    ok: bool
    #: worth trying again later (5xx, 4xx other than 410, 3xx, timeout, connection or DNS failure)
    retry: bool
    #: never try again: the receiver answered 410 Gone, or the URL is refused by the SSRF check
    disable: bool
    #: why it failed, safe to store and log (no URL, header or secret in it); "" when ok
    error: str = ""


def deliver(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float = 10.0,
    allow_private: bool = False,
    resolve: Resolver = resolve_host,
) -> DeliveryResult:
    """POST body to url once, connecting only to an address that passes the SSRF check right now.

    ``timeout_s`` bounds each of connect, send and wait-for-response. Never raises for a receiver's
    failure; the outcome is in the result.
    """
    try:
        addresses = check_url(url, allow_private=allow_private, resolve=resolve)
    except InvalidParams as exc:
        if isinstance(exc.__cause__, OSError):  # DNS failure: transient, unlike a refusal
            return DeliveryResult(None, ok=False, retry=True, disable=False, error=exc.message)
        return DeliveryResult(None, ok=False, retry=False, disable=True, error=f"refused: {exc.message}")

    target = httpx.URL(url)
    request_headers = {name: value for name, value in headers.items() if name.lower() != "host"}
    # The request line goes to the pinned IP; the receiver still sees its own name in Host and, for
    # https, in SNI and certificate verification (httpcore's "sni_hostname" extension).
    request_headers["host"] = target.netloc.decode("ascii")
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    # trust_env=False: a proxy from HTTP(S)_PROXY would make the connection somewhere unchecked
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=timeout_s) as client:
        error = "no address to connect to"
        for address in addresses:
            request = client.build_request(
                "POST",
                target.copy_with(host=str(address)),
                content=body,
                headers=request_headers,
                extensions=extensions,
            )
            try:
                # stream: only the status matters, so the receiver's body is never read
                response = client.send(request, stream=True)
                response.close()
                return _outcome(response.status_code)
            except httpx.ConnectError as exc:
                # nothing was sent: the next checked address (e.g. IPv4 after IPv6) is safe to try
                error = f"connection failed: {exc}"
            except httpx.TimeoutException as exc:
                return _failure(f"timed out after {timeout_s:g} s ({type(exc).__name__})")
            except httpx.HTTPError as exc:
                return _failure(f"{type(exc).__name__}: {exc}")
    return _failure(error)


def _outcome(status_code: int) -> DeliveryResult:
    if 200 <= status_code < 300:
        return DeliveryResult(status_code, ok=True, retry=False, disable=False)
    if status_code == 410:
        return DeliveryResult(
            status_code, ok=False, retry=False, disable=True, error="receiver answered 410 Gone"
        )
    if 300 <= status_code < 400:
        # A redirect is a failure (it could point anywhere, internal addresses included); retried on the
        # schedule because a receiver that moves usually fixes its URL or stops redirecting.
        error = f"receiver answered {status_code} redirect, not followed"
    else:
        error = f"receiver answered {status_code}"
    return DeliveryResult(status_code, ok=False, retry=True, disable=False, error=error)


def _failure(error: str) -> DeliveryResult:
    return DeliveryResult(None, ok=False, retry=True, disable=False, error=error)
