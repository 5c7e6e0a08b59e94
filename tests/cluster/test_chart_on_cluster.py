"""The Helm chart on a real Kubernetes: v1.20.2 built from Debian's source package (tools.kube.build), one
node inside a network namespace this test creates (tools.kube.cluster), with PostgreSQL, Redis and an S3
server (moto) beside it. The framequeue image is built offline (tools.image.build) and imported into
containerd; the chart in deploy/helm/framequeue is installed unmodified with tests/cluster/values.yaml.
Then, in order:

a. the dashcam clip goes through the API pod (its pod IP: no kube-proxy, no DNS) and its job succeeds with
   outputs, one of which is downloaded; then a job asking for a split: its segments in S3, run by the workers
   the backlog scales out, stitched once;
b. KEDA's role (tests.cluster.keda: the ScaledObject, the queue's load, framequeue's policy, the Deployment's
   scale subresource): 1 -> 0 when idle, 0 -> 3 on a burst, 3 -> 1 while a job runs on a removed pod (it
   drains: preStop, SIGTERM, the job finishes, attempt 1), then 0;
c. a worker pod force-deleted mid-job: the job is claimed again after its lease and succeeds once;
d. the inference pod becomes Ready (serve-models' arguments are right).

Needs root (network namespaces, mounts, containerd). Without a prerequisite (root, npm for helm, ../shared)
it skips locally and fails in CI (CI set). Timings of each phase are printed (pytest -s, or -rA).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.helm import HelmUnavailable, helm_binary
from tests.cluster.keda import KedaStandIn
from tests.conftest import REPO_ROOT, SHARED_DIR
from tests.mediagen import make_video
from tools.kube import build
from tools.kube.cluster import NS_IP, PAUSE_IMAGE, S3_BUCKET, Cluster
from tools.kube.pause import build_pause

pytestmark = pytest.mark.slow

CHART = Path(os.environ.get("FQ_CLUSTER_CHART", REPO_ROOT / "deploy" / "helm" / "framequeue"))
VALUES = Path(__file__).with_name("values.yaml")
RELEASE = "fq"
NAMESPACE = "default"
SECRET = "fq-cluster-urls"
IMAGE_REPO = "docker.io/local/framequeue"
IMAGE_CACHE = build.CACHE_ROOT / "images"
CRDS = ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")
S3_KEY, S3_SECRET, S3_REGION = "fqtest", "fqtest-secret", "us-east-1"
API_PORT = 8080

log = logging.getLogger("tests.cluster")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Deployed:
    cluster: Cluster
    api_url: str
    keda: KedaStandIn
    timings: dict[str, float] = field(default_factory=dict)
    #: an uploaded input for noop jobs (they check that it exists)
    noop_input: str | None = None

    def fail(self, what: str) -> str:
        return f"{what}\n{self.keda.describe()}\n{self.cluster.diagnostics()}"


class Phases:
    """Wall time of each named phase, printed at the end."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        print(f"[cluster test] {name} ...", file=sys.stderr, flush=True)
        try:
            return fn()
        finally:
            self.timings[name] = round(time.monotonic() - started, 1)
            print(f"[cluster test] {name}: {self.timings[name]} s", file=sys.stderr, flush=True)


def _source_tag() -> str:
    """A tag that changes with the code the image holds (every tracked file outside tests and docs)."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    digest = hashlib.sha256()
    for name in sorted(names):
        path = REPO_ROOT / name
        if path.is_file() and not name.startswith(("tests/", "docs/", "bench/", ".ci/")):
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return "c" + digest.hexdigest()[:12]


def _image_archive(tag: str) -> Path:
    """The framequeue image as an OCI archive (tools.image.build), cached by source tag."""
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    archive = IMAGE_CACHE / f"framequeue-{tag}.tar"
    if archive.exists():
        return archive
    partial = archive.with_suffix(".partial")
    proc = subprocess.run(
        [sys.executable, "-m", "tools.image.build", "--tag", f"{IMAGE_REPO}:{tag}", "--output", str(partial)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"tools.image.build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    partial.rename(archive)
    # one archive per source version: keep the two newest
    for old in sorted(IMAGE_CACHE.glob("framequeue-*.tar"), key=lambda p: p.stat().st_mtime)[:-2]:
        old.unlink()
    return archive


def _pause_archive() -> Path:
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    archive = IMAGE_CACHE / "pause-1.tar"
    if not archive.exists():
        build_pause(archive.with_suffix(".partial"), PAUSE_IMAGE).rename(archive)
    return archive


def _storage_url() -> str:
    where = urllib.parse.quote(f"http://{NS_IP}:9000", safe="")
    return f"s3://{S3_KEY}:{S3_SECRET}@{S3_BUCKET}/cluster?endpoint={where}&region={S3_REGION}"


def _model_repo(root: Path) -> Path:
    """A model repository (as `framequeue models add` writes it) with YOLOX-nano from ../shared, readable by the
    image's non-root user; the chart mounts it as a hostPath."""
    from framequeue.models.repository import ModelRepository

    yolox = SHARED_DIR / "models" / "yolox_nano"
    ModelRepository(root).add("yolox_nano", yolox / "yolox_nano.onnx", "yolox", yolox / "coco_classes.txt")
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    return root


def _install_crds(cluster: Cluster) -> None:
    crd_dir = SHARED_DIR / "k8s" / "keda-crds"
    for name in CRDS:
        crd = yaml.safe_load((crd_dir / name).read_text())
        cluster.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    for name in CRDS:
        crd_name = yaml.safe_load((crd_dir / name).read_text())["metadata"]["name"]
        _wait(lambda n=crd_name: any(  # type: ignore[misc]
            c["type"] == "Established" and c["status"] == "True"
            for c in cluster.api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}")
            .get("status", {}).get("conditions", [])
        ), 60, f"CRD {crd_name} established")  # fmt: skip


def _wait(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5,
          on_timeout: Callable[[], str] = lambda: "") -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # transient: a pod without an IP yet, a refused connection
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last!r})\n"
                         f"{on_timeout()}")  # fmt: skip


def _pods(cluster: Cluster, component: str) -> list[dict[str, Any]]:
    selector = urllib.parse.quote(f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}")
    return list(cluster.api("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")["items"])


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return pod["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    if sys.platform != "linux" or os.geteuid() != 0:
        _unavailable("the cluster test needs root on Linux (network namespaces, mounts, containerd)")
    for needed in (SHARED_DIR / "k8s" / "keda-crds", SHARED_DIR / "models" / "yolox_nano"):
        if not needed.exists():
            _unavailable(f"{needed} is missing")
    if importlib.util.find_spec("moto") is None:
        _unavailable("moto is not installed (`make setup` installs the dev extra)")
    phases = Phases()
    try:
        helm = phases.run("helm", helm_binary)
    except HelmUnavailable as exc:
        _unavailable(str(exc))
    kube_bin = phases.run("kubernetes build (cached)", build.ensure_built)
    tag = os.environ.get("FQ_CLUSTER_IMAGE_TAG") or _source_tag()  # the override: reuse a cached archive
    archive = phases.run("framequeue image (cached by source)", lambda: _image_archive(tag))
    pause = phases.run("pause image", _pause_archive)
    workdir = Path(tempfile.mkdtemp(prefix="fq-kube-", dir="/var/tmp"))
    cluster = Cluster(workdir, kube_bin)
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        phases.run("cluster start", cluster.start)
        phases.run("image import", lambda: cluster.import_images(pause, archive))
        phases.run("KEDA CRDs", lambda: _install_crds(cluster))
        models = phases.run("model repository", lambda: _model_repo(workdir / "models"))
        cluster.api("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET},
            "stringData": {"FQ_DATABASE_URL": cluster.database_url, "FQ_BROKER_URL": cluster.redis_url,
                           "FQ_STORAGE_URL": _storage_url()},
        })  # fmt: skip

        def install() -> None:
            proc = subprocess.run(
                [str(helm), "install", RELEASE, str(CHART), "-f", str(VALUES), "--set", f"image.tag={tag}",
                 "--set", f"models.hostPath.path={models}",
                 "--server-side=false", "--namespace", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig)],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            assert proc.returncode == 0, f"helm install failed:\n{proc.stdout}\n{proc.stderr}"

        phases.run("helm install", install)

        def api_ready() -> str | None:
            ready = [p for p in _pods(cluster, "api") if _ready(p)]
            return f"http://{ready[0]['status']['podIP']}:{API_PORT}" if ready else None

        api_url = phases.run("API pod Ready", lambda: _wait(api_ready, 300, "the API pod Ready",
                                                               on_timeout=cluster.diagnostics))  # fmt: skip
        from framequeue.brokers import open_broker
        from framequeue.jobstore import open_jobstore
        from framequeue.scaling.autoscale.observe import QueueObserver

        broker = open_broker(cluster.redis_url)
        store = open_jobstore(cluster.database_url, lambda job: b"{}")  # only reads
        keda = KedaStandIn(cluster.api, NAMESPACE, f"{RELEASE}-framequeue-worker", QueueObserver(broker, store))
        thread = threading.Thread(target=keda.run, args=(stop, 1.0), name="keda-stand-in", daemon=True)
        thread.start()
        d = Deployed(cluster, api_url, keda, phases.timings)
        yield d
        broker.close()
        store.close()
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
        phases.run("teardown", cluster.stop)
        print("[cluster test] timings (s): " + json.dumps(phases.timings), file=sys.stderr, flush=True)


def _job(d: Deployed, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{d.api_url}/v1/jobs/{job_id}", timeout=30)
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def _submit(d: Deployed, body: dict[str, Any]) -> str:
    r = httpx.post(f"{d.api_url}/v1/jobs", json=body, timeout=60)
    assert r.status_code in (200, 201, 202), r.text
    job_id: str = r.json()["id"]
    return job_id


def _wait_status(d: Deployed, job_id: str, statuses: set[str], timeout_s: float) -> dict[str, Any]:
    record: dict[str, Any] = _wait(lambda: (j := _job(d, job_id))["status"] in statuses and j, timeout_s,
                                   f"job {job_id} to reach {statuses}", on_timeout=lambda: d.fail(
                                       json.dumps(_job(d, job_id), indent=1)[-3000:]))  # fmt: skip
    return record


def _replicas(d: Deployed) -> int:
    scale = d.cluster.api("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}-framequeue-worker/scale")
    return int(scale["spec"].get("replicas", 0))


def _running_workers(d: Deployed) -> list[dict[str, Any]]:
    return [p for p in _pods(d.cluster, "worker") if p["status"].get("phase") == "Running"]


def _upload(d: Deployed, path: Path) -> str:
    r = httpx.post(f"{d.api_url}/v1/uploads", params={"filename": path.name}, content=path.read_bytes(),
                   headers={"Content-Type": "application/octet-stream"}, timeout=120)  # fmt: skip
    assert r.status_code in (200, 201), r.text
    key: str = r.json()["key"]
    return key


def _noop(d: Deployed, sleep_s: float) -> str:
    """A noop job (the worker's whole lifecycle, no media work) that runs sleep_s seconds."""
    if d.noop_input is None:
        d.noop_input = _upload(d, SHARED_DIR / "media" / "bottle-detection.mp4")
    return _submit(d, {"pipeline": "noop", "input": {"key": d.noop_input}, "params": {"sleep_s": sleep_s}})


@pytest.mark.timeout(3600)
def test_dashcam_clip_through_the_api_pod(deployed: Deployed) -> None:
    d = deployed
    key = _upload(d, SHARED_DIR / "media" / "solidWhiteRight.mp4")
    started = time.monotonic()
    job_id = _submit(d, {"pipeline": "detect", "input": {"key": key}, "params": {"sample_fps": 5}})
    record = _wait_status(d, job_id, {"succeeded", "failed", "cancelled", "expired"}, 600)
    assert record["status"] == "succeeded", d.fail(json.dumps(record, indent=1))
    d.timings["dashcam job"] = round(time.monotonic() - started, 1)
    assert record["outputs"], record
    name, where = next(iter(record["output_urls"].items()))
    url = where if where.startswith("http") else f"{d.api_url}{where}"
    out = httpx.get(url, timeout=60)
    assert out.status_code == 200 and len(out.content) > 0, (name, out.status_code, out.text[:500])


@pytest.mark.timeout(900)
def test_a_split_video_runs_across_worker_pods_and_stitches_once(deployed: Deployed, tmp_path: Path) -> None:
    """The chart tells each worker how many could share a video (FQ_SPLIT_WORKERS: maxReplicas 3); a job
    asking for a split is cut into segments in S3, the segments' backlog scales the workers out, and one
    stitch joins them."""
    d = deployed
    started = time.monotonic()
    # 6 s with a keyframe every second: three 2 s segments
    key = _upload(d, make_video(tmp_path / "long.mp4", frames=150, fps=25))
    job_id = _submit(d, {"pipeline": "detect", "input": {"key": key},
                         "params": {"split": True, "segment_s": 2, "sample_fps": 5}})
    record = _wait_status(d, job_id, {"succeeded", "failed", "cancelled", "expired"}, 600)
    assert record["status"] == "succeeded", d.fail(json.dumps(record, indent=1))
    assert record["segments_total"] == 3 and record["segments_done"] == 3, record
    assert [s["status"] for s in record["segments"]] == ["succeeded"] * 3, record["segments"]
    outcomes = [a["outcome"] for a in record["attempt_history"]]
    assert outcomes == ["split", "succeeded"], d.fail(json.dumps(record, indent=1))
    pods = {_job(d, s["id"])["attempt_history"][-1]["worker"].rsplit(":", 1)[0] for s in record["segments"]}
    env = d.cluster.api("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}-framequeue-worker")
    container = env["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "FQ_SPLIT_WORKERS", "value": "3"} in container["env"]
    where = record["output_urls"]["detections"]
    doc = httpx.get(where if where.startswith("http") else f"{d.api_url}{where}", timeout=60).json()
    assert [f["frame"] for f in doc["frames"]] == list(range(0, 150, 5))  # sampled at 5 of 25 fps, whole video
    d.timings["split job, 3 segments"] = round(time.monotonic() - started, 1)
    print(f"[cluster test] the split job's segments ran on {sorted(pods)}", file=sys.stderr)


@pytest.mark.timeout(900)
def test_keda_role_scales_zero_to_n_and_drains_on_scale_in(deployed: Deployed) -> None:
    d = deployed
    _wait(lambda: _replicas(d) == 0 and not _pods(d.cluster, "worker"), 120, "the idle fleet scaled to zero",
          on_timeout=lambda: d.fail("no scale to zero"))  # fmt: skip
    started = time.monotonic()
    # two short jobs that the first workers take, then one long one that only a third worker can take
    short = [_noop(d, 8) for _ in range(2)]
    _wait(lambda: _replicas(d) >= 2, 30, "scale-out from zero", on_timeout=lambda: d.fail("no scale-out"))
    _wait(lambda: all(_job(d, j)["status"] == "running" for j in short), 240, "both short jobs running",
          on_timeout=lambda: d.fail("short jobs not running"))  # fmt: skip
    long = _noop(d, 30)
    _wait(lambda: _replicas(d) == 3, 30, "scale-out to 3", on_timeout=lambda: d.fail("no scale-out to 3"))
    running = _wait_status(d, long, {"running"}, 240)
    d.timings["scale-out 0 -> 3, jobs running"] = round(time.monotonic() - started, 1)
    busy_pod = running["attempt_history"][-1]["worker"].rsplit(":", 1)[0]
    # the short jobs end; the policy keeps one worker for the long job: 3 -> 1, and the ReplicaSet removes
    # the most recently ready pods, the busy one among them: it must drain, not be killed
    _wait(lambda: _replicas(d) == 1, 120, "scale-in to 1", on_timeout=lambda: d.fail("no scale-in"))
    deleted = {p["metadata"]["name"] for p in _pods(d.cluster, "worker") if p["metadata"].get("deletionTimestamp")}
    # the kubelet removes a deleted pod's logs with it: keep the busy pod's log while it drains
    busy_log = ""

    def ended() -> dict[str, Any] | None:
        nonlocal busy_log
        busy_log = max(busy_log, d.cluster.pod_log(NAMESPACE, busy_pod), key=len)
        record = _job(d, long)
        return record if record["status"] in {"succeeded", "failed", "queued"} else None

    record = _wait(ended, 180, f"job {long} to end", on_timeout=lambda: d.fail("the drained job did not end"))
    _wait(lambda: busy_pod not in {p["metadata"]["name"] for p in _pods(d.cluster, "worker")}, 60,
          f"{busy_pod} gone", on_timeout=lambda: d.fail("the drained pod did not exit"))  # fmt: skip
    assert record["status"] == "succeeded" and record["attempts"] == 1, d.fail(json.dumps(record, indent=1))
    for j in short:
        assert _job(d, j)["status"] == "succeeded"
    # the ReplicaSet removes the most recently ready pods first: the third worker, the one with the long job
    assert busy_pod in deleted, d.fail(f"scale-in removed {sorted(deleted)}, not {busy_pod} (the busy pod)")
    assert "draining" in busy_log, d.fail(f"{busy_pod} was removed without a drain in its log:\n{busy_log[-3000:]}")
    selector = urllib.parse.quote(f"involvedObject.name={busy_pod}")
    events = d.cluster.api("GET", f"/api/v1/namespaces/{NAMESPACE}/events?fieldSelector={selector}")
    reasons = [e["reason"] for e in events["items"]]
    assert "FailedPreStopHook" not in reasons and "Killing" in reasons, d.fail(f"{busy_pod} events: {reasons}")
    print(f"[cluster test] scale-in removed {sorted(deleted)}; the long job ran on {busy_pod}", file=sys.stderr)
    _wait(lambda: _replicas(d) == 0 and not _pods(d.cluster, "worker"), 120, "scale to zero when idle",
          on_timeout=lambda: d.fail("no scale to zero"))  # fmt: skip
    d.timings["scale cycle"] = round(time.monotonic() - started, 1)


@pytest.mark.timeout(900)
def test_killed_worker_pod_job_succeeds_once(deployed: Deployed) -> None:
    d = deployed
    started = time.monotonic()
    job_id = _noop(d, 20)
    running = _wait_status(d, job_id, {"running"}, 240)
    pod = running["attempt_history"][-1]["worker"].rsplit(":", 1)[0]
    d.cluster.api("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}",
                  {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})  # fmt: skip
    record = _wait_status(d, job_id, {"succeeded", "failed"}, 300)
    assert record["status"] == "succeeded", d.fail(json.dumps(record, indent=1))
    outcomes = [a["outcome"] for a in record["attempt_history"]]
    assert outcomes.count("succeeded") == 1, d.fail(json.dumps(record, indent=1))
    assert record["attempts"] == 2 and record["attempt_history"][-1]["worker"].rsplit(":", 1)[0] != pod, record
    d.timings["killed pod, job succeeded"] = round(time.monotonic() - started, 1)


@pytest.mark.timeout(600)
def test_inference_pod_becomes_ready(deployed: Deployed) -> None:
    d = deployed
    _wait(lambda: any(_ready(p) for p in _pods(d.cluster, "inference")), 300, "an inference pod Ready",
          on_timeout=lambda: d.fail("inference pod not Ready"))  # fmt: skip
