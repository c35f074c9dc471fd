"""Browser: the operator page follows a 2,000-number campaign to 100%, and its counts are the
store's.

The whole system runs (sandbox with receipts pushed back, API with an API key, worker, beat).
A campaign file of 2,000 numbers is sent with `herald send sms --to-file` (one job), through
Chuangrui, whose sandbox pushes its
receipts a batch at a time (Veesing's pushes one per number: 2,000 pushes at once, more than a
machine shared by several test runs answers in time); headless Chromium opens `/ui` with the API key
as the HTTP Basic password and stays on the page, whose own script refreshes it, until the job's
progress bar shows 100%. The counts by status the page shows are then compared with a GROUP BY
over the store, on the jobs list and on the job's own page; every number on the pages is masked,
and nothing was fetched but from the API. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from tests.browser.conftest import requests_sent_elsewhere, screenshot
from tests.integration.conftest import System
from tests.support import HERALD
from worker.store import Delivery

pytestmark = [pytest.mark.integration, pytest.mark.browser]

API_KEY = f"api-key-{secrets.token_hex(8)}"
CAMPAIGN_SIZE = 2000
SYSTEM_ENV = {
    "HERALD_API_KEYS": f"campaigns={API_KEY}",
    "HERALD_MAX_RECIPIENTS": str(CAMPAIGN_SIZE),
    # The production timeouts, not the integration suite's short ones: twenty 100-number calls
    # to a sandbox on a busy machine may be slow, and a call cut short by its own read timeout or
    # by the task limit leaves its recipients `unknown`, which no progress bar can finish.
    "HERALD_HTTP_READ_TIMEOUT_S": "60",
    "HERALD_TASK_TIME_LIMIT_S": "120",
    "HERALD_SENDING_TIMEOUT_S": "180",
}
WORKER_CONCURRENCY = 2
PHONES = [f"137{n:08d}" for n in range(10_000, 10_000 + CAMPAIGN_SIZE)]
CONTENT = "【Herald】双十二预售开启，回TD退订"
VENDOR = "chuangrui"
SETTLE_TIMEOUT_S = 600


def store_counts(engine: Engine, job_id: str) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.status, func.count())
            .where(col(Delivery.job_id) == job_id)
            .group_by(col(Delivery.status))
        )
        return {str(status): int(count) for status, count in rows}


def submitted_count(engine: Engine, job_id: str) -> int:
    with Session(engine) as session:
        return int(
            session.exec(
                select(func.count()).where(
                    col(Delivery.job_id) == job_id, col(Delivery.submitted_at).is_not(None)
                )
            ).one()
        )


def shown_counts(container: WebDriver | WebElement, selector: str) -> dict[str, int]:
    """The counts a part of the page shows, each checked against its visible text."""
    counts: dict[str, int] = {}
    for element in container.find_elements(By.CSS_SELECTOR, selector):
        status = element.get_attribute("data-status") or ""
        count = int(element.get_attribute("data-count") or -1)
        assert element.text.strip() == f"{status} {count:,}", element.text
        counts[status] = count
    return counts


def send_campaign_file(system: System, folder: Path) -> str:
    """`herald send sms --to-file` on a CSV of the campaign's numbers; the job's id."""
    path = folder / "campaign.csv"
    path.write_text("phone\n" + "\n".join(PHONES) + "\n", encoding="utf-8")
    command = [HERALD, "send", "sms", "--to-file", str(path), "--content", CONTENT]
    sent = subprocess.run(
        [*command, "--vendor", VENDOR, "--no-wait"],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sent.returncode == 0, sent.stderr
    assert f"{CAMPAIGN_SIZE} recipients" in sent.stderr
    return sent.stdout.strip()


def test_the_operator_page_follows_a_campaign_to_100_percent(
    system: System, engine: Engine, browser: WebDriver, tmp_path: Path
) -> None:
    job_id = send_campaign_file(system, tmp_path)
    assert httpx.get(f"{system.api_url}/ui", timeout=10).status_code == 401

    credentials = base64.b64encode(f"operator:{API_KEY}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {credentials}"}}
    )
    requests_sent_elsewhere(browser, system.api_url)  # what the browser did on its own at start
    browser.get(f"{system.api_url}/ui")
    row_selector = f'tr[data-job="{job_id}"]'
    seen: list[str] = []

    def progress(driver: WebDriver) -> bool:
        try:
            row = driver.find_element(By.CSS_SELECTOR, row_selector)
            shown = row.find_element(By.CSS_SELECTOR, "[data-progress]")
            value = shown.get_attribute("data-progress") or ""
            percent = shown.find_element(By.CSS_SELECTOR, ".percent").text
        except StaleElementReferenceException:  # the page's script swapped the table meanwhile
            return False
        assert percent == f"{value}%"
        if not seen or seen[-1] != value:
            seen.append(value)
        return value == "100"

    try:
        WebDriverWait(browser, SETTLE_TIMEOUT_S, poll_frequency=1).until(progress)
    except TimeoutException:
        screenshot(browser, "operator-jobs-failed")
        raise AssertionError(
            f"progress never reached 100% (seen {seen}); store: "
            f"{store_counts(engine, job_id)}\n{system.logs_tail()}"
        ) from None
    assert screenshot(browser, "operator-jobs").stat().st_size > 10_000
    assert len(seen) > 1, "the page never refreshed itself"

    expected = store_counts(engine, job_id)
    assert sum(expected.values()) == CAMPAIGN_SIZE
    row = browser.find_element(By.CSS_SELECTOR, row_selector)
    assert shown_counts(row, "[data-status]") == expected
    assert row.find_element(By.CSS_SELECTOR, ".total").text == f"{CAMPAIGN_SIZE:,}"
    assert row.find_element(By.CSS_SELECTOR, ".job-status").text == "completed"

    browser.find_element(By.CSS_SELECTOR, f"{row_selector} a.job-link").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#recipients-table tbody tr")
    )
    assert shown_counts(browser, "#job-summary [data-status]") == expected
    assert (
        browser.find_element(By.CSS_SELECTOR, "#job-summary [data-progress]").get_attribute(
            "data-progress"
        )
        == "100"
    )
    recipients = browser.find_elements(By.CSS_SELECTOR, "#recipients-table tbody tr")
    assert len(recipients) == 100
    first_phone = recipients[0].find_element(By.CSS_SELECTOR, ".phone").text
    assert first_phone == f"{PHONES[0][:3]}****{PHONES[0][-4:]}"
    page = browser.page_source
    assert not any(phone in page for phone in PHONES)
    assert screenshot(browser, "operator-job").stat().st_size > 10_000

    browser.find_element(By.CSS_SELECTOR, 'a[rel="next"]').click()
    WebDriverWait(browser, 30).until(lambda d: "page=2" in d.current_url)
    first_of_page_two = browser.find_element(By.CSS_SELECTOR, "#recipients-table .phone").text
    assert first_of_page_two == f"{PHONES[100][:3]}****{PHONES[100][-4:]}"

    browser.get(f"{system.api_url}/ui/vendors")
    sent = browser.find_element(By.CSS_SELECTOR, f'tr[data-product="{VENDOR}:sms"] .sent-today')
    assert int(sent.get_attribute("data-sent") or -1) == submitted_count(engine, job_id) > 0
    assert screenshot(browser, "operator-vendors").stat().st_size > 10_000
    assert requests_sent_elsewhere(browser, system.api_url) == []
