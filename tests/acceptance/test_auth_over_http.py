"""API keys, scopes and tenants over HTTP (RELIABILITY.md, Auth), with a real API and worker: keys made by
`framequeue keys` before start-up; 401 bodies identical whatever is wrong with the key; a read-only key
cannot submit; another tenant's job answers exactly as a missing one; hostile input keys are refused;
per-tenant rate limit and queued-job quota answer 429 with Retry-After; with no key the API runs open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow


class Keys:
    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.by_name: dict[str, str] = {}

    def create(self, name: str, tenant: str, scope: str) -> str:
        key = self.dep.cli("keys", "create", "--tenant", tenant, "--scope", scope, "--name", name).stdout.strip()
        assert key.startswith("fq_")
        self.by_name[name] = key
        return key


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Keys]]:
    dep = Deployment(tmp_path_factory.mktemp("auth"), lease_s=10, heartbeat_s=1, reap_interval_s=1, drain_s=1,
                     rate_limit_per_s=1, rate_burst=10, max_queued_per_tenant=3)
    keys = Keys(dep)
    keys.create("a-submit", "acme", "submit")
    keys.create("a-read", "acme", "read")
    keys.create("a-admin", "acme", "admin")
    keys.create("b-submit", "beta", "submit")
    keys.create("revoked", "acme", "admin")
    revoked_id = keys.by_name["revoked"].split("_")[1]
    dep.cli("keys", "revoke", revoked_id)
    keys.create("q-submit", "quota", "submit")
    keys.create("r-submit", "rated", "submit")
    keys.create("h-submit", "hostile", "submit")
    try:
        dep.start("api", "api")
        dep.wait_ready()
        dep.start("w1", "worker")
        yield dep, keys
    finally:
        dep.stop()


def http(dep: Deployment, key: str | None = None, header: str = "bearer") -> httpx.Client:
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-Api-Key": key}
    return httpx.Client(base_url=dep.base_url, headers=headers, timeout=30)


def upload(c: httpx.Client, tmp_path: Path, name: str = "in.bin") -> str:
    path = tmp_path / name
    path.write_bytes(b"x" * 16)
    r = c.post("/v1/uploads", params={"filename": name}, content=path.read_bytes(),
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def submit(c: httpx.Client, key: str, **params: Any) -> httpx.Response:
    return c.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": key}, "params": params})


def test_every_unusable_key_gets_the_same_401(secured: tuple[Deployment, Keys]) -> None:
    dep, keys = secured
    good = keys.by_name["a-submit"]
    variants: list[dict[str, str]] = [
        {},  # missing
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},  # malformed: not a bearer token
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Bearer {good[:-1]}{'A' if good[-1] != 'A' else 'B'}"},  # right id, wrong secret
        {"Authorization": "Bearer fq_000000000000_" + "A" * 43},  # unknown id
        {"Authorization": f"Bearer {keys.by_name['revoked']}"},  # revoked
        {"X-Api-Key": "fq_nope"},
    ]
    bodies = set()
    with httpx.Client(base_url=dep.base_url, timeout=30) as c:
        for headers in variants:
            for method, url in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/abc"),
                                ("POST", "/endpoints/x/async-invocations"), ("GET", "/v1/keys")):
                r = c.request(method, url, headers=headers)
                assert r.status_code == 401, (headers, url, r.text)
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert r.json()["code"] == "unauthorized"
                bodies.add(r.content)
        assert len(bodies) == 1
        for open_route in ("/healthz", "/readyz", "/metrics"):
            assert c.get(open_route).status_code == 200


def test_scopes(secured: tuple[Deployment, Keys], tmp_path: Path) -> None:
    dep, keys = secured
    with http(dep, keys.by_name["a-read"]) as reader, http(dep, keys.by_name["a-submit"], "x-api-key") as sub:
        key = upload(sub, tmp_path)
        r = submit(reader, key)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
        assert reader.post("/v1/uploads", content=b"x").status_code == 403
        job = submit(sub, key)
        assert job.status_code == 202, job.text
        assert reader.get(f"/v1/jobs/{job.json()['id']}").status_code == 200  # read sees its tenant's jobs
        assert reader.post(f"/v1/jobs/{job.json()['id']}/cancel").status_code == 403
        assert sub.get("/v1/keys").status_code == 403
        assert sub.get("/v1/endpoints").status_code == 403
        assert sub.get("/v1/model-endpoints").status_code == 403
    with http(dep, keys.by_name["a-admin"]) as admin:
        assert admin.get("/v1/endpoints").status_code == 200
        made = admin.post("/v1/keys", json={"scope": "read", "name": "made-over-http"})
        assert made.status_code == 201 and made.json()["tenant"] == "acme", made.text
        listed = admin.get("/v1/keys").json()["keys"]
        assert {k["tenant"] for k in listed} == {"acme"} and "made-over-http" in {k["name"] for k in listed}
        assert all("key" not in k and "key_hash" not in k for k in listed)
        with http(dep, made.json()["key"]) as fresh:
            assert fresh.get("/v1/jobs").status_code == 200
            assert admin.post(f"/v1/keys/{made.json()['id']}/revoke").status_code == 200
            assert fresh.get("/v1/jobs").status_code == 401
        beta_key_id = keys.by_name["b-submit"].split("_")[1]
        assert admin.post(f"/v1/keys/{beta_key_id}/revoke").status_code == 404  # another tenant's key


def test_another_tenants_job_answers_as_a_missing_one(secured: tuple[Deployment, Keys], tmp_path: Path) -> None:
    dep, keys = secured
    with http(dep, keys.by_name["a-submit"]) as a, http(dep, keys.by_name["b-submit"]) as b:
        key = upload(a, tmp_path)
        job = submit(a, key).json()
        deadline = time.monotonic() + 60
        while (rec := a.get(f"/v1/jobs/{job['id']}").json())["status"] != "succeeded":
            assert time.monotonic() < deadline, rec
            time.sleep(0.2)
        assert rec["outputs"], rec
        output = next(iter(rec["outputs"]))
        assert a.get(f"/v1/jobs/{job['id']}/outputs/{output}").status_code == 200
        missing = "0123456789abcdef0123456789abcdef"
        for method, path in (("GET", "/v1/jobs/{}"), ("POST", "/v1/jobs/{}/cancel"),
                             ("GET", "/v1/jobs/{}/outputs/" + output)):
            theirs = b.request(method, path.format(job["id"]))
            absent = b.request(method, path.format(missing))
            assert theirs.status_code == absent.status_code == 404, (theirs.text, absent.text)
            assert theirs.json()["code"] == "job_not_found"
            assert theirs.content == absent.content
        assert job["id"] not in {j["id"] for j in b.get("/v1/jobs").json()["jobs"]}
        assert job["id"] in {j["id"] for j in a.get("/v1/jobs").json()["jobs"]}
        # A's upload is not B's input: answered as a missing object
        r = submit(b, key)
        assert r.status_code == 422 and r.json()["code"] == "input_not_found", r.text
        assert key.startswith("uploads/acme/")
        # one tenant's Idempotency-Key is not another's
        ka, kb = upload(a, tmp_path, "a.bin"), upload(b, tmp_path, "b.bin")
        ra = a.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": ka}}, headers={"Idempotency-Key": "k1"})
        rb = b.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": kb}}, headers={"Idempotency-Key": "k1"})
        assert ra.status_code == rb.status_code == 202 and ra.json()["id"] != rb.json()["id"], (ra.text, rb.text)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "uploads/acme/../../../etc/passwd", "/etc/passwd",
                                 "uploads/acme/a\x00b", "uploads/acme/" + "a" * 5000])
def test_hostile_input_keys_are_refused(secured: tuple[Deployment, Keys], bad: str) -> None:
    dep, keys = secured
    with http(dep, keys.by_name["h-submit"]) as h:
        r = submit(h, bad)
        assert r.status_code == 422 and r.json()["code"] == "invalid_key", r.text


def test_rate_limit_answers_429_with_retry_after(secured: tuple[Deployment, Keys], tmp_path: Path) -> None:
    dep, keys = secured
    with http(dep, keys.by_name["r-submit"]) as r, http(dep, keys.by_name["b-submit"]) as other:
        answers = [r.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": "uploads/rated/none"}})
                   for _ in range(14)]
        codes = [a.status_code for a in answers]
        assert codes[:10] == [422] * 10 and 429 in codes[10:], codes  # a burst of 10, then 1/s
        limited = next(a for a in answers if a.status_code == 429)
        assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert other.get("/v1/jobs").status_code == 200  # reads are not limited, other tenants unaffected


def test_queued_job_quota_answers_429(secured: tuple[Deployment, Keys], tmp_path: Path) -> None:
    dep, keys = secured
    with http(dep, keys.by_name["q-submit"]) as q:
        key = upload(q, tmp_path)
        dep.signal("w1", 19)  # SIGSTOP the worker: jobs stay queued
        try:
            ids = []
            for _ in range(3):
                time.sleep(1.1)  # under the rate limit
                r = submit(q, key)
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            time.sleep(1.1)
            over = submit(q, key)
            assert over.status_code == 429 and over.json()["code"] == "quota_exceeded", over.text
            assert int(over.headers["retry-after"]) >= 1
            assert q.post(f"/v1/jobs/{ids[0]}/cancel").status_code == 202
            time.sleep(1.1)
            assert submit(q, key).status_code == 202
        finally:
            dep.signal("w1", 18)  # SIGCONT


def test_no_key_means_an_open_api_and_a_warning(tmp_path: Path) -> None:
    dep = Deployment(tmp_path)
    try:
        dep.start("api", "api")
        dep.wait_ready()
        with http(dep) as c:
            key = upload(c, tmp_path)
            assert key.startswith("uploads/default/")
            r = submit(c, key)
            assert r.status_code == 202, r.text
            assert c.get(f"/v1/jobs/{r.json()['id']}").status_code == 200
        log = dep.log("api")
        assert "WARNING" in log and "the API is OPEN" in log and "framequeue keys create" in log, log
        # the first key ends development mode, without a restart
        dep.cli("keys", "create", "--tenant", "t1", "--scope", "read")
        time.sleep(1.5)
        with http(dep) as c:
            assert c.get("/v1/jobs").status_code == 401
    finally:
        dep.stop()


def test_auth_required_with_no_key(tmp_path: Path) -> None:
    dep = Deployment(tmp_path, auth="required")
    try:
        dep.start("api", "api")
        dep.wait_ready()
        with http(dep) as c:
            assert c.get("/v1/jobs").status_code == 401
        assert "the API is OPEN" not in dep.log("api")
    finally:
        dep.stop()


def test_deliveries_and_replay_are_tenant_scoped(secured: tuple[Deployment, Keys], tmp_path: Path) -> None:
    dep, keys = secured
    with http(dep, keys.by_name["a-submit"]) as a, http(dep, keys.by_name["b-submit"]) as b, \
            http(dep, keys.by_name["a-read"]) as reader:
        key = upload(a, tmp_path)
        # nothing listens on port 9: the event stays pending, retried
        r = a.post("/v1/jobs", json={"pipeline": "noop", "input": {"key": key},
                                     "webhook": {"url": "http://127.0.0.1:9/hook"}})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        event_id = f"evt_{job_id}_succeeded"
        deadline = time.monotonic() + 60
        while not (listed := a.get(f"/v1/jobs/{job_id}/deliveries").json()["deliveries"]):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert [d["id"] for d in listed] == [event_id]
        assert reader.get(f"/v1/jobs/{job_id}/deliveries").status_code == 200
        assert reader.post(f"/v1/deliveries/{event_id}/replay").status_code == 403  # needs submit
        theirs, absent = b.get(f"/v1/jobs/{job_id}/deliveries"), b.get("/v1/jobs/0123456789abcdef/deliveries")
        assert theirs.status_code == absent.status_code == 404 and theirs.content == absent.content
        theirs, absent = b.post(f"/v1/deliveries/{event_id}/replay"), b.post("/v1/deliveries/evt_nope/replay")
        assert theirs.status_code == absent.status_code == 404 and theirs.content == absent.content
        assert a.post(f"/v1/deliveries/{event_id}/replay").status_code == 202
        assert b.get("/v1/webhooks/disabled").status_code == 403  # admin only
