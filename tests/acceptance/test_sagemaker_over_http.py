"""boto3's own sagemaker-runtime client, pointed at framequeue with endpoint_url=, invokes an async
endpoint on real video; inputs and outputs live on a real S3-protocol server (moto, its own process)
that framequeue reaches through its s3:// object store."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import s3server
from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, str]]:
    """(endpoint URL, boto3 S3 client, a fresh bucket-name suffix)."""
    s3server.require_s3()
    url = s3server.endpoint()
    client = boto3.client("s3", endpoint_url=url, region_name=s3server.REGION,
                          aws_access_key_id=s3server.ACCESS_KEY, aws_secret_access_key=s3server.SECRET_KEY)
    suffix = uuid.uuid4().hex[:8]
    for bucket in (f"fq-in-{suffix}", f"fq-out-{suffix}"):
        client.create_bucket(Bucket=bucket)
    yield url, client, suffix


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, s3: tuple[str, Any, str]) -> Iterator[Deployment]:
    """`framequeue api` with s3:// storage; workers are started by the tests that need them."""
    url, _, suffix = s3
    storage = (f"s3://{s3server.ACCESS_KEY}:{s3server.SECRET_KEY}@{s3server.BUCKET}/fq-{suffix}"
               f"?endpoint={url}&region={s3server.REGION}")
    dep = Deployment(tmp_path_factory.mktemp("sagemaker"), storage_url=storage, lease_s=10, heartbeat_s=2,
                     reap_interval_s=1, drain_s=2)
    dep.register_yolox(require_shared("models", "yolox_nano"))
    dep.start("api", "api")
    dep.wait_ready()
    dep.client.create_endpoint({
        "name": "dashcam-detect", "pipeline": "detect", "params": {"sample_fps": 5},
        "output_path": f"s3://fq-out-{suffix}/results", "failure_path": f"s3://fq-out-{suffix}/failures",
    })
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
def runtime(deployment: Deployment, s3: tuple[str, Any, str]) -> Any:
    return boto3.client("sagemaker-runtime", endpoint_url=deployment.base_url, region_name=s3server.REGION,
                        aws_access_key_id=s3server.ACCESS_KEY, aws_secret_access_key=s3server.SECRET_KEY)


@pytest.fixture(scope="module")
def worker(deployment: Deployment) -> Deployment:
    if "w1" not in deployment.procs:
        deployment.start("w1", "worker")
    return deployment


def _object(client: Any, uri: str, timeout_s: float = 120) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _absent(client: Any, uri: str) -> bool:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] in ("404", "NoSuchKey"))
    return False


def test_a_request_queued_past_its_ttl_ends_expired_with_a_failure_document(
    deployment: Deployment, runtime: Any, s3: tuple[str, Any, str], tmp_path: Path
) -> None:
    # no worker runs yet: the request waits in the queue past RequestTTLSeconds
    _, client, suffix = s3
    client.put_object(Bucket=f"fq-in-{suffix}", Key="clips/late.mp4", Body=b"\x00" * 100)
    reply = runtime.invoke_endpoint_async(EndpointName="dashcam-detect", InputLocation=f"s3://fq-in-{suffix}/clips/late.mp4",
                                          InferenceId="late-1", RequestTTLSeconds=60)  # SageMaker's minimum
    time.sleep(55)
    assert _absent(client, reply["FailureLocation"])
    failure = json.loads(_object(client, reply["FailureLocation"], timeout_s=30))
    assert failure["type"] == "job.expired"
    assert failure["data"]["error"]["code"] == "expired"
    assert failure["data"]["attributes"]["inference_id"] == "late-1"
    assert _absent(client, reply["OutputLocation"])


def test_boto3_invoke_endpoint_async_on_real_video_writes_the_output_location(
    worker: Deployment, runtime: Any, s3: tuple[str, Any, str], dashcam_video: Path
) -> None:
    _, client, suffix = s3
    client.upload_file(str(dashcam_video), f"fq-in-{suffix}", "clips/dashcam.mp4")
    reply = runtime.invoke_endpoint_async(
        EndpointName="dashcam-detect", InputLocation=f"s3://fq-in-{suffix}/clips/dashcam.mp4",
        InferenceId="dashcam-001", RequestTTLSeconds=600, InvocationTimeoutSeconds=900,
        CustomAttributes="trace=abc-123", ContentType="video/mp4",
    )
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert reply["InferenceId"] == "dashcam-001"
    assert reply["OutputLocation"] == f"s3://fq-out-{suffix}/results/dashcam-001.out"
    assert reply["FailureLocation"] == f"s3://fq-out-{suffix}/failures/dashcam-001-error.out"
    detections = json.loads(_object(client, reply["OutputLocation"], timeout_s=180))
    assert len(detections["frames"]) > 40  # 8.8 s sampled at 5 fps
    busiest = max(detections["frames"], key=lambda f: len(f["detections"]))
    assert sum(d["class"] == "car" for d in busiest["detections"]) >= 2
    assert _absent(client, reply["FailureLocation"])
    job = next(j for j in worker.client.jobs(status="succeeded")["jobs"]
               if j["attributes"].get("inference_id") == "dashcam-001")
    assert job["endpoint"] == "dashcam-detect" and job["output_location"] == reply["OutputLocation"]
    assert job["attributes"]["custom_attributes"] == "trace=abc-123"


def test_bad_media_writes_the_failure_location_and_no_output(
    worker: Deployment, runtime: Any, s3: tuple[str, Any, str]
) -> None:
    _, client, suffix = s3
    client.put_object(Bucket=f"fq-in-{suffix}", Key="clips/random.mp4", Body=bytes(range(256)) * 64)
    reply = runtime.invoke_endpoint_async(EndpointName="dashcam-detect",
                                          InputLocation=f"s3://fq-in-{suffix}/clips/random.mp4")
    assert len(reply["InferenceId"]) == 36  # generated, as SageMaker does
    failure = json.loads(_object(client, reply["FailureLocation"], timeout_s=60))
    assert failure["type"] == "job.failed" and failure["data"]["error"]["code"] == "unsupported_media"
    assert _absent(client, reply["OutputLocation"])


def test_running_past_the_invocation_timeout_fails_the_request(
    worker: Deployment, runtime: Any, s3: tuple[str, Any, str], dashcam_video: Path
) -> None:
    _, client, suffix = s3
    client.upload_file(str(dashcam_video), f"fq-in-{suffix}", "clips/slow.mp4")
    reply = runtime.invoke_endpoint_async(EndpointName="dashcam-detect",
                                          InputLocation=f"s3://fq-in-{suffix}/clips/slow.mp4",
                                          InvocationTimeoutSeconds=1)
    failure = json.loads(_object(client, reply["FailureLocation"], timeout_s=60))
    assert failure["type"] == "job.failed" and failure["data"]["error"]["code"] == "timeout"
    assert _absent(client, reply["OutputLocation"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"EndpointName": "no-such-endpoint", "InputLocation": "s3://b/k"}, "Endpoint no-such-endpoint not found."),
    ({"EndpointName": "dashcam-detect", "InputLocation": "file:///etc/passwd"}, "not an S3 URI"),
    ({"EndpointName": "dashcam-detect", "InputLocation": "s3://fq-nowhere/none.mp4"}, "no object"),
    ({"EndpointName": "dashcam-detect", "InputLocation": "s3://b/k", "RequestTTLSeconds": 999999}, "60..21600"),
    ({"EndpointName": "dashcam-detect", "InputLocation": "s3://b/k", "InferenceId": "x" * 65}, "InferenceId"),
])
def test_bad_requests_raise_client_error_validation_error(
    runtime: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint_async(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError", error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in error["Message"]


def test_endpoints_are_managed_with_the_cli(deployment: Deployment, s3: tuple[str, Any, str]) -> None:
    _, _, suffix = s3
    server = ("--server", deployment.base_url)
    made = deployment.cli("endpoints", "create", "cli-noop", "--pipeline", "noop", "--param", "sleep_s=0",
                          "--output-path", f"s3://fq-out-{suffix}/cli", *server)
    assert json.loads(made.stdout)["failure_path"] is None
    again = deployment.cli("endpoints", "create", "cli-noop", "--pipeline", "noop", "--output-path",
                           f"s3://fq-out-{suffix}/cli", *server, check=False)
    assert again.returncode != 0 and "endpoint_exists" in again.stderr + again.stdout
    bad = deployment.cli("endpoints", "create", "bad_name", "--output-path", f"s3://fq-out-{suffix}/x", *server,
                         check=False)
    assert bad.returncode != 0 and "name:" in bad.stderr + bad.stdout
    listed = deployment.cli("endpoints", "list", *server).stdout
    assert "cli-noop" in listed and "dashcam-detect" in listed
    deployment.cli("endpoints", "delete", "cli-noop", *server)
    assert "cli-noop" not in deployment.cli("endpoints", "list", *server).stdout


def test_endpoints_create_names_a_retention(deployment: Deployment, s3: tuple[str, Any, str]) -> None:
    _, _, suffix = s3
    server = ("--server", deployment.base_url)
    made = deployment.cli("endpoints", "create", "kept-a-day", "--pipeline", "noop", "--output-path",
                          f"s3://fq-out-{suffix}/kept", "--retention-s", "86400", *server)
    assert json.loads(made.stdout)["retention_s"] == 86400
    bad = deployment.cli("endpoints", "create", "kept-never", "--pipeline", "noop", "--output-path",
                         f"s3://fq-out-{suffix}/kept", "--retention-s", "-5", *server, check=False)
    assert bad.returncode != 0 and "retention_s" in bad.stderr + bad.stdout
    deployment.cli("endpoints", "delete", "kept-a-day", *server)
