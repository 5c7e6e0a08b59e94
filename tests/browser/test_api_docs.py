"""/docs (Swagger UI) and /redoc (ReDoc) render in a real browser from the API's own assets, on a machine that
reaches no CDN: every route is drawn, with its schemas, and the browser fetched nothing from another origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.acceptance.deployment import Deployment
from tests.browser.pages import until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(tmp_path_factory.mktemp("apidocs"))
    dep.start("api", "api")
    dep.wait_ready()
    yield dep
    dep.stop()


def fetched(browser: webdriver.Chrome) -> list[str]:
    entries: list[Any] = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    return [str(e) for e in entries]


def test_swagger_ui_draws_every_route_from_local_assets(
    api: Deployment, browser: webdriver.Chrome, screenshots: Path
) -> None:
    browser.get(f"{api.base_url}/docs")
    operations = until(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) >= 29 and
                       browser.find_elements(By.CSS_SELECTOR, ".opblock"), 30, "Swagger UI's operations")
    assert any("/v1/jobs" in op.text for op in operations)
    assert browser.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # the API-key schemes are offered
    until(lambda: "JobRecord" in browser.find_element(By.TAG_NAME, "body").text or None, 10, "the schemas")
    browser.save_screenshot(str(screenshots / "swagger-ui.png"))
    assert [u for u in fetched(browser) if not u.startswith(api.base_url)] == []


def test_redoc_draws_the_api_from_local_assets(api: Deployment, browser: webdriver.Chrome, screenshots: Path) -> None:
    browser.get(f"{api.base_url}/redoc")
    until(lambda: "JobRecord" in browser.find_element(By.TAG_NAME, "body").text or None, 60, "ReDoc's page")
    until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='tag/']")) >= 5, 10, "the tags")
    browser.save_screenshot(str(screenshots / "redoc.png"))
    outside = [u for u in fetched(browser) if not u.startswith((api.base_url, "blob:", "data:"))]
    assert outside == []
