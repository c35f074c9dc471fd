"""Integration smoke: one job of each product reaches its final state through the sandbox."""

from __future__ import annotations

import base64

import pytest

from tests.integration.conftest import System

pytestmark = pytest.mark.integration
GIF = base64.b64encode(b"GIF89a" + b"\x00" * 64).decode()


def test_a_veesing_mms_is_created_audited_sent_and_delivered(system: System) -> None:
    job_id = system.submit(
        "/v1/mms",
        {
            "to": ["13800000101"],
            "title": "双十一",
            "frames": [{"seconds": 5, "text": "欢迎", "media": {"type": "gif", "base64": GIF}}],
        },
    )
    (job,) = system.wait_settled([job_id], timeout_s=20)
    assert job["recipients"][0]["status"] == "delivered", job
    assert job["content_ref"]


def test_a_voice_code_is_delivered_with_its_talk_time(system: System) -> None:
    job_id = system.submit(
        "/v1/voice",
        {"to": ["13800000102"], "template_id": "724", "variables": "1234", "kind": "code"},
    )
    (job,) = system.wait_settled([job_id], timeout_s=20)
    assert job["recipients"][0]["status"] == "delivered", job
    assert job["recipients"][0]["report_detail"]["talk_time_s"] is not None


def test_a_chuangrui_sms_is_delivered_by_a_signed_report(system: System) -> None:
    job_id = system.send_sms(["13800000103"], vendor="chuangrui")
    (job,) = system.wait_settled([job_id], timeout_s=20)
    assert job["recipients"][0]["status"] == "delivered", job


def test_a_fivec_mms_is_delivered_by_a_pulled_report(system: System) -> None:
    job_id = system.submit(
        "/v1/mms",
        {
            "to": ["13800000104"],
            "title": "标题",
            "vendor": "fivec",
            "frames": [{"text": "你好", "media": {"type": "gif", "base64": GIF}}],
        },
    )
    (job,) = system.wait_settled([job_id], timeout_s=20)
    assert job["recipients"][0]["status"] == "delivered", job
    assert job["recipients"][0]["vendor_status"] == "DELIVRD"
