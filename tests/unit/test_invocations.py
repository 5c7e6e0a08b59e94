"""Invoking an async endpoint, below HTTP: validation, where the answer and the failure document go, and
the job that carries them (SQLite job store, in-memory queue and objects)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from framequeue.config import Settings
from framequeue.endpoints.async_endpoints import Endpoint
from framequeue.endpoints.invocations import Invocations, InvokeRequest
from framequeue.errors import EndpointNotFound, InputNotFound, InvalidKey, InvalidParams, PayloadTooLarge
from framequeue.runtime import Runtime, open_runtime


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    name = uuid.uuid4().hex
    settings = Settings(home=tmp_path, storage_url=f"memory://{name}", broker_url=f"memory://{name}",
                        max_upload_bytes=1000).resolved()
    runtime = open_runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def inv(rt: Runtime) -> Invocations:
    # a memory:// deployment reaches no s3:// location: the endpoint writes under its own store's root
    root = rt.objects.url("k")[:-1]
    invocations = Invocations(rt.service)
    rt.store.create_endpoint(Endpoint(name="noop-ep", pipeline="noop", output_path=f"{root}answers",
                                      failure_path=f"{root}failures"))
    rt.objects.put("inputs/small.bin", b"x" * 10)
    return invocations


def test_an_invocation_is_a_job_with_its_delivery_locations(rt: Runtime, inv: Invocations) -> None:
    root = rt.objects.url("k")[:-1]
    done = inv.invoke(InvokeRequest("noop-ep", input_location=f"{root}inputs/small.bin", inference_id="id-1",
                                    custom_attributes="a=1", output_path_extension="day/1"))
    assert done.inference_id == "id-1"
    assert done.output_location == f"{root}answers/day/1/id-1.out"
    assert done.failure_location == f"{root}failures/day/1/id-1-error.out"
    job = rt.store.get(done.job["id"])
    assert (job.endpoint, job.input_key) == ("noop-ep", "inputs/small.bin")
    assert job.attributes == {"inference_id": "id-1", "custom_attributes": "a=1"}
    named = inv.invoke(InvokeRequest("noop-ep", body=b"inline", filename="result.json"))
    assert named.output_location == f"{root}answers/result.json"
    assert named.failure_location == f"{root}failures/result.json-error.out"
    assert rt.objects.get(rt.store.get(named.job["id"]).input_key) == b"inline"
    generated = inv.invoke(InvokeRequest("noop-ep", body=b"x", inference_id="has:colon"))
    assert generated.output_location.endswith(".out") and "has:colon" not in generated.output_location


@pytest.mark.parametrize(("req", "error", "words"), [
    (InvokeRequest("missing", body=b"x"), EndpointNotFound, "missing"),
    (InvokeRequest("noop-ep"), InvalidParams, "exactly one"),
    (InvokeRequest("noop-ep", input_location="s3://b/k", body=b"x"), InvalidParams, "exactly one"),
    (InvokeRequest("noop-ep", body=b"x", ttl_s=59), InvalidParams, "RequestTTLSeconds"),
    (InvokeRequest("noop-ep", body=b"x", timeout_s=3601), InvalidParams, "InvocationTimeoutSeconds"),
    (InvokeRequest("noop-ep", body=b"x", inference_id="x" * 65), InvalidParams, "InferenceId"),
    (InvokeRequest("noop-ep", body=b"x", custom_attributes="\u00e9"), InvalidParams, "CustomAttributes"),
    (InvokeRequest("noop-ep", body=b"x", filename="../up"), InvalidParams, "Filename"),
    (InvokeRequest("noop-ep", body=b"x", output_path_extension="a/../b"), InvalidParams, "S3OutputPathExtension"),
    (InvokeRequest("noop-ep", body=b"x" * 128_001), PayloadTooLarge, "128000"),
    (InvokeRequest("noop-ep", input_location="s3://bucket/key"), InvalidParams, "not S3"),
    (InvokeRequest("noop-ep", input_location="file:///etc/passwd"), InvalidParams, "not an S3 URI"),
])
def test_bad_invocations_are_refused_with_the_field_named(
    inv: Invocations, req: InvokeRequest, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(")):
        inv.invoke(req)


def test_an_input_over_the_size_limit_is_refused_with_413(rt: Runtime, inv: Invocations) -> None:
    root = rt.objects.url("k")[:-1]
    rt.objects.put("inputs/big.bin", b"x" * 1001)
    with pytest.raises(PayloadTooLarge, match="FQ_MAX_UPLOAD_BYTES"):
        inv.invoke(InvokeRequest("noop-ep", input_location=f"{root}inputs/big.bin"))
    with pytest.raises(InputNotFound):
        inv.invoke(InvokeRequest("noop-ep", input_location=f"{root}inputs/none.bin"))
    with pytest.raises(InvalidKey):
        inv.invoke(InvokeRequest("noop-ep", input_location=f"{root}inputs/../../etc/passwd"))


def test_endpoints_are_checked_when_created(rt: Runtime, inv: Invocations) -> None:
    good = {"pipeline": "noop", "output_path": "s3://bucket/out"}
    for kw, words in ((dict(name="bad_name"), "name"), (dict(name="ok", output_path="https://x/y"), "output_path"),
                      (dict(name="ok", max_concurrent_invocations=0), "max_concurrent_invocations"),
                      (dict(name="ok", params={"nope": 1}), "nope"),
                      (dict(name="ok"), "not S3")):
        with pytest.raises(InvalidParams, match=words):
            inv.create_endpoint(Endpoint(**{**good, **kw}))  # type: ignore[arg-type]
    assert [e["name"] for e in inv.list_endpoints()["endpoints"]] == ["noop-ep"]


def test_an_endpoint_is_seen_managed_and_invoked_by_its_own_tenant_only(rt: Runtime, inv: Invocations) -> None:
    from framequeue.tenants.auth import Principal

    alice, bob = Principal("alice", "admin", "k1"), Principal("bob", "admin", "k2")
    root = rt.objects.url("k")[:-1]
    rt.store.create_endpoint(Endpoint(name="alice-ep", pipeline="noop", output_path=f"{root}answers",
                                      tenant="alice"))
    assert [e["name"] for e in inv.list_endpoints(alice)["endpoints"]] == ["alice-ep"]
    assert inv.list_endpoints(bob)["endpoints"] == []
    with pytest.raises(EndpointNotFound):
        inv.get_endpoint("alice-ep", bob)
    with pytest.raises(EndpointNotFound):
        inv.invoke(InvokeRequest("alice-ep", body=b"x"), bob)
    with pytest.raises(EndpointNotFound):
        inv.delete_endpoint("alice-ep", bob)
    done = inv.invoke(InvokeRequest("alice-ep", body=b"x"), Principal("alice", "submit", "k3"))
    assert rt.store.get(done.job["id"]).endpoint == "alice-ep"
    inv.delete_endpoint("alice-ep", alice)
    assert inv.list_endpoints(alice)["endpoints"] == []
