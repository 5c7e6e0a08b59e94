from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.mediagen import make_video


@pytest.fixture(scope="module")
def yolox_model_dir() -> Path:
    return require_shared("models", "yolox_nano")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, yolox_model_dir: Path) -> Iterator[Deployment]:
    """`framequeue up` with two workers, as a user starts it."""
    dep = Deployment(tmp_path_factory.mktemp("up"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    dep.register_yolox(yolox_model_dir)
    dep.start("up", "up", "--workers", "2")
    dep.wait_ready()
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "small.mp4", frames=20)
