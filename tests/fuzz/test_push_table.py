"""Property tests of tasks/pushes.py's table of push kinds: whatever payload a stored push has,
its parser gives records or `ReportFormatError`, which the sweep records as "malformed"; any other
exception would fail the push's every sweep."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.pushes import PUSH_KINDS
from tests.fuzz.strategies import fields
from tests.fuzz.test_vendor_pushes import (
    CHUANGRUI_MOS,
    CHUANGRUI_REPORTS,
    FIVEC_PAGES,
    VEESING_AUDITS,
    VEESING_PUSHES,
    VEESING_VOICE_RECEIPTS,
    check_records,
)
from worker.errors import ReportFormatError


def stored_page(page: str, encoding: str) -> dict[str, str]:
    """A 5C report page as tasks/reports.py stores it."""
    return {"body_base64": base64.b64encode(page.encode(encoding)).decode(), "encoding": encoding}


SAMPLES: dict[tuple[str, str], tuple[dict[str, str], ...]] = {
    ("veesing", "sms"): VEESING_PUSHES,
    ("veesing", "mms"): (*VEESING_PUSHES[:2], *VEESING_AUDITS),
    ("veesing", "voice"): VEESING_VOICE_RECEIPTS,
    ("chuangrui", "report"): CHUANGRUI_REPORTS,
    ("chuangrui", "mo"): CHUANGRUI_MOS,
    ("fivec", "reports"): tuple(
        stored_page(page, encoding) for page in FIVEC_PAGES for encoding in ("utf-8", "gbk")
    ),
}


def test_every_kind_of_push_is_fuzzed() -> None:
    assert set(SAMPLES) == set(PUSH_KINDS)


@pytest.mark.parametrize("kind", sorted(PUSH_KINDS), ids="-".join)
@given(data=st.data())
def test_a_stored_push_parses_or_is_malformed(kind: tuple[str, str], data: st.DataObject) -> None:
    payload = data.draw(fields(*SAMPLES[kind]), label="payload")
    try:
        records = PUSH_KINDS[kind].parse(payload)
    except ReportFormatError:
        return
    check_records(records)


@pytest.mark.parametrize(
    "payload",
    [{}, {"body_base64": "not base64!", "encoding": "utf-8"}, {"body_base64": "abc"}],
    ids=["missing", "not base64", "bad padding"],
)
def test_a_5c_page_that_is_not_stored_base64_is_malformed(payload: dict[str, str]) -> None:
    with pytest.raises(ReportFormatError, match="body_base64"):
        PUSH_KINDS["fivec", "reports"].parse(payload)
