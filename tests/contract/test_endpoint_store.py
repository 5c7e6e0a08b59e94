"""Async endpoints and the jobs invoked through them, in every job store."""

from __future__ import annotations

import json

import pytest

from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.errors import EndpointExists, EndpointNotFound
from framequeue.jobs import JobStatus
from framequeue.jobstore import JobStore
from tests.contract.conftest import LEASE_S, T0, new_job


def _endpoint(name: str = "dashcam-detect", **kw: object) -> Endpoint:
    fields: dict[str, object] = {
        "name": name, "pipeline": "detect", "output_path": "s3://out/results", "failure_path": "s3://out/failures",
        "params": {"sample_fps": 5}, "success_webhook": "https://hooks.example.com/ok",
        "error_webhook": "https://hooks.example.com/err", "webhook_secret": "whsec_c2VjcmV0",
        "max_concurrent_invocations": 2, "created_at_s": T0,
    }
    fields.update(kw)
    return Endpoint(**fields)  # type: ignore[arg-type]


def test_endpoints_are_created_read_listed_and_deleted(store: JobStore) -> None:
    store.create_endpoint(_endpoint("b-endpoint"))
    store.create_endpoint(_endpoint("a-endpoint", failure_path=None, success_webhook=None))
    assert store.get_endpoint("b-endpoint", "default") == _endpoint("b-endpoint")
    assert [e.name for e in store.list_endpoints("default")] == ["a-endpoint", "b-endpoint"]
    assert store.get_endpoint("a-endpoint", "default").failure_path is None
    with pytest.raises(EndpointExists):
        store.create_endpoint(_endpoint("b-endpoint", pipeline="noop"))
    assert store.get_endpoint("b-endpoint", "default").pipeline == "detect"
    store.delete_endpoint("b-endpoint", "default")
    with pytest.raises(EndpointNotFound):
        store.get_endpoint("b-endpoint", "default")
    with pytest.raises(EndpointNotFound):
        store.delete_endpoint("b-endpoint", "default")


def test_a_job_keeps_its_endpoint_and_delivery_locations(store: JobStore) -> None:
    job, _ = store.create(new_job("j1", endpoint="dashcam-detect", output_uri="s3://out/results/i1.out",
                                  failure_uri="s3://out/failures/i1-error.out"))
    again = store.get("j1")
    assert (again.endpoint, again.output_uri, again.failure_uri) == (
        "dashcam-detect", "s3://out/results/i1.out", "s3://out/failures/i1-error.out")
    assert job == again


@pytest.mark.parametrize("outcome", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_the_terminal_event_goes_to_the_error_hook_unless_the_job_succeeded(
    store: JobStore, outcome: JobStatus
) -> None:
    store.create(new_job("j1", webhook_url="https://hooks.example.com/ok", webhook_secret="whsec_c2VjcmV0",
                         error_webhook_url="https://hooks.example.com/err"))
    claimed = store.claim("j1", "w1", LEASE_S, T0 + 1)
    assert claimed is not None
    store.finish("j1", claimed.lease_token, outcome, T0 + 2)
    events = store.due_events(T0 + 3, 10)
    assert len(events) == 1
    wanted = "ok" if outcome is JobStatus.SUCCEEDED else "err"
    assert events[0].url == f"https://hooks.example.com/{wanted}"
    assert json.loads(events[0].payload)["type"] == f"job.{outcome.value}"


def test_an_endpoint_is_its_tenants_alone(store: JobStore) -> None:
    store.create_endpoint(_endpoint("cam-a", tenant="tenant-a"))
    assert store.get_endpoint("cam-a", "tenant-a").tenant == "tenant-a"
    assert store.list_endpoints("tenant-b") == []
    with pytest.raises(EndpointNotFound) as other:
        store.get_endpoint("cam-a", "tenant-b")
    with pytest.raises(EndpointNotFound) as missing:
        store.get_endpoint("cam-z", "tenant-b")
    assert str(other.value).replace("cam-a", "X") == str(missing.value).replace("cam-z", "X")
    with pytest.raises(EndpointNotFound):
        store.delete_endpoint("cam-a", "tenant-b")
    assert [e.name for e in store.list_endpoints("tenant-a")] == ["cam-a"]
