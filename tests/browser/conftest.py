from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.acceptance.deployment import Deployment
from tests.browser.chrome import require_chromium, start_chromium
from tests.conftest import require_shared
from tests.roadgen import Scene, approach_distance_m, write_approach

#: the synthetic approach of tests/roadgen.py: a lead car closing in, so the road pipeline finds events
SCENE = Scene(focal_px=1400.0, camera_height_m=1.2, car_width_m=1.8, fps=25)
#: its first 6 s (closing from 50 m to 26 m at 4 m/s: under two seconds behind at 20 m/s from 2.5 s on)
CLIP_S = 6.0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    require_chromium()
    driver = start_chromium(tmp_path_factory.mktemp("downloads"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each page's screenshot goes: a test artefact (pytest's tmp dir, kept for the last 3 runs)."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """`framequeue up` (open API: development mode) with YOLOX-nano and LSTR registered, as the demo does."""
    models = require_shared("models")
    dep = Deployment(tmp_path_factory.mktemp("dashboard"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    dep.register_yolox(models / "yolox_nano")
    dep.register_lstr(models / "lstr")
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
def approach_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clip = tmp_path_factory.mktemp("media") / "approach.mp4"
    write_approach(clip, require_shared("media", "solidWhiteRight.mp4"), SCENE, approach_distance_m, CLIP_S)
    return clip
