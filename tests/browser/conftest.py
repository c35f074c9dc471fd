"""Browser tests: Debian's headless Chromium, driven by selenium through Debian's chromedriver.

Nothing is downloaded: selenium is given both programs' paths, so its driver manager never
runs. Chromium resolves no host name but 127.0.0.1 (`--host-resolver-rules`), so a page that
needed the internet would show it here. Where Chromium is missing, the tests skip (and fail
under CI, whose .ci/run installs it). Screenshots go to tests/artifacts/ (not in git).

The Flower and operator-page tests run the whole system: the integration suite's `system` fixture
is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.conftest import engine, system
from tests.support import need

__all__ = ["engine", "system"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1400,2400",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium with a new, empty profile."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        need("Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save the page as tests/artifacts/<name>.png; its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    return path


def requests_sent_elsewhere(driver: WebDriver, origin: str) -> list[str]:
    """The http(s) requests the pages made since the last call to anything but `origin`,
    except those the browser itself blocked (a Content-Security-Policy): nothing of those
    left the machine."""
    urls: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [
        url
        for request_id, url in urls.items()
        if url.startswith(("http:", "https:"))
        and not url.startswith(origin)
        and request_id not in blocked
    ]
