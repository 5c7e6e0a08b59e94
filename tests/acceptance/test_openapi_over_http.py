"""A running `framequeue up` describes itself truthfully: /openapi.json validates, the answers and errors of
real calls (a job's record after it ran, with its attempt history and output URLs) match the schemas the
document gives them, with no field left undocumented; and /docs and /redoc load every asset from the API
itself, not a CDN."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from framequeue.api.apidocs import STATIC_DIR
from tests.acceptance.deployment import Deployment
from tests.conftest import SHARED_DIR, require_shared
from tests.mediagen import make_video

pytestmark = pytest.mark.slow

YOLOX = SHARED_DIR / "models" / "yolox_nano"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(tmp_path_factory.mktemp("openapi"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    if YOLOX.exists():
        dep.register_yolox(YOLOX)
    dep.start("up", "up", "--workers", "1")
    dep.wait_ready()
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
def http(deployment: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployment.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def doc(http: httpx.Client) -> dict[str, Any]:
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def answer_schema(doc: dict[str, Any], method: str, path: str, status: int, media_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method]["responses"][str(status)]["content"][media_type]["schema"]
    return schema


def check(doc: dict[str, Any], method: str, path: str, answer: httpx.Response) -> None:
    """The answer's status is documented for the route, its body validates against that status's schema,
    and it carries no field the schema does not name."""
    media_type = answer.headers["content-type"].split(";")[0]
    schema = answer_schema(doc, method, path, answer.status_code, media_type)
    body = answer.json()
    Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
    assert undocumented(body, schema, doc["components"]["schemas"]) == [], (method, path, body)


def undocumented(value: Any, schema: dict[str, Any], schemas: dict[str, Any], at: str = "") -> list[str]:
    if "$ref" in schema:
        return undocumented(value, schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas, at)
    if "anyOf" in schema:
        if value is None:
            return []
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return min((undocumented(value, s, schemas, at) for s in options), key=len)
    if isinstance(value, dict) and "properties" in schema:
        extra = [] if schema.get("additionalProperties") else [f"{at}.{k}" for k in value if k not in
                                                               schema["properties"]]
        return extra + [p for k, v in value.items() if k in schema["properties"]
                        for p in undocumented(v, schema["properties"][k], schemas, f"{at}.{k}")]
    if isinstance(value, list) and "items" in schema:
        return [p for i, v in enumerate(value) for p in undocumented(v, schema["items"], schemas, f"{at}[{i}]")]
    return []


def test_the_served_document_validates(doc: dict[str, Any]) -> None:
    validate(doc)
    assert "/v1/jobs" in doc["paths"] and "securitySchemes" in doc["components"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_api(http: httpx.Client, page: str) -> None:
    html = http.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href|url|spec-url)\s*[=:]\s*['"]([^'"]+)['"]""", html.text)
    assert "/openapi.json" in urls
    assert not [u for u in urls if "//" in u], f"{page} loads from elsewhere: {urls}"
    assets = [u for u in urls if u.startswith("/docs/assets/")]
    assert len(assets) >= (3 if page == "/docs" else 2)
    for url in assets:
        asset = http.get(url)
        assert asset.status_code == 200, url
        assert asset.content == (STATIC_DIR / url.removeprefix("/docs/assets/")).read_bytes(), url
    assert http.get("/docs/assets/swagger-ui/LICENSE").status_code == 200
    assert http.get("/docs/assets/redoc/LICENSE").status_code == 200


def test_errors_answer_the_documented_problem_shape(http: httpx.Client, doc: dict[str, Any]) -> None:
    missing = http.get("/v1/jobs/job_nope")
    assert missing.status_code == 404
    check(doc, "get", "/v1/jobs/{job_id}", missing)
    bad_body = http.post("/v1/jobs", json={"pipeline": "detect", "input": {"key": "x"}, "colour": "red"})
    assert bad_body.status_code == 400
    check(doc, "post", "/v1/jobs", bad_body)
    bad_query = http.get("/v1/jobs", params={"limit": "many"})
    assert bad_query.status_code == 400  # a validation failure is never FastAPI's 422
    check(doc, "get", "/v1/jobs", bad_query)
    unknown = http.post("/v1/jobs", json={"pipeline": "no-such-pipeline", "input": {"key": "x"}})
    assert unknown.status_code == 422
    check(doc, "post", "/v1/jobs", unknown)
    wrong_type = http.post("/v1/jobs", content=b"pipeline=detect", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415
    check(doc, "post", "/v1/jobs", wrong_type)


def test_a_finished_jobs_answers_match_their_schemas(
    deployment: Deployment, http: httpx.Client, doc: dict[str, Any], tmp_path: Path
) -> None:
    require_shared("models", "yolox_nano")
    clip = make_video(tmp_path / "clip.mp4", frames=12)
    upload = http.post("/v1/uploads", params={"filename": "clip.mp4"}, content=clip.read_bytes())
    assert upload.status_code == 201
    check(doc, "post", "/v1/uploads", upload)
    submitted = http.post("/v1/jobs", json={"pipeline": "detect", "input": {"key": upload.json()["key"]},
                                            "attributes": {"case": "openapi"}})
    assert submitted.status_code == 202
    check(doc, "post", "/v1/jobs", submitted)
    job_id = submitted.json()["id"]
    record = deployment.wait_done(job_id)
    assert record["status"] == "succeeded", record
    done = http.get(f"/v1/jobs/{job_id}")
    check(doc, "get", "/v1/jobs/{job_id}", done)
    assert done.json()["attempt_history"] and done.json()["output_urls"]
    for method, path, url in [
        ("get", "/v1/jobs", "/v1/jobs"),
        ("get", "/v1/jobs/{job_id}/deliveries", f"/v1/jobs/{job_id}/deliveries"),
        ("get", "/v1/queue", "/v1/queue"),
        ("get", "/v1/pipelines", "/v1/pipelines"),
        ("get", "/v1/models", "/v1/models"),
        ("get", "/v1/endpoints", "/v1/endpoints"),
        ("get", "/v1/model-endpoints", "/v1/model-endpoints"),
        ("get", "/v1/webhooks/disabled", "/v1/webhooks/disabled"),
        ("get", "/readyz", "/readyz"),
    ]:
        answer = http.get(url)
        assert answer.status_code == 200, (url, answer.text)
        check(doc, method, path, answer)
    cancelled = http.post(f"/v1/jobs/{job_id}/cancel")  # an ended job answers as it is
    assert cancelled.status_code == 202
    check(doc, "post", "/v1/jobs/{job_id}/cancel", cancelled)


def test_keys_answer_their_schemas_and_both_schemes_authenticate(
    http: httpx.Client, doc: dict[str, Any]
) -> None:
    """Last in the module: the first key ends the open development mode."""
    created = http.post("/v1/keys", json={"scope": "admin", "name": "openapi"})
    assert created.status_code == 201
    check(doc, "post", "/v1/keys", created)
    key = created.json()["key"]
    deadline = time.monotonic() + 10  # an open API sees the first key within a second (api.auth)
    while (anonymous := http.get("/v1/keys")).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert anonymous.status_code == 401
    check(doc, "get", "/v1/keys", anonymous)
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-Api-Key": key}):
        listed = http.get("/v1/keys", headers=headers)
        assert listed.status_code == 200
        check(doc, "get", "/v1/keys", listed)
