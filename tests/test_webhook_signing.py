"""The README's signature check, run as written against the header herald makes."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from worker.store.webhooks import StatusChange
from worker.webhook_signing import signature_header
from worker.webhooks import webhook_body

README = Path(__file__).parent.parent / "README.md"
SECRET = "whsec-test-0123456789abcdef"


def readme_check() -> Any:
    """`verified_events` from README.md, "Checking the signature"."""
    section = README.read_text().split("### Checking the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    return namespace["verified_events"]


def body() -> bytes:
    change = StatusChange(
        event_id=7,
        job_id="3f2a9c0e8b7d4e1f9a6b5c4d3e2f1a0b",
        delivery_id=3,
        phone="13800138000",
        channel="sms",
        vendor="veesing",
        status="delivered",
        previous_status="submitted",
        at=datetime(2026, 12, 1, 2, 0, 7, tzinfo=UTC),
        detail="report DELIVRD",
    )
    return webhook_body([change])


def test_a_webhook_herald_signed_passes_the_readme_check() -> None:
    verified_events = readme_check()
    header = signature_header(body(), secret=SECRET, timestamp=int(time.time()))

    events = verified_events(body(), header, SECRET)

    assert events == json.loads(body())["events"]
    assert events[0]["status"] == "delivered"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"events": []}'}, "bad signature"),
        ({"secret": "another-secret-0123456789"}, "bad signature"),
        ({"age_s": 3600}, "timestamp too old"),
    ],
)
def test_the_readme_check_refuses_what_herald_did_not_sign_now(
    change: dict[str, Any], reason: str
) -> None:
    verified_events = readme_check()
    signed_at = int(time.time()) - change.get("age_s", 0)
    header = signature_header(body(), secret=change.get("secret", SECRET), timestamp=signed_at)

    with pytest.raises(ValueError, match=reason):
        verified_events(change.get("body", body()), header, SECRET)
