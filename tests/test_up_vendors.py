"""Unit tests of `herald up`'s vendor choice (worker/up.py): the sandbox stands in for a vendor
only when the environment sets none of its address and account settings; what it prints for
each vendor product; the callback token it keeps."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from starlette.routing import Match

from tests.support import SettingsEnv
from worker.api.callbacks import router
from worker.settings import PRODUCTS, Settings, get_settings, vendor_configured
from worker.up_config import (
    CALLBACK_PATHS,
    CALLBACK_TOKEN_FILE,
    VENDOR_ACCOUNT_SETTINGS,
    VENDOR_REQUIRED_SETTINGS,
    callback_token,
    mask_token,
    missing_vendor_settings,
    sandbox_settings,
    vendor_choices,
    vendor_lines,
)

API = "http://127.0.0.1:8000"
TOKEN = "Abcdefghijklmnop"
NOTHING_MISSING: dict[str, list[str]] = {"veesing": [], "chuangrui": [], "fivec": []}


def test_with_nothing_set_every_vendor_is_the_sandbox() -> None:
    assert vendor_choices({"PATH": "/usr/bin", "HERALD_REDIS_URL": "redis://x"}) == {
        "veesing": "sandbox",
        "chuangrui": "sandbox",
        "fivec": "sandbox",
    }


def test_real_credentials_without_a_base_url_stay_real() -> None:
    environ = {"HERALD_VEESING_APP_ID": "real-id", "HERALD_VEESING_APP_KEY": "real-key"}

    choices = vendor_choices(environ)

    assert choices == {"veesing": "real", "chuangrui": "sandbox", "fivec": "sandbox"}
    herald_env, sandbox_env = sandbox_settings(
        "http://127.0.0.1:8100", API, TOKEN, [v for v, c in choices.items() if c == "sandbox"]
    )
    assert not [name for name in herald_env if name.startswith("HERALD_VEESING_")]
    assert not [name for name in sandbox_env if name.startswith("SANDBOX_VEESING_")]
    assert herald_env["HERALD_CHUANGRUI_URL"] == "http://127.0.0.1:8100/chuangrui/sms"
    assert herald_env["HERALD_FIVEC_BASE"] == "http://127.0.0.1:8100"


@pytest.mark.parametrize(
    ("variable", "vendor"),
    [
        ("HERALD_VEESING_SMS_BASE", "veesing"),
        ("HERALD_VEESING_CLOUD_BASE", "veesing"),
        ("HERALD_VEESING_APP_KEY", "veesing"),
        ("HERALD_CHUANGRUI_URL", "chuangrui"),
        ("HERALD_CHUANGRUI_NAME", "chuangrui"),
        ("HERALD_CHUANGRUI_MO_PWD", "chuangrui"),
        ("HERALD_FIVEC_BASE", "fivec"),
        ("herald_fivec_apikey", "fivec"),  # the settings read names in any case
    ],
)
def test_any_address_or_account_setting_makes_its_vendor_real(variable: str, vendor: str) -> None:
    choices = vendor_choices({variable: "given"})

    assert choices[vendor] == "real"
    assert [v for v, choice in choices.items() if choice == "real"] == [vendor]


def test_an_empty_value_counts_as_unset() -> None:
    assert set(vendor_choices({"HERALD_VEESING_APP_ID": ""}).values()) == {"sandbox"}


def test_the_vendor_settings_named_are_settings() -> None:
    named = {n for names in VENDOR_ACCOUNT_SETTINGS.values() for n in names}
    required = {n for names in VENDOR_REQUIRED_SETTINGS.values() for n in names}

    assert named <= set(Settings.model_fields)
    assert required <= named
    assert set(VENDOR_ACCOUNT_SETTINGS) == set(VENDOR_REQUIRED_SETTINGS)
    assert {p.split(":")[0] for p in PRODUCTS} == set(VENDOR_ACCOUNT_SETTINGS)


@pytest.mark.parametrize("vendor", sorted(VENDOR_REQUIRED_SETTINGS))
def test_the_required_settings_are_what_vendor_configured_checks(
    vendor: str, settings_env: SettingsEnv
) -> None:
    for name in VENDOR_ACCOUNT_SETTINGS[vendor]:
        settings_env.setenv(f"HERALD_{name.upper()}", "")
    required = VENDOR_REQUIRED_SETTINGS[vendor]
    for name in required:
        settings_env.setenv(f"HERALD_{name.upper()}", "given")
    assert vendor_configured(vendor)
    assert missing_vendor_settings(get_settings())[vendor] == []

    for name in required:
        settings_env.setenv(f"HERALD_{name.upper()}", "")
        assert not vendor_configured(vendor)
        assert missing_vendor_settings(get_settings())[vendor] == [f"HERALD_{name.upper()}"]
        settings_env.setenv(f"HERALD_{name.upper()}", "given")


def test_each_product_gets_a_line_with_its_choice_and_callback_urls() -> None:
    choices = vendor_choices({"HERALD_VEESING_APP_ID": "real-id"})

    lines = vendor_lines(choices, NOTHING_MISSING, API, TOKEN)

    assert lines == [
        f"vendor   veesing:sms    real     callback {API}/callbacks/veesing/sms/Abcd****",
        f"vendor   veesing:mms    real     callback {API}/callbacks/veesing/mms/Abcd****",
        f"vendor   veesing:voice  real     callback {API}/callbacks/veesing/voice/Abcd****",
        f"vendor   chuangrui:sms  sandbox  the sandbox pushes to {API}/callbacks/chuangrui/report"
        f" and {API}/callbacks/chuangrui/mo",
        "vendor   fivec:mms      sandbox  no callback URL (herald pulls its reports)",
    ]
    assert TOKEN not in "\n".join(lines)


def test_a_real_vendor_lacking_settings_says_which() -> None:
    choices = vendor_choices({"HERALD_CHUANGRUI_URL": "https://sms.example"})
    missing = NOTHING_MISSING | {"chuangrui": ["HERALD_CHUANGRUI_NAME", "HERALD_CHUANGRUI_PWD"]}

    (line,) = [x for x in vendor_lines(choices, missing, API, TOKEN) if "chuangrui:sms" in x]

    assert line.startswith("vendor   chuangrui:sms  real     callback ")
    assert line.endswith("(not usable: set HERALD_CHUANGRUI_NAME, HERALD_CHUANGRUI_PWD)")


def test_the_callback_paths_are_routes_of_the_api() -> None:
    assert set(CALLBACK_PATHS) == set(PRODUCTS)
    for paths in CALLBACK_PATHS.values():
        for path in paths:
            scope = {"type": "http", "path": path.format(token=TOKEN), "method": "POST"}
            assert any(route.matches(scope)[0] is Match.FULL for route in router.routes), path


def test_the_token_is_masked_to_its_first_four_characters() -> None:
    assert mask_token(TOKEN) == "Abcd****"


def test_without_a_configured_token_one_is_made_once_and_kept_private(
    tmp_path: Path, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_CALLBACK_TOKEN", "")

    first = callback_token(tmp_path)
    kept = tmp_path / CALLBACK_TOKEN_FILE

    assert len(first) >= 20
    assert kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert callback_token(tmp_path) == first


def test_a_configured_token_wins_and_is_not_written(
    tmp_path: Path, settings_env: SettingsEnv
) -> None:
    settings_env.setenv("HERALD_CALLBACK_TOKEN", "from-the-environment")

    assert callback_token(tmp_path) == "from-the-environment"
    assert not (tmp_path / CALLBACK_TOKEN_FILE).exists()
