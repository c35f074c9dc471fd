"""Browser: the API's own `/docs` (Swagger UI) and `/redoc` render every operation in headless
Chromium, with nothing fetched but from the API itself.

The API runs as a child process (uvicorn, as `herald up` and compose run it) on a store of its
own; Chromium resolves no host name but 127.0.0.1, and every request the page made is checked to
have gone to the API (or been blocked by the page's Content-Security-Policy: ReDoc's logo).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import requests_sent_elsewhere, screenshot
from tests.support import PYTHON, free_port, start_child, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PAGE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("docs-api")
    port = free_port()
    env = {**os.environ, "HERALD_DATABASE_URL": f"sqlite:///{folder / 'store.db'}"}
    child = start_child(
        "api",
        [PYTHON, "-m", "uvicorn", "worker.api:api", "--host", "127.0.0.1", "--port", str(port)],
        env,
        folder / "logs",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", child)
        yield url
    finally:
        child.stop()


def documented_operations(api_url: str) -> set[tuple[str, str]]:
    spec: dict[str, Any] = httpx.get(f"{api_url}/openapi.json", timeout=10).json()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_swagger_ui_renders_every_operation_offline(browser: WebDriver, api_url: str) -> None:
    expected = documented_operations(api_url)
    requests_sent_elsewhere(browser, api_url)  # what the browser did on its own at start

    browser.get(f"{api_url}/docs")

    def rendered(driver: WebDriver) -> set[tuple[str, str]]:
        blocks = driver.find_elements(By.CSS_SELECTOR, ".opblock")
        found = {
            (
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip(),
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.strip(),
            )
            for block in blocks
        }
        return found if found >= expected else set()

    shown = WebDriverWait(browser, PAGE_TIMEOUT_S).until(rendered)
    assert {("POST", "/v1/sms"), ("POST", "/v1/mms"), ("POST", "/v1/voice")} <= shown
    tags = {t.text.strip() for t in browser.find_elements(By.CSS_SELECTOR, ".opblock-tag")}
    assert {"producers", "operators", "vendor callbacks", "health"} <= {
        t.split("\n")[0] for t in tags
    }
    assert browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")
    assert requests_sent_elsewhere(browser, api_url) == []
    assert screenshot(browser, "api-docs-swagger").stat().st_size > 10_000


def test_redoc_renders_every_operation_offline(browser: WebDriver, api_url: str) -> None:
    expected = {path for _method, path in documented_operations(api_url)}
    requests_sent_elsewhere(browser, api_url)  # what the browser did on its own at start

    browser.get(f"{api_url}/redoc")

    def rendered(driver: WebDriver) -> bool:
        text = driver.find_element(By.TAG_NAME, "body").text
        return "POST /v1/sms" in " ".join(text.split()) or all(p in text for p in expected)

    WebDriverWait(browser, PAGE_TIMEOUT_S).until(rendered)
    operations = browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")
    assert len(operations) >= len(expected)
    assert requests_sent_elsewhere(browser, api_url) == []
    assert screenshot(browser, "api-docs-redoc").stat().st_size > 10_000
