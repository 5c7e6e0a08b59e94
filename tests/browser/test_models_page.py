"""The Models page's outcomes per version in a real headless Chromium against its own `framequeue up`: what
the version's succeeded jobs found per minute of the video they processed. A road job (events, no box
count), a detect job (boxes, no events) and a detect job on a still (no video seconds: left out of both
rates) run on YOLOX-nano v1; the page shows events/min and detections/min as the records add up."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.acceptance.deployment import Deployment
from tests.browser.conftest import SCENE
from tests.browser.pages import open_page, shoot, until
from tests.conftest import require_shared

pytestmark = pytest.mark.slow

ROAD_PARAMS = {"speed_mps": 20.0, "camera": {"focal_px": 1400.0}, "following": {"profile": "two_second_rule"}}


@pytest.mark.timeout(600)
def test_outcomes_show_events_and_detections_per_minute_of_video(
    dashboard: Deployment, browser: webdriver.Chrome, approach_clip: Path, screenshots: Path
) -> None:
    still = require_shared("media", "stills", "solidWhiteRight.jpg")
    submitted = [
        dashboard.submit_file(approach_clip, ROAD_PARAMS, pipeline="road"),
        dashboard.submit_file(approach_clip, {"sample_fps": 5}),
        dashboard.submit_file(still),
    ]
    done = [dashboard.wait_done(job["id"], timeout_s=400) for job in submitted]
    assert [r["status"] for r in done] == ["succeeded"] * 3, [r["error"] for r in done]
    road, detect, photo = done
    # seconds of video: the frames processed at the clip's 25 fps; none for the still
    for record in (road, detect):
        assert record["params"]["model"] == "yolox_nano" and record["params"]["model_version"] == 1
        assert record["video_s"] == pytest.approx(record["progress"]["frames_done"] / SCENE.fps)
        assert record["video_s"] == pytest.approx(6.0)
    assert photo["video_s"] is None and photo["detections_total"] > 0, photo
    assert road["events_total"] == len(road["events"]) > 0 and road["detections_total"] is None, road
    assert detect["detections_total"] > 0 and detect["events_total"] is None, detect

    events_per_min = road["events_total"] / (road["video_s"] / 60)
    detections_per_min = detect["detections_total"] / (detect["video_s"] / 60)
    open_page(browser, dashboard.base_url, "models")
    row = until(lambda: browser.find_element(By.CSS_SELECTOR, '#model-outcomes tr[data-version="yolox_nano v1"]'),
                10, "the outcomes of yolox_nano v1")
    head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#model-outcomes th")]
    cells = dict(zip(head, (td.text for td in row.find_elements(By.TAG_NAME, "td")), strict=True))
    assert (cells["Jobs"], cells["Succeeded"], cells["Failed"]) == ("3", "3", "0"), cells
    assert cells["Events / min of video"] == f"{events_per_min:.1f}", (cells, road["events_total"])
    assert cells["Detections / min of video"] == f"{detections_per_min:.1f}", (cells, detect["detections_total"])
    shoot(browser, screenshots, "models-outcomes")
