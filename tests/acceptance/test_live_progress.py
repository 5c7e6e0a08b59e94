"""Live progress over HTTP against `framequeue up` (one worker, API keys of two tenants): the job event
stream (text/event-stream) shows progress rising and ends with the terminal record, a Last-Event-ID resume
repeats nothing, tenants stay apart, /v1/events follows a job through its states, `Prefer: wait` answers
200 or 202, and `framequeue watch` / `submit --wait` follow the stream to the job's end."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from framequeue.client import Client
from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared

pytestmark = pytest.mark.slow


@dataclass
class Tenant:
    key: str
    http: httpx.Client
    client: Client

    def submit(self, path: Path, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        key = self.client.upload(path)["key"]
        return self.http.post("/v1/jobs", json={"pipeline": "detect", "input": {"key": key}, "params": params},
                              headers=headers or {})


@dataclass
class Live:
    dep: Deployment
    alpha: Tenant
    beta: Tenant


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Live]:
    dep = Deployment(tmp_path_factory.mktemp("live"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    dep.register_yolox(yolox_model_dir)
    tenants = []
    for name in ("alpha", "beta"):
        key = dep.cli("keys", "create", "--tenant", name, "--scope", "submit").stdout.splitlines()[0].strip()
        http = httpx.Client(base_url=dep.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        tenants.append(Tenant(key, http, Client(dep.base_url, timeout_s=60, api_key=key)))
    dep.start("up", "up", "--workers", "1")
    dep.wait_ready()
    yield Live(dep, *tenants)
    for t in tenants:
        t.http.close()
        t.client.close()
    dep.stop()


def job_events(tenant: Tenant, job_id: str, last_event_id: str | None = None) -> Iterator[ServerSentEvent]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with connect_sse(tenant.http, "GET", f"/v1/jobs/{job_id}/events", headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["cache-control"] == "no-store"
        # a keep-alive comment reaches httpx-sse as an event without data (the spec dispatches nothing)
        yield from (e for e in source.iter_sse() if e.data)


def test_a_job_stream_shows_progress_rising_and_ends_with_the_terminal_record(
    live: Live, dashcam_video: Path
) -> None:
    job_id = live.alpha.submit(dashcam_video).json()["id"]
    events = list(job_events(live.alpha, job_id))  # the server closes the stream after the terminal record
    records = [e.json() for e in events]
    assert events[0].event == "status" and records[0]["status"] in {"queued", "running"}
    assert events[-1].event == "end" and [e.event for e in events].count("end") == 1
    assert records[-1] == live.alpha.http.get(f"/v1/jobs/{job_id}").json()
    assert records[-1]["status"] == "succeeded"
    assert records[-1]["progress"]["frames_done"] == records[-1]["progress"]["frames_total"] == 221
    done = [r["progress"]["frames_done"] for r in records]
    assert done == sorted(done) and len({d for d in done if 0 < d < 221}) >= 2, done
    running = [r["progress"] for r in records if r["status"] == "running" and r["progress"]["frames_done"]]
    assert all(p["frames_total"] == 221 and p["fps"] > 0 and p["eta_s"] is not None for p in running)
    assert len({e.id for e in events}) == len(events) and all(e.id for e in events)
    assert all(e.event in {"status", "progress", "end"} for e in events)


def test_a_resumed_stream_repeats_nothing_and_a_finished_one_answers_204(live: Live, dashcam_video: Path) -> None:
    job_id = live.alpha.submit(dashcam_video).json()["id"]
    before: list[ServerSentEvent] = []
    for event in job_events(live.alpha, job_id):
        before.append(event)
        if event.json()["progress"]["frames_done"] > 0:
            break  # the client drops the connection mid-job
    after = list(job_events(live.alpha, job_id, before[-1].id))
    assert after and after[-1].event == "end" and after[-1].json()["status"] == "succeeded"
    digests = {e.id.split(".")[1] for e in before}
    assert not digests & {e.id.split(".")[1] for e in after}, "a record the client had was sent again"
    assert after[0].json()["progress"]["frames_done"] >= before[-1].json()["progress"]["frames_done"]
    resumed_at_end = live.alpha.http.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": after[-1].id})
    assert resumed_at_end.status_code == 204  # an EventSource stops reconnecting here


def test_another_tenants_job_stream_is_missing(live: Live, small_clip: Path) -> None:
    job_id = live.alpha.submit(small_clip).json()["id"]
    theirs = live.beta.http.get(f"/v1/jobs/{job_id}/events")
    unknown = live.beta.http.get(f"/v1/jobs/{'0' * 32}/events")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["code"] == "job_not_found" and theirs.json()["detail"] == unknown.json()["detail"]
    anonymous = httpx.get(f"{live.dep.base_url}/v1/jobs/{job_id}/events")
    assert anonymous.status_code == 401
    bad = live.alpha.http.get("/v1/events", params={"status": "finished"})
    assert bad.json()["code"] == "invalid_params"
    live.alpha.client.wait(job_id)


def collect(http: httpx.Client, into: list[ServerSentEvent], ready: threading.Event, closing: threading.Event
            ) -> None:
    """Read /v1/events into `into` until the test closes `http` under it."""
    try:
        with connect_sse(http, "GET", "/v1/events", timeout=httpx.Timeout(60, read=None)) as source:
            ready.set()
            into.extend(e for e in source.iter_sse() if e.data)
    except Exception:
        if not closing.is_set():  # whatever closing the client under the read raises, and nothing else
            raise


def test_the_tenant_stream_follows_a_job_from_queued_to_succeeded(live: Live, dashcam_video: Path) -> None:
    streams: dict[str, list[ServerSentEvent]] = {"alpha": [], "beta": []}
    readers = []
    closing = threading.Event()
    for name, tenant in (("alpha", live.alpha), ("beta", live.beta)):
        http = httpx.Client(base_url=live.dep.base_url, headers={"Authorization": f"Bearer {tenant.key}"})
        ready = threading.Event()
        t = threading.Thread(target=collect, args=(http, streams[name], ready, closing), daemon=True)
        t.start()
        assert ready.wait(10)
        readers.append((http, t))
    time.sleep(1.5)  # a fresh stream sends changes after its first look at the tenant's jobs
    try:
        busy = live.alpha.submit(dashcam_video).json()["id"]  # the one worker is busy with it for seconds
        # queued for as long as `busy` runs, then running for seconds: longer than the stream's poll
        waiting = live.alpha.submit(dashcam_video).json()["id"]
        live.alpha.client.wait(waiting)
        time.sleep(2.5)  # the tenant stream looks every second
    finally:
        closing.set()
        for http, t in readers:
            http.close()
            t.join(10)
    mine = [e.json() for e in streams["alpha"] if e.json()["id"] == waiting]
    statuses = [r["status"] for r in mine]
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == [
        "queued", "running", "succeeded"], statuses
    assert any(e.json()["id"] == busy for e in streams["alpha"])
    assert not streams["beta"], "another tenant saw alpha's jobs"
    ids = [e.id for e in streams["alpha"]]
    assert len(ids) == len(set(ids))


def test_prefer_wait_answers_the_finished_job_or_202(live: Live, small_clip: Path, dashcam_video: Path) -> None:
    quick = live.alpha.submit(small_clip, {"Prefer": "wait=30"})
    assert quick.status_code == 200 and quick.headers["preference-applied"] == "wait=30"
    assert quick.json()["status"] == "succeeded" and quick.json()["outputs"]
    clamped = live.alpha.submit(small_clip, {"Prefer": "respond-async, wait=600"})
    assert clamped.status_code == 200 and clamped.headers["preference-applied"] == "wait=60"
    slow = live.alpha.submit(dashcam_video, {"Prefer": "wait=1"})
    assert slow.status_code == 202 and slow.headers["preference-applied"] == "wait=1"
    assert slow.json()["status"] in {"queued", "running"} and slow.headers["location"].endswith(slow.json()["id"])
    plain = live.alpha.submit(small_clip)
    assert plain.status_code == 202 and "preference-applied" not in plain.headers
    before = live.alpha.http.get("/v1/jobs", params={"limit": 500}).json()["jobs"]
    bad = live.alpha.submit(small_clip, {"Prefer": "wait=soon"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_params"
    assert "Prefer: wait" in bad.json()["detail"]
    assert len(live.alpha.http.get("/v1/jobs", params={"limit": 500}).json()["jobs"]) == len(before)
    live.alpha.client.cancel(slow.json()["id"])
    live.alpha.client.wait(plain.json()["id"])


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_prefer_wait_answers_a_still_image_through_detect(live: Live, tmp_path: Path, kind: str) -> None:
    """Request-reply as the issue puts it: a still (a real dashcam JPEG, and a PNG made from it) is a
    one-frame job whose finished record comes back in the reply to the POST."""
    jpeg = require_shared("media", "stills", "solidWhiteRight.jpg")
    still = jpeg
    if kind == "png":
        image = cv2.imread(str(jpeg))
        still = tmp_path / "still.png"
        assert cv2.imwrite(str(still), image)
    reply = live.alpha.submit(still, {"Prefer": "wait=30"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["preference-applied"] == "wait=30"
    record = reply.json()
    assert record["status"] == "succeeded", record
    assert record["progress"]["frames_done"] == record["progress"]["frames_total"] == 1
    assert {"detections", "image", "video"} <= set(record["outputs"]), record["outputs"]
    image_out = live.alpha.http.get(f"/v1/jobs/{record['id']}/outputs/image")
    assert image_out.status_code == 200 and image_out.headers["content-type"] == "image/png"
    assert image_out.content.startswith(b"\x89PNG")


def fq(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**live.dep.env, "FQ_API_KEY": live.alpha.key, "FQ_SERVER": live.dep.base_url}
    return subprocess.run([sys.executable, "-m", "framequeue", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def test_watch_and_submit_wait_follow_the_job_to_its_end(live: Live, small_clip: Path, dashcam_video: Path) -> None:
    job_id = live.alpha.submit(small_clip).json()["id"]
    watched = fq(live, "watch", job_id)
    assert watched.returncode == 0, watched.stderr
    assert f"job {job_id} succeeded" in watched.stdout and "video" in watched.stdout
    assert "20/20" in watched.stderr  # the progress bar reached the clip's frame count

    cancelled = live.alpha.submit(dashcam_video).json()["id"]
    live.alpha.client.cancel(cancelled)
    ended = fq(live, "watch", cancelled)
    assert ended.returncode == 3 and f"job {cancelled} cancelled" in ended.stdout

    missing = fq(live, "watch", "0" * 32)
    assert missing.returncode == 1 and "job_not_found" in missing.stderr

    submitted = fq(live, "submit", str(small_clip), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    assert "succeeded" in submitted.stdout


def test_the_client_reconnects_with_last_event_id_when_the_api_restarts(
    tmp_path: Path, yolox_model_dir: Path, dashcam_video: Path
) -> None:
    """`framequeue api` killed mid-stream and started again on its port: Client.job_events reconnects with
    Last-Event-ID and ends with the terminal record, no record twice (a worker of its own runs the job)."""
    dep = Deployment(tmp_path, lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    try:
        dep.register_yolox(yolox_model_dir)
        dep.start("api", "api")
        dep.start("worker", "worker")
        dep.wait_ready()
        job_id = dep.submit_file(dashcam_video)["id"]
        got: list[tuple[str, str, dict[str, Any]]] = []
        failure: list[BaseException] = []

        def follow() -> None:
            try:
                got.extend(dep.client.job_events(job_id))
            except BaseException as exc:
                failure.append(exc)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any(r["progress"]["frames_done"] for _, _, r in got):
            assert time.monotonic() < deadline and reader.is_alive(), (got, failure)
            time.sleep(0.05)
        seen_before = len(got)
        dep.signal("api", signal.SIGKILL, group=True)
        assert dep.procs["api"].wait(15) == -signal.SIGKILL
        dep.start("api2", "api")
        reader.join(90)
        assert not reader.is_alive() and not failure, failure
        assert len(got) > seen_before
        ids = [eid for eid, _, _ in got]
        assert len({i.split(".")[1] for i in ids}) == len(ids), "a record was sent twice"
        assert got[-1][1] == "end" and got[-1][2]["status"] == "succeeded"
        done = [r["progress"]["frames_done"] for _, _, r in got]
        assert done == sorted(done)
    finally:
        dep.stop()


def test_submit_names_a_retention_for_its_job(live: Live, small_clip: Path) -> None:
    submitted = fq(live, "submit", str(small_clip), "--pipeline", "noop", "--retention-s", "120")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[1]
    assert live.alpha.client.job(job_id)["retention_s"] == 120
    refused = fq(live, "submit", str(small_clip), "--pipeline", "noop", "--retention-s", "-1")
    assert refused.returncode != 0 and "retention_s" in refused.stderr + refused.stdout
    live.alpha.client.wait(job_id)
