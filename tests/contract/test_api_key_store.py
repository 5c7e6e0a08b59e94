"""API keys and tenants in every job store: keys kept as hashes, found by id or hash, listed per tenant,
revoked for good; jobs carry their tenant."""

from __future__ import annotations

import pytest

from framequeue.errors import ApiKeyNotFound
from framequeue.jobs import JobStatus
from framequeue.jobstore import JobStore
from framequeue.tenants.auth import ApiKey, hash_key, key_id, new_key, verify
from tests.contract.conftest import T0, new_job


def test_keys_are_created_found_listed_and_revoked(store: JobStore) -> None:
    assert not store.has_api_keys()
    a1, key_a1 = new_key("acme", "submit", "ci", T0)
    a2, _ = new_key("acme", "read", "dashboards", T0 + 1)
    b1, _ = new_key("beta", "admin", "", T0 + 2)
    for row in (a1, a2, b1):
        store.create_api_key(row)
    assert store.has_api_keys()
    assert store.get_api_key(a1.id) == a1
    assert store.find_api_key(hash_key(key_a1)) == a1
    assert store.find_api_key(hash_key(key_a1 + "x")) is None
    assert [k.id for k in store.list_api_keys("acme")] == [a1.id, a2.id]
    assert [k.id for k in store.list_api_keys()] == [a1.id, a2.id, b1.id]
    assert store.list_api_keys("nobody") == []
    assert verify(store.get_api_key(key_id(key_a1) or ""), key_a1)

    revoked = store.revoke_api_key(a1.id, T0 + 10)
    assert revoked.revoked_at_s == T0 + 10
    assert store.revoke_api_key(a1.id, T0 + 20).revoked_at_s == T0 + 10  # the first revocation stands
    assert not verify(store.get_api_key(a1.id), key_a1)
    assert store.has_api_keys()  # a revoked key still ends development mode
    with pytest.raises(ApiKeyNotFound):
        store.get_api_key("000000000000")
    with pytest.raises(ApiKeyNotFound):
        store.revoke_api_key("000000000000", T0)


def test_only_the_hash_is_stored(store: JobStore) -> None:
    row, key = new_key("acme", "read", "n", T0)
    store.create_api_key(row)
    stored = store.get_api_key(row.id)
    assert key not in repr(stored) and stored.key_hash == hash_key(key)
    assert isinstance(stored, ApiKey)


def test_jobs_carry_their_tenant_and_are_listed_and_counted_per_tenant(store: JobStore) -> None:
    store.create(new_job("a1", tenant="acme"))
    store.create(new_job("a2", tenant="acme"))
    store.create(new_job("b1", tenant="beta"))
    store.create(new_job("d1"))
    assert store.get("a1").tenant == "acme"
    assert store.get("d1").tenant == "default"
    assert [j.id for j in store.list_jobs(tenant="acme")] == ["a2", "a1"]
    assert [j.id for j in store.list_jobs(tenant="acme", limit=1, after="a2")] == ["a1"]
    assert [j.id for j in store.list_jobs()] == ["d1", "b1", "a2", "a1"]
    assert store.list_jobs(JobStatus.RUNNING, tenant="acme") == []
    assert (store.count_queued("acme"), store.count_queued("beta"), store.count_queued("nobody")) == (2, 1, 0)
    store.cancel("a1", T0 + 1)
    assert store.count_queued("acme") == 1
