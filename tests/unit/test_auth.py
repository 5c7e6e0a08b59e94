"""API keys, scopes and the per-tenant token bucket (pure)."""

from __future__ import annotations

import pytest

from framequeue.errors import InvalidParams
from framequeue.tenants.auth import DEV_PRINCIPAL, Principal, hash_key, key_id, new_key, verify
from framequeue.tenants.ratelimit import RateLimiter, retry_after


def test_a_key_names_its_row_and_only_its_hash_is_kept() -> None:
    row, key = new_key("acme", "submit", "ci", 1.0)
    assert key.startswith(f"fq_{row.id}_") and key_id(key) == row.id
    assert row.key_hash == hash_key(key) and key not in repr(row)
    assert verify(row, key)
    assert not verify(row, key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert not verify(None, key)
    assert key_id("fq_nope") is None and key_id("Bearer " + key) is None


def test_scopes_are_ordered() -> None:
    read, submit = Principal("t", "read"), Principal("t", "submit")
    assert read.allows("read") and not read.allows("submit")
    assert submit.allows("read") and submit.allows("submit") and not submit.allows("admin")
    assert DEV_PRINCIPAL.allows("admin") and DEV_PRINCIPAL.tenant == "default"


@pytest.mark.parametrize("tenant", ["", "Acme", "a/b", "../x", "a" * 64])
def test_tenant_names_are_checked(tenant: str) -> None:
    with pytest.raises(InvalidParams):
        new_key(tenant, "read", "", 0.0)


def test_token_bucket_per_tenant() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5) and retry_after(wait) == 1
    assert limiter.take("b") is None  # another tenant's bucket is its own
    now[0] += 0.5
    assert limiter.take("a") is None and limiter.take("a") is not None
    assert RateLimiter(0).take("a") is None  # off
