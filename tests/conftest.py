"""Shared fixtures: where ../shared lives, and a skip that turns into a failure in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import s3server

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("FQ_SHARED_DIR", REPO_ROOT.parent / "shared"))


def require_shared(*parts: str) -> Path:
    """Path inside ../shared; skips locally when absent, fails in CI where it must be present."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing; CI must have ../shared beside the checkout")
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def dashcam_video() -> Path:
    return require_shared("media", "solidWhiteRight.mp4")


@pytest.fixture
def yolox_dir() -> Path:
    return require_shared("models", "yolox_nano")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """http://127.0.0.1:PORT of an S3-protocol server (moto) in its own process, for the whole session."""
    s3server.require_s3()
    yield s3server.endpoint()
    s3server.stop()
