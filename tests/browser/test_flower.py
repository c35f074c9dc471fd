"""Browser: Flower, behind its basic auth, lists the system's tasks with job ids only.

The whole system runs (sandbox, API with an API key, worker, beat) with Flower started as
`herald up` starts it (basic auth from its environment). A few jobs go through: SMS to two
numbers, SMS through Chuangrui, a voice code. Then headless Chromium opens Flower's task list
with the credentials and the test checks what a person would see: each send task is listed, its
only argument is its job id, and no phone number, message content or secret is anywhere on the
page. A screenshot is saved to tests/artifacts/flower-tasks.png.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import screenshot
from tests.conftest import CALLBACK_TOKEN
from tests.integration.conftest import System
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]

API_KEY = f"api-key-{secrets.token_hex(8)}"
VEESING_APP_KEY = f"veesing-app-key-{secrets.token_hex(8)}"
FLOWER_AUTH = ("herald", f"flower-password-{secrets.token_hex(8)}")
SYSTEM_ENV = {
    "HERALD_API_KEYS": f"producer={API_KEY}",
    "HERALD_VEESING_APP_KEY": VEESING_APP_KEY,
    "SANDBOX_VEESING_APP_KEY": VEESING_APP_KEY,
    "HERALD_FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
}
SECRETS = [API_KEY, VEESING_APP_KEY, FLOWER_AUTH[1], CALLBACK_TOKEN, "sandbox-pwd"]
PHONES = ["13722220001", "13722220002", "13722220003", "13722220004"]
CONTENT = "【Herald】您的订单 7731 已发货"
VOICE_CODE = "582914"
JOB_ARGS = re.compile(r"^\['([0-9a-f]{32})'\]$")


@pytest.fixture(scope="module")
def flower(system: System) -> Iterator[str]:
    """Flower with basic auth, started before any job so that it sees every task."""
    port = free_port()
    child = system.start_flower(port, ":".join(FLOWER_AUTH))
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert child.alive(), child.log()[-3000:]
        try:
            return httpx.get(f"{url}/api/workers", auth=FLOWER_AUTH, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout_s=60, what="Flower")
    yield url


def test_flower_lists_the_tasks_with_job_ids_only(
    system: System, flower: str, browser: WebDriver
) -> None:
    jobs = [
        system.send_sms(PHONES[:2], CONTENT),
        system.send_sms([PHONES[2]], CONTENT, vendor="chuangrui"),
        system.submit(
            "/v1/voice",
            {"to": [PHONES[3]], "template_id": "724", "variables": VOICE_CODE, "kind": "code"},
        ),
    ]
    system.wait_settled(jobs, timeout_s=60)
    assert httpx.get(f"{flower}/tasks", timeout=10).status_code == 401

    credentials = base64.b64encode(":".join(FLOWER_AUTH).encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {credentials}"}}
    )
    browser.get(f"{flower}/tasks?name=herald.send_job")

    def listed(driver: WebDriver) -> list[str]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#tasks-table tbody tr[id]")
        return [row.get_attribute("id") or "" for row in rows] if len(rows) >= len(jobs) else []

    try:
        task_ids = WebDriverWait(browser, 60).until(listed)
    except TimeoutException:
        screenshot(browser, "flower-tasks-failed")
        body = browser.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"Flower never listed the {len(jobs)} sends:\n{body[:3000]}") from None
    table = browser.find_element(By.ID, "tasks-table").text
    assert table.count("herald.send_job") == len(task_ids)
    pages = [browser.find_element(By.TAG_NAME, "body").text + browser.page_source]
    assert screenshot(browser, "flower-tasks").stat().st_size > 10_000

    shown_jobs = set()
    for task_id in task_ids:
        browser.get(f"{flower}/task/{task_id}")
        args, kwargs = (
            browser.find_element(By.XPATH, f"//dt[normalize-space()='{label}']/../dd").text
            for label in ("Arguments", "Keyword arguments")
        )
        match = JOB_ARGS.match(args.strip())
        assert match is not None and kwargs.strip() == "{}", (args, kwargs)
        shown_jobs.add(match.group(1))
        pages.append(browser.find_element(By.TAG_NAME, "body").text + browser.page_source)
    assert shown_jobs == set(jobs)
    screenshot(browser, "flower-task")

    for page in pages:
        for what in [*PHONES, *(p[3:] for p in PHONES), CONTENT, "已发货", VOICE_CODE, *SECRETS]:
            assert what not in page, what
