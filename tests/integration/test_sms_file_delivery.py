"""Integration: a campaign from a file and personalised SMS, through real processes.

`herald send sms --to-file` runs as a child process against the module's API, worker, beat and
sandbox, and follows its job with the progress bar until every recipient is final; the sandbox's
send log shows what each vendor call carried.
"""

from __future__ import annotations

import os
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.integration.conftest import System
from tests.support import HERALD
from worker.enums import FINAL
from worker.store import status_counts_of_jobs

pytestmark = pytest.mark.integration
CAMPAIGN_SIZE = int(os.environ.get("HERALD_FILE_CAMPAIGN_SIZE", "500"))
"""500 in CI (several claims of 100 through real processes); the issue's 5,000 with
HERALD_FILE_CAMPAIGN_SIZE=5000. The 5,000-line file with bad lines is checked without workers
(tests/test_sms_file.py)."""
GROUPS = ["甲", "乙", "丙", "丁", "戊"]
SYSTEM_ENV = {"HERALD_MAX_RECIPIENTS": str(CAMPAIGN_SIZE)}


def test_a_file_campaign_is_one_job_and_the_progress_bar_reaches_100_percent(
    system: System, engine: Engine, tmp_path: Path
) -> None:
    numbers = [f"158{i:08d}" for i in range(CAMPAIGN_SIZE)]
    rows = [f"{n},{GROUPS[i % len(GROUPS)]}" for i, n in enumerate(numbers)]
    path = tmp_path / "campaign.csv"
    path.write_text("\n".join(["phone,group", *rows, rows[0]]) + "\n", encoding="utf-8")

    sent = subprocess.run(
        [HERALD, "send", "sms", "--to-file", str(path), "--content", "【Herald】{group}组您好"],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert sent.returncode == 0, f"{sent.stderr}\n{system.logs_tail()}"
    job_id = sent.stdout.strip()
    assert f"{CAMPAIGN_SIZE} recipients (1 duplicate dropped)" in sent.stderr
    assert "100%" in sent.stderr and f"{CAMPAIGN_SIZE}/{CAMPAIGN_SIZE}" in sent.stderr
    with Session(engine) as session:
        counts = status_counts_of_jobs(session, [job_id]).get(job_id, {})
    assert sum(counts.values()) == CAMPAIGN_SIZE
    assert set(counts) <= set(FINAL), counts
    for status, count in counts.items():
        assert f"{status.value} {count}" in sent.stderr
    texts_by_ref: dict[str, set[str]] = defaultdict(set)
    sends = [s for s in system.sandbox_sends() if s["phone"].startswith("158")]
    for s in sends:
        texts_by_ref[s["ref"]].add(s["content"])
    assert sorted(s["phone"] for s in sends) == numbers
    assert all(len(texts) == 1 for texts in texts_by_ref.values())
    assert {s["content"] for s in sends} == {f"【Herald】{g}组您好" for g in GROUPS}


def test_each_distinct_text_goes_in_its_own_vendor_call_and_equal_texts_together(
    system: System,
) -> None:
    codes = {"13300133001": "1111", "13300133002": "2222", "13300133003": "1111"}
    to = [{"phone": phone, "values": {"code": code}} for phone, code in codes.items()]
    to.append({"phone": "13300133004", "values": {"code": "2222"}})

    job_id = system.submit("/v1/sms", {"to": to, "content": "【Herald】验证码{code}"})
    (job,) = system.wait_settled([job_id], timeout_s=30)

    refs = {r["phone"]: r["vendor_ref"] for r in job["recipients"]}
    sends = {s["phone"]: s for s in system.sandbox_sends() if s["phone"] in refs}
    assert {p: s["content"] for p, s in sends.items()} == {
        "13300133001": "【Herald】验证码1111",
        "13300133002": "【Herald】验证码2222",
        "13300133003": "【Herald】验证码1111",
        "13300133004": "【Herald】验证码2222",
    }
    assert refs["13300133001"] == refs["13300133003"] != refs["13300133002"]
    assert refs["13300133002"] == refs["13300133004"]
    assert {s["ref"] for s in sends.values()} == {refs["13300133001"], refs["13300133002"]}
