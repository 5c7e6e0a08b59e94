"""The OpenAPI document describes the API as it behaves: it validates, every route names its answer and its
error statuses (one problem+json shape), the API-key schemes are declared on the routes that take a key, no
route advertises FastAPI's 422 (a request failing validation answers 400), and the record models match what
framequeue.jobs and the services produce."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from framequeue.api.app import create_app
from framequeue.config import Settings
from framequeue.jobs import Attempt, Job, JobError, JobProgress, JobStatus, Outcome, job_record
from framequeue.records import (
    AttemptRecord,
    ErrorInfo,
    JobRecord,
    JobStatusName,
    OutcomeName,
    Progress,
    ScopeName,
)
from framequeue.tenants.auth import SCOPES

PROBLEM = "#/components/schemas/ErrorResponse"
#: routes anyone may call
PUBLIC = {("get", "/healthz"), ("get", "/readyz")}
SAGEMAKER = ("post", "/endpoints/{endpoint_name}/async-invocations")
#: (method, path) -> the model its JSON body must reference
BODIES = {
    ("post", "/v1/jobs"): "JobIn",
    ("post", "/v1/endpoints"): "EndpointIn",
    ("post", "/v1/model-endpoints"): "ModelEndpointIn",
    ("patch", "/v1/model-endpoints/{endpoint_id}"): "ModelEndpointPatch",
    ("post", "/v1/keys"): "KeyIn",
    ("post", "/v1/webhooks/enable"): "EnableIn",
}


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home: Path = tmp_path_factory.mktemp("home")
    app = create_app(Settings(home=home, storage_url="memory://openapi", broker_url="memory://openapi"),
                     background=False)
    return app.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert len(operations(doc)) >= 29


def test_every_route_names_its_successful_answer(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert ok, f"{method} {path} documents no success"
        for status, response in ok.items():
            if status == "204":
                assert "content" not in response, f"{method} {path}: a 204 has no body"
                continue
            content = response.get("content")
            assert content, f"{method} {path} {status}: no body schema"
            for media_type, body in content.items():
                schema = body["schema"]
                if media_type == "application/json":
                    assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path, schema)
                else:
                    assert schema == {"type": "string", "format": "binary"}, (method, path, media_type)


def test_errors_are_one_problem_shape_with_each_routes_real_statuses(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        errors = {int(s): r for s, r in op["responses"].items() if int(s) >= 400}
        if (method, path) == SAGEMAKER:  # botocore's error shapes, but 401/403/429 come from the auth layer
            assert {s: r["content"]["application/json"]["schema"]["$ref"] for s, r in errors.items()
                    if s in (400, 500, 503)} == dict.fromkeys((400, 500, 503), "#/components/schemas/SageMakerError")
            assert all("x-amzn-ErrorType" in errors[s]["headers"] for s in (400, 500, 503))
            errors = {s: r for s, r in errors.items() if s in (401, 403, 429)}
        for status, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            assert response["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM}
        if (method, path) not in PUBLIC:
            assert {401, 403} <= set(errors), f"{method} {path}: a route behind a key answers 401 and 403"
    problem = doc["components"]["schemas"]["ErrorResponse"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail"}


def test_statuses_follow_what_each_route_can_answer(doc: dict[str, Any]) -> None:
    statuses = {(m, p): set(op["responses"]) for m, p, op in operations(doc)}
    assert {"200", "202", "400", "413", "415", "422", "429"} <= statuses[("post", "/v1/jobs")]
    assert "404" in statuses[("get", "/v1/jobs/{job_id}")]
    assert {"206", "304", "416"} <= statuses[("get", "/v1/jobs/{job_id}/outputs/{name}")]
    assert {"204", "429"} <= statuses[("get", "/v1/jobs/{job_id}/events")]
    assert "409" in statuses[("post", "/v1/endpoints")]
    assert "413" in statuses[("post", "/v1/uploads")]
    assert statuses[("get", "/healthz")] == {"200"}
    assert statuses[("get", "/readyz")] == {"200", "503"}


def test_no_fastapi_422_is_advertised_and_validation_failures_document_400(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        unprocessable = op["responses"].get("422")
        if unprocessable is not None:
            assert unprocessable["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM}
        validated = [p for p in op.get("parameters", []) if p["in"] == "query" and p["schema"].get("type") not in
                     (None, "string") and "anyOf" not in p["schema"]]
        if validated or (method, path) in BODIES:
            assert "400" in op["responses"], f"{method} {path} can fail validation: 400 must be documented"


def test_request_bodies_are_declared(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for (method, path), model in BODIES.items():
        body = paths[path][method]["requestBody"]
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert model in doc["components"]["schemas"]
    job_in = doc["components"]["schemas"]["JobIn"]
    assert {"pipeline", "input"} <= set(job_in["required"])
    assert job_in["additionalProperties"] is False  # unknown fields answer 400
    upload = paths["/v1/uploads"]["post"]["requestBody"]["content"]
    assert upload == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def test_the_api_key_schemes_are_declared_on_every_route_that_takes_a_key(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "fq_…",
                                 "description": schemes["bearer"]["description"]}
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == (
        "apiKey", "header", "X-Api-Key")
    for method, path, op in operations(doc):
        if (method, path) in PUBLIC:
            assert "security" not in op, f"{method} {path} needs no key"
        else:
            assert op["security"] == [{"bearer": []}, {"apiKey": []}], f"{method} {path}: either scheme"


def test_the_sagemaker_route_documents_its_headers(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/endpoints/{endpoint_name}/async-invocations"]["post"]
    headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
    assert {"X-Amzn-SageMaker-InputLocation", "X-Amzn-SageMaker-Inference-Id"} <= headers
    assert op["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InvokeAccepted"}


def test_the_record_models_name_the_enums_values() -> None:
    assert set(typing.get_args(JobStatusName)) == {s.value for s in JobStatus}
    assert set(typing.get_args(OutcomeName)) == {o.value for o in Outcome}
    assert set(typing.get_args(ScopeName)) == set(SCOPES)


def test_job_record_has_exactly_the_documented_fields() -> None:
    job = Job(
        id="job_1", pipeline="detect", pipeline_version="1", input_key="uploads/a.mp4", params={"conf": 0.5},
        status=JobStatus.FAILED, created_at_s=1.0, updated_at_s=2.0, expires_at_s=3.0, timeout_s=60.0,
        max_attempts=3, attempts=1, started_at_s=1.5, finished_at_s=2.0, error=JobError("media_error", "bad"),
        progress=JobProgress(3, 10, 2.0, 3.5), webhook_url="https://example.test/hook",
        attempt_history=(Attempt(1, "w1", 1.5, 2.0, Outcome.FAILED, JobError("media_error", "bad")),),
        events=[{"type": "tailgating", "start_s": 1.0, "end_s": 2.0, "duration_s": 1.0, "min_ttc_s": 0.8}],
    )
    record = {**job_record(job, output_location="file:///o", failure_location="file:///f"), "output_urls": {}}
    assert set(record) == set(JobRecord.model_fields)
    assert set(record["progress"]) == set(Progress.model_fields)
    assert set(record["attempt_history"][0]) == set(AttemptRecord.model_fields)
    assert set(record["error"]) == set(ErrorInfo.model_fields)
    parsed = JobRecord.model_validate(record)
    assert parsed.model_dump(mode="json") == record  # nothing lost or reshaped, the event's own fields included
