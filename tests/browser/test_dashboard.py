"""The dashboard in a real headless Chromium against a real `framequeue up`: every page loads, a clip goes
through the Submit form, its progress bar moves, its video plays and seeks to a clicked event, the Jobs
filters, Retry and Cancel act, the Queue page shows work and workers, the Models page the registry, and an
API key given once in the page opens an authenticated deployment. Screenshots of each page are artefacts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from framequeue.scaling.autoscale.decisions import Tick, default_decisions_path, write_decision
from tests.acceptance.deployment import Deployment
from tests.acceptance.test_webhooks_over_http import Receiver
from tests.browser.pages import open_page, rows, shoot, until
from tests.mediagen import make_video

pytestmark = pytest.mark.slow

ROAD_PARAMS = {"speed_mps": 20.0, "camera": {"focal_px": 1400.0}, "following": {"profile": "two_second_rule"}}


def test_the_ui_is_static_and_the_data_behind_it_is_the_api(dashboard: Deployment) -> None:
    with httpx.Client(base_url=dashboard.base_url) as http:
        root = http.get("/ui")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        page = http.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "js/app.js" in page.text and "//" not in page.text.replace("://", ""), "nothing off this server"
        script = http.get("/ui/js/pages/job.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert http.get("/ui/js/nope.js").status_code == 404
        queue = http.get("/v1/queue").json()
        assert set(queue["queue"]) >= {"backlog_jobs", "in_flight_jobs", "oldest_waiting_age_s"}
        assert queue["last_hour"]["bucket_s"] == 60 and len(queue["last_hour"]["succeeded"]) == 60
        models = {m["name"]: m for m in http.get("/v1/models").json()["models"]}
        assert models["yolox_nano"]["runtime"] == "onnxruntime" and models["lstr"]["format"] == "lstr"


@pytest.mark.timeout(600)
def test_submit_a_clip_watch_it_run_play_it_and_seek_to_an_event(
    dashboard: Deployment, browser: webdriver.Chrome, approach_clip: Path, screenshots: Path
) -> None:
    open_page(browser, dashboard.base_url, "submit")
    pipeline = Select(until(lambda: browser.find_element(By.ID, "submit-pipeline"), 10, "the pipeline list"))
    until(lambda: len(pipeline.options) >= 4, 10, "the pipelines from /v1/pipelines")
    pipeline.select_by_value("road")
    params = browser.find_element(By.ID, "submit-params")
    assert json.loads(params.get_attribute("value") or "")["following"] == {"profile": "two_second_rule"}
    params.clear()
    params.send_keys(json.dumps(ROAD_PARAMS))
    browser.find_element(By.ID, "submit-attributes").send_keys("clip=approach, source=browser")
    browser.find_element(By.ID, "submit-file").send_keys(str(approach_clip))
    shoot(browser, screenshots, "submit")
    browser.find_element(By.ID, "submit-button").click()

    job_id = until(lambda: browser.current_url.partition("#/jobs/")[2], 60, "the Job page of the new job")
    record = dashboard.client.job(job_id)
    assert record["params"]["speed_mps"] == 20.0 and record["params"]["camera"]["focal_px"] == 1400.0
    assert record["params"]["following"]["profile"] == "two_second_rule"
    assert record["attributes"] == {"clip": "approach", "source": "browser"}

    # the progress bar as the page shows it, sampled until the job ends
    seen: list[float] = []
    deadline = time.monotonic() + 300
    shot_running = False
    status = ""
    while status not in {"succeeded", "failed", "cancelled", "expired"}:
        assert time.monotonic() < deadline, f"job {job_id} still {status} after 300 s: {seen}"
        time.sleep(0.2)
        shown = browser.execute_script(
            "const s = document.getElementById('job-status'), b = document.querySelector('.summary .progress');"
            "return s && b ? [s.textContent, Number(b.getAttribute('aria-valuenow'))] : null")
        if shown is None:
            continue
        status, value = shown
        if not seen or value != seen[-1]:
            seen.append(value)
        if 10 < value < 90 and not shot_running:
            shoot(browser, screenshots, "job-running")
            shot_running = True
    assert status == "succeeded", dashboard.client.job(job_id)
    assert seen == sorted(seen) and seen[-1] == 100, seen
    assert len([v for v in seen if 0 < v < 100]) >= 3, f"the bar did not move while the job ran: {seen}"

    video = until(lambda: browser.find_element(By.ID, "job-video"), 30, "the annotated video")
    until(lambda: browser.execute_script("return arguments[0].readyState >= 3", video), 30, "the video to load")
    browser.execute_script("arguments[0].play()", video)
    first = browser.execute_script("return arguments[0].currentTime", video)
    time.sleep(1.5)
    assert browser.execute_script("return arguments[0].currentTime", video) > first + 0.5, "the video does not play"

    expected = {(e["type"], e["start_s"]) for e in json.loads(
        dashboard.client.download(job_id, "road", approach_clip.parent).read_text())["events"]}
    buttons = browser.find_elements(By.CSS_SELECTOR, "#job-events button.event")
    assert expected and len(buttons) == len(expected), "the page lists the pipeline's events"
    finished = dashboard.client.job(job_id)
    shown_events = [(b.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "strong").text,
                     float(b.get_attribute("data-start") or "nan")) for b in buttons]
    assert shown_events == [(e["type"], e["start_s"]) for e in finished["events"]], "the record's events, in order"
    attempts = browser.find_elements(By.CSS_SELECTOR, "#job-attempts tr.attempt")
    assert len(attempts) == 1 and len(finished["attempt_history"]) == 1
    cells = [td.text for td in attempts[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "1" and cells[1] == finished["attempt_history"][0]["worker"] and cells[4] == "succeeded"
    assert cells[2] and cells[3] and cells[5] == "", cells
    target = buttons[-1]
    start_s = float(target.get_attribute("data-start") or "nan")
    browser.execute_script("arguments[0].pause(); arguments[0].currentTime = 0", video)
    target.click()
    until(lambda: abs(browser.execute_script("return arguments[0].currentTime", video) - start_s) < 0.75,
          5, f"the video to seek to the event at {start_s} s")
    assert start_s > 1.0

    for name in ("timeline", "contact_sheet"):
        img = browser.find_element(By.CSS_SELECTOR, f".media img.{name}")
        until(lambda img=img: browser.execute_script("return arguments[0].naturalWidth", img), 10, name)
    downloads = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul.downloads a")}
    assert downloads == set(record["outputs"]) | set(dashboard.client.job(job_id)["outputs"])
    browser.execute_script("arguments[0].pause()", video)
    shoot(browser, screenshots, "job")
    shoot(browser, screenshots, "dashboard", full=False)  # the README's picture (docs/images/dashboard.png)


def test_jobs_page_filters_searches_and_retries(
    dashboard: Deployment, browser: webdriver.Chrome, tmp_path: Path, screenshots: Path
) -> None:
    clip = make_video(tmp_path / "small.mp4", frames=20)
    front = dashboard.submit_file(clip, attributes={"camera": "front"})
    rear = dashboard.submit_file(clip, attributes={"camera": "rear"})
    for job in (front, rear):
        assert dashboard.wait_done(job["id"])["status"] == "succeeded"

    open_page(browser, dashboard.base_url, "jobs")
    shown = until(lambda: {front["id"], rear["id"]} <= set(r := rows(browser)) and r, 10, "both jobs")
    assert shown[front["id"]].get_attribute("data-status") == "succeeded"
    bar = shown[front["id"]].find_element(By.CSS_SELECTOR, ".progress")
    assert bar.get_attribute("aria-valuenow") == "100.0"
    shoot(browser, screenshots, "jobs")

    search = browser.find_element(By.NAME, "search")
    search.send_keys("camera=rear")
    until(lambda: set(rows(browser)) == {rear["id"]}, 5, "the attribute search")
    search.clear()
    search.send_keys(front["id"][:12])
    until(lambda: set(rows(browser)) == {front["id"]}, 5, "the id search")
    Select(browser.find_element(By.NAME, "status")).select_by_value("failed")
    until(lambda: not rows(browser), 5, "the status filter to hide succeeded jobs")
    Select(browser.find_element(By.NAME, "status")).select_by_value("succeeded")
    Select(browser.find_element(By.NAME, "pipeline")).select_by_value("detect")
    until(lambda: set(rows(browser)) == {front["id"]}, 5, "the status and pipeline filters")

    rows(browser)[front["id"]].find_element(By.CSS_SELECTOR, "button.retry").click()
    retried = until(lambda: browser.current_url.partition("#/jobs/")[2], 10, "the retried job's page")
    assert retried != front["id"]
    again = dashboard.wait_done(retried)
    assert (again["pipeline"], again["input"], again["attributes"]) == ("detect", front["input"], {"camera": "front"})
    assert again["status"] == "succeeded"


def test_job_page_shows_webhook_deliveries_and_replays_one(
    dashboard: Deployment, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        job = dashboard.submit_file(make_video(tmp_path / "hooked.mp4", frames=10), webhook={"url": receiver.url})
        assert dashboard.wait_done(job["id"])["status"] == "succeeded"
        receiver.wait(1)
        open_page(browser, dashboard.base_url, f"jobs/{job['id']}")
        table = until(lambda: browser.find_element(By.CSS_SELECTOR, ".deliveries table"), 10, "the deliveries")
        until(lambda: "delivered" in table.text and "job.succeeded" in table.text, 10, "the delivered event")
        before = len(receiver.received)
        table.find_element(By.XPATH, ".//tr[td[text()='job.succeeded']]//button").click()
        receiver.wait(before + 1)
        assert len(receiver.received) == before + 1, "Replay sent the event again"
        again = {h["webhook-id"] for h, _ in receiver.received}
        assert again == {f"evt_{job['id']}_succeeded"}, again
    finally:
        receiver.close()


def test_a_split_job_shows_its_segments_and_each_segment_links_back(
    dashboard: Deployment, browser: webdriver.Chrome, tmp_path: Path, screenshots: Path
) -> None:
    # 6 s with a keyframe each second, cut into 2 s segments the two workers share
    clip = make_video(tmp_path / "long.mp4", frames=150)
    job = dashboard.submit_file(clip, {"split": True, "segment_s": 2})
    done = dashboard.wait_done(job["id"])
    assert done["status"] == "succeeded", done.get("error")
    assert done["segments_total"] >= 2 and done["segments_done"] == done["segments_total"]

    open_page(browser, dashboard.base_url, f"jobs/{job['id']}")
    table = until(lambda: browser.find_element(By.ID, "job-segments"), 15, "the segments table")
    segments = table.find_elements(By.CSS_SELECTOR, "tr.segment")
    assert [s.get_attribute("data-index") for s in segments] == [str(i) for i in range(done["segments_total"])]
    assert {s.get_attribute("data-status") for s in segments} == {"succeeded"}
    assert all(s.find_element(By.CSS_SELECTOR, "[role=progressbar]").get_attribute("aria-valuenow") == "100.0"
               for s in segments)
    total = done["segments_total"]
    assert f"{total} of {total} done" in browser.find_element(By.CSS_SELECTOR, ".summary").text
    until(lambda: browser.find_element(By.ID, "job-video"), 15, "the stitched video")
    shoot(browser, screenshots, "split-job")

    segments[1].find_element(By.CSS_SELECTOR, "a").click()
    second = done["segments"][1]["id"]
    until(lambda: browser.find_element(By.ID, "job-id").text == second, 15, "segment 1's page")
    parent = until(lambda: browser.find_element(By.ID, "job-parent"), 15, "the link to the job")
    assert "segment 1" in parent.text
    parent.click()
    until(lambda: browser.find_element(By.ID, "job-id").text == job["id"], 15, "the job's page again")
    until(lambda: browser.find_element(By.ID, "job-segments"), 15, "its segments again")


def test_queue_page_shows_the_running_job_on_its_worker_and_jobs_page_cancels_it(
    dashboard: Deployment, browser: webdriver.Chrome, dashcam_video: Path, screenshots: Path
) -> None:
    long_job = dashboard.submit_file(dashcam_video, {"speed_mps": 27}, pipeline="road")
    dashboard.wait_for(long_job["id"], lambda r: r["status"] == "running" and r["progress"]["frames_done"] > 0)
    open_page(browser, dashboard.base_url, "queue")
    worker_row = until(lambda: next(r for r in browser.find_elements(By.CSS_SELECTOR, "#workers tr")
                                    if long_job["id"] in r.text), 10, "the running job on the workers table")
    assert "unknown" not in worker_row.text
    assert int(browser.find_element(By.ID, "hour-succeeded").text) >= 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 5
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline"), 5, "the sampled lines")
    shoot(browser, screenshots, "queue")

    open_page(browser, dashboard.base_url, "jobs")
    row = until(lambda: rows(browser)[long_job["id"]], 10, "the running job's row")
    row.find_element(By.CSS_SELECTOR, "button.cancel").click()
    until(lambda: rows(browser)[long_job["id"]].get_attribute("data-status") == "cancelled", 60, "the cancel")
    assert dashboard.client.job(long_job["id"])["status"] == "cancelled"


def test_queue_page_shows_the_autoscalers_last_decisions(dashboard: Deployment, browser: webdriver.Chrome) -> None:
    path = default_decisions_path(dashboard.home)
    open_page(browser, dashboard.base_url, "queue")
    until(lambda: browser.find_elements(By.ID, "queue-backlog"), 10, "the queue numbers")
    assert not browser.find_elements(By.ID, "autoscaler-decisions"), "no autoscaler ran: no decisions table"
    try:
        for i in range(25):  # as `framequeue autoscale` writes them beside this deployment
            write_decision(Tick(t=time.time() - 25 + i, waiting=10 + i, in_flight=2, current=i % 4,
                                desired=(i + 1) % 4, endpoints=0, reason=f"tick {i}"), path)
        table = until(lambda: browser.find_element(By.ID, "autoscaler-decisions"), 10, "the decisions table")
        shown = table.find_elements(By.CSS_SELECTOR, "tr.decision")
        assert len(shown) == 20, "the last 20 decisions"
        newest = [td.text for td in shown[0].find_elements(By.TAG_NAME, "td")]
        assert newest[1:] == ["34", "2", "0", "1", "tick 24"], newest
        assert shown[-1].find_element(By.CSS_SELECTOR, "td.reason").text == "tick 5"
    finally:
        path.unlink(missing_ok=True)


def test_models_page_shows_versions_and_ab_weights(
    dashboard: Deployment, browser: webdriver.Chrome, screenshots: Path
) -> None:
    made = [dashboard.client.register_model_endpoint("lstr", 1, f"http://127.0.0.1:{port}", weight)
            for port, weight in ((9, 3.0), (10, 1.0))]
    try:
        open_page(browser, dashboard.base_url, "models")
        table = until(lambda: browser.find_element(By.CSS_SELECTOR, "#model-endpoints table"), 10, "the registry")
        shares = [r.text.split()[-1] for r in table.find_elements(By.CSS_SELECTOR, "tr")[1:]]
        assert sorted(shares) == ["25%", "75%"], shares
        repo = browser.find_element(By.CSS_SELECTOR, "#models table").text
        assert "yolox_nano" in repo and "lstr" in repo and "onnxruntime" in repo
        outcomes = until(lambda: {r.get_attribute("data-version"): r.text.split() for r in
                                  browser.find_elements(By.CSS_SELECTOR, "#model-outcomes tr[data-version]")},
                         10, "the outcomes per version")
        jobs = dashboard.client.jobs(limit=500)["jobs"]
        used = [j for j in jobs if j["params"].get("model") == "yolox_nano"]
        assert outcomes["yolox_nano v1"][2:4] == [str(len(used)), str(sum(j["status"] == "succeeded" for j in used))]
        shoot(browser, screenshots, "models")
    finally:
        for endpoint in made:
            dashboard.client.remove_model_endpoint(endpoint["id"])


def test_a_key_given_once_in_the_page_opens_an_authenticated_deployment(
    dashboard: Deployment, browser: webdriver.Chrome
) -> None:
    """Runs last in this module: the first key ends development mode for the deployment."""
    key = dashboard.cli("keys", "create", "--tenant", "fleet", "--scope", "submit").stdout.strip()
    with httpx.Client(base_url=dashboard.base_url) as http:
        until(lambda: http.get("/v1/queue").status_code == 401, 5, "authentication to turn on")
        assert http.get("/ui/").status_code == 200
        mine = http.get("/v1/queue", headers={"Authorization": f"Bearer {key}"}).json()
        assert sum(mine["last_hour"]["succeeded"]) == 0 and mine["running"] == [], "another tenant's jobs"
    open_page(browser, dashboard.base_url, "jobs")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    dialog = until(lambda: (d := browser.find_element(By.ID, "key-dialog")).get_attribute("open") is not None and d,
                   10, "the key prompt")
    dialog.find_element(By.ID, "key-input").send_keys(key)
    dialog.find_element(By.CSS_SELECTOR, "button[value=save]").click()
    until(lambda: "0 of 0 newest" in browser.find_element(By.CSS_SELECTOR, ".filters").text, 10,
          "the tenant's (empty) job list")
    assert browser.execute_script("return sessionStorage.getItem('framequeue.api_key')") == key
