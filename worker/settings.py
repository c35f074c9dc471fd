"""All of herald's configuration, read from environment variables prefixed HERALD_.

Every setting is documented in README.md ("Configuration"); each field's description says what it
is for. Secrets are `SecretStr`, so they print as `**********` in reprs, logs and tracebacks.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.redis_urls import is_sentinel_url, sentinel_addresses
from worker.webhook_urls import check_callback_url

PRODUCTS = ("veesing:sms", "veesing:mms", "veesing:voice", "chuangrui:sms", "fivec:mms")
"""Every vendor product herald speaks, as `vendor:channel`."""
SMS_VENDORS = ("veesing", "chuangrui")
MMS_VENDORS = ("veesing", "fivec")
VOICE_VENDORS = ("veesing",)
API_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""An API key's name (HERALD_API_KEYS, `herald keys create`): it is logged and stored."""
MIN_API_KEY_CHARS = 16
SEND_RUN_MARGIN_S = 5.0
"""Room, within a send run's soft time limit, for what follows its last vendor call (settling
the outcome, pacing sleeps)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore", env_ignore_empty=True)

    # Where things live
    data_dir: Path = Field(
        Path(".herald"), description="Folder for the SQLite store, logs and a private Redis."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Celery broker (Redis): redis://host:6379/0, or Redis Sentinel as "
        "sentinel://host1:26379/0;sentinel://host2:26379/0.",
    )
    redis_sentinel_master: str = Field(
        "mymaster",
        description="The master's name in Redis Sentinel, for a sentinel:// Redis URL.",
    )
    database_url: str = Field(
        "", description="SQLAlchemy URL of the job store; empty = SQLite file in data_dir."
    )
    store_pool_size: int = Field(
        10,
        ge=1,
        description="Store connections a process keeps open for reuse; the API's concurrent "
        "requests beyond it open short-lived ones.",
    )

    # Veesing (中昱维信)
    veesing_sms_base: str = Field(
        "https://vip.veesing.com", description="Veesing SMS API base URL."
    )
    veesing_cloud_base: str = Field(
        "https://cloud.10658.com.cn", description="Veesing MMS and voice API base URL."
    )
    veesing_app_id: str | None = Field(None, description="Veesing appId.")
    veesing_app_key: SecretStr | None = Field(None, description="Veesing appKey.")

    # Chuangrui (創瑞)
    chuangrui_url: str | None = Field(
        None, description="Chuangrui API address (given by their support)."
    )
    chuangrui_name: str | None = Field(None, description="Chuangrui account name.")
    chuangrui_pwd: SecretStr | None = Field(None, description="Chuangrui password.")
    chuangrui_sign: str | None = Field(None, description="Chuangrui signature.")
    chuangrui_access_secret: SecretStr | None = Field(
        None, description="AccessSecret that signs Chuangrui's report pushes; unset = refused."
    )
    chuangrui_push_max_age_s: float = Field(
        300.0, gt=0, description="Oldest report push timestamp accepted (replay window)."
    )
    chuangrui_report_pwd: SecretStr | None = Field(
        None, description="Pwd the report pushes must carry (section 3.1); unset = not checked."
    )
    chuangrui_mo_name: str | None = Field(None, description="Name the MO pushes must carry.")
    chuangrui_mo_pwd: SecretStr | None = Field(None, description="Pwd the MO pushes must carry.")
    chuangrui_mo_allow_unsigned: bool = Field(
        False,
        description="Accept MO pushes although HERALD_CHUANGRUI_MO_PWD is unset (forgeable).",
    )
    chuangrui_system_extno_length: int = Field(
        3, ge=0, description="Digits of the system part that starts an MO extno."
    )

    # Meilian 5C (美联软通)
    fivec_base: str = Field("http://m.5c.com.cn", description="5C API base URL.")
    fivec_apikey: SecretStr | None = Field(None, description="5C apikey.")
    fivec_username: str | None = Field(None, description="5C username.")
    fivec_password: SecretStr | None = Field(None, description="5C password.")

    # Producers' rules
    sms_signature: str | None = Field(
        None, description="Signature added as 【...】 to SMS content that carries none."
    )
    sms_max_chars: int = Field(500, ge=1, description="Longest SMS content accepted.")
    max_recipients: int = Field(100_000, ge=1, description="Most recipients in one job.")
    default_sms_vendor: str = Field(
        "veesing", description="SMS vendor when a request names none (veesing, chuangrui)."
    )
    default_mms_vendor: str = Field(
        "veesing", description="MMS vendor when a request names none (veesing, fivec)."
    )
    mms_audit_timeout_s: float = Field(
        6 * 3600.0, gt=0, description="An MMS whose audit result never came fails after this."
    )
    opt_out_keywords: list[str] = Field(
        ["TD", "T", "退订", "N"],
        description="A reply that is one of these (any case) suppresses the number's marketing.",
    )

    # HTTP API and callbacks
    api_host: str = Field(
        "127.0.0.1",
        description="Address the API listens on; without API keys it starts only on loopback.",
    )
    api_port: int = Field(8000, description="Port the API listens on (`herald up`).")
    api_keys: SecretStr | None = Field(
        None, description="API keys as `name=key,name2=key2`; more with `herald keys create`."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request body the API reads (4 MiB holds 100,000 numbers); "
        "larger ones get 413.",
    )
    callback_token: SecretStr | None = Field(
        None, description="Secret path segment of the Veesing push URLs; unset = pushes refused."
    )

    # Vendor rules (worker/limits.py)
    limits_redis_url: str = Field(
        "",
        description="Redis for the fleet-wide limits (redis:// or sentinel://); empty = "
        "HERALD_REDIS_URL.",
    )
    limits: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict,
        description='Per product overrides, JSON: {"veesing:sms": {"per_number_daily": 5}}.',
    )

    # Delivery behaviour
    batch_size: int = Field(100, ge=1, description="Most phones in one vendor call.")
    send_run_s: float = Field(
        10.0,
        gt=0,
        description="How long one send task run starts new vendor calls for a job; then it hands "
        "the rest to a new run, queued behind other jobs' (a big job never holds a task past it).",
    )
    send_fanout: int = Field(
        8, ge=1, description="Most send task runs that work one big job at once, across the fleet."
    )
    max_error_attempts: int = Field(
        6, ge=1, description="Vendor calls that may fail for a passing reason before `failed`."
    )
    unknown_reply_attempts: int = Field(
        2, ge=1, description="Attempts allowed when a vendor answers something undocumented."
    )
    retry_base_s: float = Field(2.0, gt=0, description="First retry delay before jitter.")
    retry_max_s: float = Field(300.0, gt=0, description="Longest retry delay.")
    vendor_blocked_cooldown_s: float = Field(
        300.0, gt=0, description="Wait after a vendor refuses the account (balance, lock, IP)."
    )
    resend_ambiguous: bool = Field(
        False, description="Send again recipients whose first call may have reached the vendor."
    )
    http_connect_timeout_s: float = Field(5.0, description="Vendor connect timeout.")
    http_read_timeout_s: float = Field(
        30.0, description="Vendor read timeout: past it a send is `unknown`."
    )

    # Celery
    visibility_timeout_s: int = Field(1800, description="Redis redelivery of unacked tasks.")
    task_time_limit_s: int = Field(120, description="Hard limit of one task run.")
    worker_concurrency: int = Field(
        4, ge=1, description="Processes of each worker (`herald up`, compose's worker)."
    )
    liveness_interval_s: float = Field(
        15.0, ge=0, description="How often a worker probes that it still consumes; 0 = never."
    )
    liveness_timeout_s: float = Field(
        180.0,
        ge=0,
        description="A worker with no probe consumed this long, Redis answering, exits; 0 = never.",
    )

    # Readiness (`/readyz`, `herald health`)
    ready_worker_s: float = Field(
        60.0, gt=0, description="Ready only if a worker consumed a probe this recently."
    )
    ready_beat_s: float = Field(60.0, gt=0, description="Ready only if beat ticked this recently.")

    # Beat schedule
    release_interval_s: float = Field(
        1.0, gt=0, description="How often workers release due sends (the fleet once, no task)."
    )
    release_safety_net_s: float = Field(
        60.0, gt=0, description="How often beat's release task runs besides, as a safety net."
    )
    sweep_interval_s: float = Field(30.0, gt=0, description="How often stuck jobs are swept.")
    requeue_after_s: float = Field(
        300.0, gt=0, description="A queued recipient untouched this long is enqueued again."
    )
    unmatched_report_window_s: float = Field(
        3 * 24 * 3600.0, gt=0, description="A report naming no stored delivery is retried so long."
    )
    sending_timeout_s: float = Field(
        300.0, gt=0, description="A recipient `sending` this long becomes `unknown`."
    )
    claim_lease_s: float = Field(
        60.0,
        gt=0,
        description="A recipient `claimed` this long (or the sending timeout, if shorter) is "
        "queued again; its worker lost the claim.",
    )
    report_deadline_s: float = Field(
        72 * 3600.0,
        gt=0,
        description="A recipient `submitted` this long without a delivery report becomes "
        "`unknown` (a late report still settles it).",
    )
    store_retry_s: float = Field(
        60.0,
        gt=0,
        description="How long a worker retries recording a vendor call's outcome, or keeping a "
        "fetched 5C report page, while the store is unreachable (an outcome: never past "
        "HERALD_SENDING_TIMEOUT_S after the call began; a page: never past half the task limit).",
    )

    fivec_poll_interval_s: float = Field(
        30.0, gt=0, description="How often beat pulls 5C's delivery reports."
    )

    # Balances
    balance_interval_s: float = Field(600.0, gt=0, description="How often balances are read.")
    balance_warn_below: dict[str, float] = Field(
        default_factory=lambda: {"*": 1000.0},
        description='Warn below these, JSON by product, "*" for the rest.',
    )

    # Status webhooks (worker/webhooks.py)
    webhook_url: str | None = Field(
        None, description="Where status changes of jobs that name no callback_url are POSTed."
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Signs every webhook (HMAC-SHA256); jobs with a callback address are "
        "refused while it is unset.",
    )
    webhook_retry_for_s: float = Field(
        24 * 3600.0,
        gt=0,
        description="A status change its address keeps refusing is retried this long after it "
        "happened, then dropped (logged).",
    )
    webhook_backoff_max_s: float = Field(
        300.0, gt=0, description="Longest wait between two tries of a failing webhook address."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="Connect, write and read timeout of one webhook POST."
    )
    webhook_batch_size: int = Field(500, ge=1, description="Most status changes in one POST.")
    webhook_interval_s: float = Field(
        1.0, gt=0, description="How often each worker looks for status changes to POST."
    )
    webhook_concurrency: int = Field(
        8, ge=1, description="POSTs one worker makes at once, each to a different address."
    )

    # Metrics
    metrics_dir: Path | None = Field(
        None,
        description="Folder the worker processes write metrics to; unset = data_dir/metrics.",
    )

    # Logs
    log_json: bool = Field(
        False, description="One JSON object a line in the API's, worker's and beat's logs."
    )

    # What people read
    display_tz: str = Field(
        "Asia/Shanghai",
        description="IANA time zone the CLI and /ui show times in (the API answers UTC).",
    )

    # Local system (`herald up`)
    sandbox_host: str = Field("127.0.0.1", description="Address `herald up` serves the sandbox on.")
    sandbox_port: int = Field(8100, description="Port `herald up` serves the sandbox on.")
    flower_port: int = Field(5555, description="Port `herald up` serves Flower on (127.0.0.1).")
    flower_basic_auth: SecretStr | None = Field(
        None,
        description="user:password for Flower; unset = `herald up` makes one, kept in data_dir.",
    )

    @property
    def soft_time_limit_s(self) -> int:
        """Celery's soft time limit of a task run: 3/4 of the hard one."""
        return max(1, self.task_time_limit_s * 3 // 4)

    @property
    def send_run_budget_s(self) -> float:
        """How long a send run starts new vendor calls: HERALD_SEND_RUN_S, shortened so that its
        last call (connect + read timeouts at most) ends before the soft time limit. A run makes
        at least one call whatever the budget."""
        longest_call_s = self.http_connect_timeout_s + self.http_read_timeout_s
        room_s = self.soft_time_limit_s - longest_call_s - SEND_RUN_MARGIN_S
        return max(0.0, min(self.send_run_s, room_s))

    @model_validator(mode="after")
    def _timeouts_nest(self) -> Settings:
        """A task must end before its recipients are presumed lost, before Redis redelivers it,
        and before a worker busy with it is presumed to have stopped consuming."""
        if self.task_time_limit_s <= self.http_connect_timeout_s + self.http_read_timeout_s:
            raise ValueError("HERALD_TASK_TIME_LIMIT_S must exceed HTTP connect + read timeouts")
        if self.sending_timeout_s <= self.task_time_limit_s:
            raise ValueError("HERALD_SENDING_TIMEOUT_S must exceed HERALD_TASK_TIME_LIMIT_S")
        if self.visibility_timeout_s <= 2 * self.task_time_limit_s:
            raise ValueError(
                "HERALD_VISIBILITY_TIMEOUT_S must exceed twice HERALD_TASK_TIME_LIMIT_S"
            )
        liveness = self.liveness_interval_s > 0 and self.liveness_timeout_s > 0
        if liveness and (
            self.liveness_timeout_s <= self.task_time_limit_s + self.liveness_interval_s
        ):
            raise ValueError(
                "HERALD_LIVENESS_TIMEOUT_S must exceed HERALD_TASK_TIME_LIMIT_S plus "
                "HERALD_LIVENESS_INTERVAL_S (a probe may wait for the longest task)"
            )
        return self

    @model_validator(mode="after")
    def _webhook_url_valid(self) -> Settings:
        if self.webhook_url is not None:
            try:
                check_callback_url(self.webhook_url)
            except ValueError as exc:
                raise ValueError(f"HERALD_WEBHOOK_URL {exc}") from None
            if self.webhook_secret is None:
                raise ValueError("HERALD_WEBHOOK_URL needs HERALD_WEBHOOK_SECRET to sign with")
        return self

    @model_validator(mode="after")
    def _redis_urls_parse(self) -> Settings:
        for variable, url in (
            ("HERALD_REDIS_URL", self.redis_url),
            ("HERALD_LIMITS_REDIS_URL", self.limits_redis_url),
        ):
            if is_sentinel_url(url):
                try:
                    sentinel_addresses(url)
                except ValueError as exc:
                    raise ValueError(f"{variable}: {exc}") from None
        return self

    @field_validator("display_tz")
    @classmethod
    def _display_tz_is_a_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"HERALD_DISPLAY_TZ {name!r} is not an IANA time zone name, e.g. Asia/Shanghai"
            ) from None
        return name

    @property
    def display_zone(self) -> ZoneInfo:
        """The zone of HERALD_DISPLAY_TZ (worker/display.py)."""
        return ZoneInfo(self.display_tz)

    @model_validator(mode="after")
    def _api_keys_parse(self) -> Settings:
        self.configured_api_keys()
        return self

    def configured_api_keys(self) -> dict[str, SecretStr]:
        """HERALD_API_KEYS by name. Raises ValueError (never showing a key) when malformed."""
        if self.api_keys is None:
            return {}
        keys: dict[str, SecretStr] = {}
        for position, entry in enumerate(self.api_keys.get_secret_value().split(","), 1):
            name, sep, key = (part.strip() for part in entry.partition("="))
            if not entry.strip():
                continue
            if not sep or not API_KEY_NAME.fullmatch(name) or len(key) < MIN_API_KEY_CHARS:
                raise ValueError(
                    f"HERALD_API_KEYS entry {position} is not name=key (a name of letters, digits,"
                    f" '.', '_' or '-', and a key of at least {MIN_API_KEY_CHARS} characters)"
                )
            if name in keys:
                raise ValueError(f"HERALD_API_KEYS names {name!r} twice")
            keys[name] = SecretStr(key)
        return keys

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'herald.db').resolve()}"


LOCAL_ENV_FILE = "up.env"


def local_env_file() -> Path:
    """Where `herald up` writes the settings it chose (sandbox endpoints, callback token).

    Every herald process started beside it (`herald send`, `herald status`) reads that file, so
    the CLI talks to the system `herald up` runs; real environment variables still win.
    """
    return Path(os.environ.get("HERALD_DATA_DIR", ".herald")) / LOCAL_ENV_FILE


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment (and `herald up`'s file)."""
    env_file = local_env_file()
    return Settings(_env_file=env_file if env_file.is_file() else None)


def vendor_configured(vendor: str) -> bool:
    """Whether the settings hold what `vendor`'s adapter needs to call it."""
    settings = get_settings()
    if vendor == "veesing":
        return bool(settings.veesing_app_id and settings.veesing_app_key)
    if vendor == "chuangrui":
        return bool(settings.chuangrui_url and settings.chuangrui_name and settings.chuangrui_pwd)
    if vendor == "fivec":
        return bool(settings.fivec_apikey and settings.fivec_username and settings.fivec_password)
    return False


def balance_threshold(product: str) -> Decimal:
    """The balance under which `product` ("veesing:sms") is reported low."""
    thresholds = get_settings().balance_warn_below
    return Decimal(str(thresholds.get(product, thresholds.get("*", 0))))


if __name__ == "__main__":
    from worker.env_example import main

    raise SystemExit(main())
