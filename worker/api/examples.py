"""The request examples of the API's documentation (`/docs`, `/redoc`), one set per operation.

Each example is a request the API accepts as it stands (tests/test_api_docs.py posts every one),
given only the vendor's credentials; the numbers are the usual placeholders.
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example

GIF_1PX = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
"""A 1×1 GIF, base64: the smallest picture the vendors take."""


def example(summary: str, value: dict[str, Any], description: str | None = None) -> Example:
    documented = Example(summary=summary, value=value)
    if description is not None:
        documented["description"] = description
    return documented


SMS: dict[str, Example] = {
    "marketing": example(
        "Marketing to two numbers",
        {
            "to": ["13800138000", "+86 139 0013 9000"],
            "content": "【Herald】双十一全场五折，回TD退订",
        },
        "Never sent to a suppressed number. A +86 prefix and spaces are dropped.",
    ),
    "verification": example(
        "A verification code that expires",
        {
            "to": ["13800138000"],
            "content": "【Herald】您的验证码是 482913，5分钟内有效",
            "purpose": "verification",
            "expires_at": "2030-01-01T12:05:00+08:00",
            "idempotency_key": "login-7f3a-482913",
            "on_daily_cap": "fail",
        },
        "Sent regardless of opt-outs; never after `expires_at`; sent once per idempotency key.",
    ),
    "personalised": example(
        "A personalised text for each number",
        {
            "to": [
                {"phone": "13800138000", "values": {"name": "张三", "code": "4821"}},
                {"phone": "13900139000", "values": {"name": "李四", "code": "7730"}},
            ],
            "content": "【Herald】尊敬的{name}，您的验证码是{code}",
            "purpose": "verification",
        },
        "Each `{placeholder}` is filled from the number's `values`; a missing value answers 422 "
        "naming it (`to, 1, values, name`). Each distinct text goes in its own vendor call.",
    ),
    "scheduled": example(
        "A notice sent later through Chuangrui",
        {
            "to": ["13800138000"],
            "content": "【Herald】您的订单已发货",
            "purpose": "notification",
            "send_at": "2030-01-01T09:00:00+08:00",
            "vendor": "chuangrui",
            "allow_failover": False,
        },
    ),
}

MMS: dict[str, Example] = {
    "picture-and-text": example(
        "A picture and a text",
        {
            "to": ["13800138000"],
            "title": "双十一",
            "frames": [
                {"seconds": 5, "text": "全场五折", "media": {"type": "gif", "base64": GIF_1PX}},
                {"seconds": 3, "text": "回TD退订"},
            ],
        },
        "Veesing audits the content before it may go; equal contents share one audit.",
    ),
    "fivec": example(
        "Through 5C",
        {
            "to": ["13800138000", "13900139000"],
            "title": "新品上市",
            "vendor": "fivec",
            "purpose": "notification",
            "frames": [{"text": "欢迎光临", "media": {"type": "gif", "base64": GIF_1PX}}],
        },
    ),
}

PERSONALISED_MMS: dict[str, Example] = {
    "two-numbers": example(
        "One picture, a text per number",
        {
            "title": "您的账单",
            "picture": {"type": "gif", "base64": GIF_1PX},
            "recipients": [
                {"to": "13800138000", "text": "张先生，您本月消费 128 元"},
                {"to": "13900139000", "text": "李女士，您本月消费 64 元"},
            ],
            "purpose": "notification",
        },
    ),
}

VOICE: dict[str, Example] = {
    "code": example(
        "A verification code read out",
        {"to": ["13800138000"], "template_id": "724", "variables": "4829", "kind": "code"},
    ),
    "notice": example(
        "A notice read out",
        {
            "to": ["13800138000"],
            "template_id": "notice_01",
            "variables": "您的快递已到楼下",
            "kind": "notice",
            "purpose": "notification",
        },
    ),
}

SUPPRESSION: dict[str, Example] = {
    "operator": example(
        "An operator suppresses a number",
        {"phone": "13800138000", "reason": "asked by phone to receive no marketing"},
    ),
    "default-reason": example("With the default reason", {"phone": "+86 139 0013 9000"}),
}
