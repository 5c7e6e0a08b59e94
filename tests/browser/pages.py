"""What the tests do to a dashboard page: open it, wait on it, read it, keep its picture."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")


def open_page(browser: webdriver.Chrome, base_url: str, route: str) -> None:
    browser.get(f"{base_url}/ui/#/{route}")
    until(lambda: browser.find_element(By.ID, "main").get_attribute("data-page"), 15, f"page {route}")


def until(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """The first truthy answer of probe (exceptions count as not yet), polled every 0.1 s."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as exc:  # an element not there yet, a stale one after a re-render
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def rows(browser: webdriver.Chrome) -> dict[str, WebElement]:
    """The jobs table's rows by job id."""
    return {
        r.get_attribute("data-id") or "": r
        for r in browser.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")
    }


def shoot(browser: webdriver.Chrome, folder: Path, name: str, *, full: bool = True) -> Path:
    """A screenshot of the page, full height unless not `full` (the window grows to the document, then
    shrinks back)."""
    size = browser.get_window_size()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    if full:
        browser.set_window_size(size["width"], min(max(size["height"], int(height) + 120), 4000))
    browser.execute_script("window.scrollTo(0, 0)")
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    browser.set_window_size(size["width"], size["height"])
    assert path.stat().st_size > 10_000, "an empty screenshot"
    return path
