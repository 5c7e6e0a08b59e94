"""The model endpoint registry end to end, with real processes: `framequeue api`, one `framequeue worker` and
`framequeue serve-models` sharing one model repository.

- the dashcam job runs through a remote OIP v2 endpoint and finds what the in-process run finds;
- with that endpoint dead, the next job fails over to a `local` endpoint of the same version;
- a 50/50 A/B between YOLOX-nano and NanoDet-m over 40 jobs splits within 40-60 %, one version per job.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from framequeue.endpoints.routing import ModelEndpoint
from framequeue.errors import NoEndpoint
from tests.acceptance.deployment import Deployment, free_port
from tests.conftest import require_shared
from tests.mediagen import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

AB_JOBS = 40
#: pixels two runs' boxes may differ by (the server's ONNX Runtime batches frames differently)
BOX_ATOL = 2.0


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yolox = require_shared("models", "yolox_nano")
    d = Deployment(tmp_path_factory.mktemp("remote"), lease_s=10, heartbeat_s=2, reap_interval_s=1)
    d.register_yolox(yolox)
    d.serve_http = f"http://127.0.0.1:{free_port()}"  # type: ignore[attr-defined]
    grpc_port = free_port()
    d.serve_grpc = f"grpc://127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
    d.start("serve", "serve-models", "--http-port", d.serve_http.rsplit(":", 1)[1],  # type: ignore[attr-defined]
            "--grpc-port", str(grpc_port), "--memory-budget-mb", "256")
    d.start("api", "api")
    d.start("worker", "worker")
    try:
        d.wait_ready()
        deadline = time.monotonic() + 30
        while not _ready(d.serve_http):  # type: ignore[attr-defined]
            assert d.procs["serve"].poll() is None, d.log("serve")
            assert time.monotonic() < deadline, d.log("serve")
            time.sleep(0.2)
        yield d
    finally:
        d.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _run(dep: Deployment, video: Path, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    job = dep.submit_file(video, params)
    record = dep.wait_done(job["id"])
    assert record["status"] == "succeeded", (record, dep.log("worker")[-3000:])
    out = dep.client.download(job["id"], "detections", dep.root / "downloads" / job["id"])
    return record, json.loads(out.read_text())


def _inference_count(url: str) -> int:
    stats = httpx.get(f"{url}/v2/models/yolox_nano/stats", timeout=5).json()["model_stats"]
    return int(sum(s["inference_stats"]["success"]["count"] for s in stats))


def _check_grpc(dep: Deployment, video: Path) -> None:
    """The remote backend over gRPC (tritonclient's async_infer) answers what ONNX Runtime does in-process,
    with several batches in flight at once."""
    import cv2

    from framequeue.media.letterbox import letterbox
    from framequeue.models.onnx import OnnxModel
    from framequeue.models.remote import RemoteModel
    from framequeue.models.repository import ModelRepository

    version = ModelRepository(dep.home / "models").get("yolox_nano", 1)
    capture = cv2.VideoCapture(str(video))
    images = [np.asarray(capture.read()[1], np.uint8) for _ in range(4)]
    capture.release()
    batch = np.stack([letterbox(img, version.input_size_hw)[0] for img in images]).astype(np.float32)
    expected = OnnxModel.load(version, 1).infer(batch)
    for url in (dep.serve_grpc, dep.serve_http):  # type: ignore[attr-defined]
        remote = RemoteModel(version, url, max_in_flight=3)
        try:
            futures = [remote.submit(batch[i : i + 2]) for i in (0, 2, 0)]
            got = [f.result(30) for f in futures]
        finally:
            remote.close()
        np.testing.assert_allclose(np.concatenate([got[0][0], got[1][0]]), expected[0], atol=1e-3)
        np.testing.assert_allclose(got[2][0], expected[0][:2], atol=1e-3)


def test_the_dashcam_job_runs_on_a_remote_endpoint_then_fails_over_to_local(
    dep: Deployment, dashcam_video: Path
) -> None:
    params = {"sample_fps": 5}
    local_record, local = _run(dep, dashcam_video, params)  # no registry rows: in-process, as before
    assert local_record["params"]["model_version"] == 1 and local["model_endpoint"] == "local"

    http_url: str = dep.serve_http  # type: ignore[attr-defined]
    remote_ep = dep.client.register_model_endpoint("yolox_nano", 1, http_url, weight=1.0)
    before = _inference_count(http_url)
    record, remote = _run(dep, dashcam_video, params)
    assert record["params"]["model_version"] == 1
    assert remote["model"] == {"name": "yolox_nano", "version": 1} and remote["model_endpoint"] == http_url
    assert _inference_count(http_url) - before >= 1  # the batches went over the network
    _check_grpc(dep, dashcam_video)
    assert [f["frame"] for f in remote["frames"]] == [f["frame"] for f in local["frames"]]
    for mine, theirs in zip(remote["frames"], local["frames"], strict=True):
        assert [d["class"] for d in mine["detections"]] == [d["class"] for d in theirs["detections"]]
        for a, b in zip(mine["detections"], theirs["detections"], strict=True):
            np.testing.assert_allclose(a["xyxy"], b["xyxy"], atol=BOX_ATOL)
            assert abs(a["score"] - b["score"]) < 0.01

    # the server dies; a local endpoint of the same version (a tiny weight: the dead one ranks first for
    # almost every job id) takes the next job once the worker's health check sees it down
    dep.signal("serve", signal.SIGKILL)
    dep.procs["serve"].wait(10)
    dep.client.register_model_endpoint("yolox_nano", 1, "local", weight=0.001)
    time.sleep(3.5)  # past the worker's cached health verdict
    record, failed_over = _run(dep, dashcam_video, params)
    assert failed_over["model"] == {"name": "yolox_nano", "version": 1}
    assert failed_over["model_endpoint"] == "local"
    assert record["attempts"] == 1
    dep.client.remove_model_endpoint(remote_ep["id"])
    assert [e["url"] for e in dep.client.model_endpoints("yolox_nano")] == ["local"]


def test_a_50_50_ab_between_yolox_and_nanodet_keeps_each_job_on_one_version(
    dep: Deployment, tmp_path: Path
) -> None:
    yolox, nanodet = require_shared("models", "yolox_nano"), require_shared("models", "nanodet_m")
    classes = yolox / "coco_classes.txt"
    dep.cli("models", "add", "vehicles", str(yolox / "yolox_nano.onnx"), "--format", "yolox", "--classes", str(classes))
    dep.cli("models", "add", "vehicles", str(nanodet / "nanodet_m.onnx"), "--format", "nanodet", "--classes",
            str(classes))
    dep.cli("model-endpoints", "register", "vehicles", "1", "local", "--weight", "50",
            "--server", dep.base_url)
    dep.cli("model-endpoints", "register", "vehicles", "2", "local", "--weight", "50", "--server", dep.base_url)
    listed = dep.cli("model-endpoints", "list", "--model", "vehicles", "--server", dep.base_url).stdout
    assert listed.count("vehicles") == 2

    clip = make_video(tmp_path / "tiny.mp4", frames=3, width=160, height=120)
    key = dep.client.upload(clip)["key"]
    ids = [dep.client.submit({"pipeline": "detect", "input": {"key": key}, "params": {"model": "vehicles"}})["id"]
           for _ in range(AB_JOBS)]
    assigned = {i: dep.client.job(i)["params"]["model_version"] for i in ids}  # fixed at submit
    versions: Counter[int] = Counter()
    for job_id in ids:
        record = dep.wait_done(job_id, timeout_s=120)
        assert record["status"] == "succeeded", record
        version = record["params"]["model_version"]
        assert version == assigned[job_id]
        out = dep.client.download(job_id, "detections", tmp_path / job_id)
        head = json.loads(out.read_text())["model"]
        assert head["name"] == "vehicles" and head["version"] == version  # the outputs name that one version
        versions[version] += 1
    rows = [ModelEndpoint(**e) for e in dep.client.model_endpoints("vehicles")]
    share = versions[1] / AB_JOBS
    print(f"A/B vehicles v1 (YOLOX-nano) / v2 (NanoDet-m), 50/50 over {AB_JOBS} jobs: "
          f"{versions[1]} / {versions[2]} ({100 * share:.0f} % / {100 * (1 - share):.0f} %)")
    # the API balances its submits by smooth weighted round robin: 40 jobs at 50/50 split 20/20, and the
    # issue's bound (40-60 %) holds for every run, not on average
    assert 0.4 <= share <= 0.6, versions

    # reweigh and drain from the CLI: v2 at weight 0 and v1 draining leave nothing to route new jobs to
    ids_by_version = {e.version: e.id for e in rows}
    dep.cli("model-endpoints", "reweigh", ids_by_version[2], "0", "--server", dep.base_url)
    dep.cli("model-endpoints", "drain", ids_by_version[1], "--server", dep.base_url)
    states = {e["version"]: (e["weight"], e["state"]) for e in dep.client.model_endpoints("vehicles")}
    assert states == {1: (50.0, "draining"), 2: (0.0, "active")}
    with pytest.raises(NoEndpoint):
        dep.client.submit({"pipeline": "detect", "input": {"key": key}, "params": {"model": "vehicles"}})
    for endpoint_id in ids_by_version.values():
        dep.cli("model-endpoints", "remove", endpoint_id, "--server", dep.base_url)
    # no rows: the newest version, in-process, as before the registry
    job = dep.client.submit({"pipeline": "detect", "input": {"key": key}, "params": {"model": "vehicles"}})
    assert job["params"]["model_version"] == 2
