"""The sandbox's configuration, read from environment variables prefixed SANDBOX_.

Every field is described in docs/sandbox.md. Nothing here is shared with herald's own settings:
the sandbox stands for the vendors, and knows only what their documents say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ReportLayout = Literal["4", "5", "6", "mixed"]
TemplateKind = Literal["code", "notice"]


def _voice_templates() -> dict[str, TemplateKind]:
    return {"724": "code", "725": "notice"}


class SandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    # Veesing (vip.veesing.com SMS and cloud.10658.com.cn MMS / voice share one account)
    veesing_app_id: str = "sandbox-app-id"
    veesing_app_key: str = "sandbox-app-key"
    veesing_sms_push_url: str = ""
    veesing_mms_push_url: str = ""
    veesing_voice_push_url: str = ""
    veesing_voice_templates: dict[str, TemplateKind] = Field(
        default_factory=_voice_templates,
        description="Approved voice templates, JSON: id -> code | notice.",
    )

    # Chuangrui (創瑞)
    chuangrui_name: str = "sandbox-name"
    chuangrui_pwd: str = "sandbox-pwd"
    chuangrui_access_secret: str = "sandbox-access-secret"
    chuangrui_report_url: str = ""
    chuangrui_report_pwd: str = ""
    chuangrui_mo_url: str = ""
    chuangrui_mo_name: str = ""
    chuangrui_mo_pwd: str = ""
    chuangrui_system_extno: str = "008"

    # Meilian 5C (美联软通)
    fivec_apikey: str = "sandbox-apikey"
    fivec_username: str = "sandbox-username"
    fivec_password: str = "sandbox-password"
    fivec_extno: str = "3456"
    fivec_report_layout: ReportLayout = "mixed"
    fivec_report_encoding: Literal["utf-8", "gbk"] = "utf-8"
    fivec_recv_max: int = Field(500, ge=0, description="Records per recv reply; 0 = all.")

    # Behaviour
    push_delay_s: float = Field(1.0, ge=0)
    push_attempts: int = Field(4, ge=1, description="Tries per push before giving up.")
    push_retry_s: float = Field(1.0, ge=0, description="First wait between push tries.")
    push_timeout_s: float = Field(5.0, gt=0)
    push_workers: int = Field(
        16, ge=1, description="Pushes in flight at once (workers, and the client's connections)."
    )
    push_thread: bool = Field(
        True, description="Deliver pushes on a thread of their own (else on the app's loop)."
    )
    undelivered_rate: float = Field(0.0, ge=0, le=1)
    latency_s: float = Field(0.0, ge=0)
    mms_audit_delay_s: float = Field(1.0, ge=0)
    seed: int | None = Field(None, description="Seed of the random choices (None = random).")

    # Limits the vendors document as errors
    per_number_daily_cap: int = Field(10, ge=0)
    account_daily_cap: int = Field(100000, ge=0)
    balance: int = 1000000
    minute_rule_s: float = Field(60.0, ge=0)

    # Logs
    log_file: Path | None = None
    memory_log_limit: int = Field(200000, ge=1, description="Entries kept per in-memory log.")

    @field_validator("log_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value
