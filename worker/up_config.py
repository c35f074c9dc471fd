"""What `herald up` decides before it starts anything: which vendors are real and which the
sandbox stands in for (and the settings that wire the sandbox to our API), the lines that tell
the operator so with the callback URLs to register, and the secrets kept in the data dir
(the callback token, Flower's password) so that they stay the same from one run to the next.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Literal

from worker.settings import PRODUCTS, Settings

SANDBOX_VEESING_APP_ID = "sandbox-app-id"
SANDBOX_VEESING_APP_KEY = "sandbox-app-key"
FLOWER_AUTH_FILE = "flower-auth"
FLOWER_USER = "herald"
CALLBACK_TOKEN_FILE = "callback-token"


VendorChoice = Literal["real", "sandbox"]

VENDOR_ACCOUNT_SETTINGS: dict[str, tuple[str, ...]] = {
    "veesing": ("veesing_sms_base", "veesing_cloud_base", "veesing_app_id", "veesing_app_key"),
    "chuangrui": (
        "chuangrui_url",
        "chuangrui_name",
        "chuangrui_pwd",
        "chuangrui_access_secret",
        "chuangrui_report_pwd",
        "chuangrui_mo_name",
        "chuangrui_mo_pwd",
    ),
    "fivec": ("fivec_base", "fivec_apikey", "fivec_username", "fivec_password"),
}
"""The settings that say where a vendor is or which account to use there."""

VENDOR_REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "veesing": ("veesing_app_id", "veesing_app_key"),
    "chuangrui": ("chuangrui_url", "chuangrui_name", "chuangrui_pwd"),
    "fivec": ("fivec_apikey", "fivec_username", "fivec_password"),
}
"""What a vendor's adapter needs to call it (`worker.settings.vendor_configured`)."""

CALLBACK_PATHS: dict[str, tuple[str, ...]] = {
    "veesing:sms": ("/callbacks/veesing/sms/{token}",),
    "veesing:mms": ("/callbacks/veesing/mms/{token}",),
    "veesing:voice": ("/callbacks/veesing/voice/{token}",),
    "chuangrui:sms": ("/callbacks/chuangrui/report", "/callbacks/chuangrui/mo"),
    "fivec:mms": (),
}
"""The callback URLs (worker/api/callbacks.py) each product's vendor is given; 5C's reports are
pulled, not pushed."""


def vendor_choices(environ: Mapping[str, str]) -> dict[str, VendorChoice]:
    """Each vendor's part under `herald up`: `sandbox` only when the environment sets none of
    its address and account settings, so real credentials are never replaced by the sandbox's
    (a real vendor with no base URL set uses its default, the vendor's own address). An empty
    value counts as unset, as it does for the settings."""
    given = {name.upper() for name, value in environ.items() if value}
    return {
        vendor: ("real" if any(f"HERALD_{name.upper()}" in given for name in names) else "sandbox")
        for vendor, names in VENDOR_ACCOUNT_SETTINGS.items()
    }


def missing_vendor_settings(settings: Settings) -> dict[str, list[str]]:
    """For each vendor, the variables its adapter needs that `settings` leaves unset."""
    return {
        vendor: [f"HERALD_{name.upper()}" for name in names if not getattr(settings, name)]
        for vendor, names in VENDOR_REQUIRED_SETTINGS.items()
    }


def mask_token(token: str) -> str:
    return f"{token[:4]}****"


def vendor_lines(
    choices: Mapping[str, VendorChoice],
    missing: Mapping[str, list[str]],
    api_url: str,
    token: str,
) -> list[str]:
    """One line per vendor product: `real` or `sandbox`, and the callback URLs its vendor is
    given (the token masked); a real vendor lacking settings its adapter needs says which."""
    lines = []
    for product in PRODUCTS:
        vendor = product.split(":")[0]
        choice = choices[vendor]
        urls = [api_url + path.format(token=mask_token(token)) for path in CALLBACK_PATHS[product]]
        if not urls:
            where = "no callback URL (herald pulls its reports)"
        elif choice == "real":
            where = "callback " + " and ".join(urls)
        else:
            where = "the sandbox pushes to " + " and ".join(urls)
        unset = missing[vendor] if choice == "real" else []
        lacking = f"  (not usable: set {', '.join(unset)})" if unset else ""
        lines.append(f"vendor   {product:<14} {choice:<8} {where}{lacking}")
    return lines


def sandbox_settings(
    sandbox_url: str, api_url: str, token: str, vendors: Collection[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """For each of `vendors` (those the sandbox stands in for): herald's settings pointing at
    the sandbox, and the sandbox's, pushing back to our API."""
    herald: dict[str, str] = {}
    sandbox: dict[str, str] = {}
    if "veesing" in vendors:
        herald |= {
            "HERALD_VEESING_SMS_BASE": sandbox_url,
            "HERALD_VEESING_CLOUD_BASE": sandbox_url,
            "HERALD_VEESING_APP_ID": SANDBOX_VEESING_APP_ID,
            "HERALD_VEESING_APP_KEY": SANDBOX_VEESING_APP_KEY,
        }
        sandbox |= {
            "SANDBOX_VEESING_APP_ID": SANDBOX_VEESING_APP_ID,
            "SANDBOX_VEESING_APP_KEY": SANDBOX_VEESING_APP_KEY,
        } | {
            f"SANDBOX_VEESING_{product.upper()}_PUSH_URL": (
                f"{api_url}/callbacks/veesing/{product}/{token}"
            )
            for product in ("sms", "mms", "voice")
        }
    if "chuangrui" in vendors:
        herald |= {
            "HERALD_CHUANGRUI_URL": f"{sandbox_url}/chuangrui/sms",
            "HERALD_CHUANGRUI_NAME": "sandbox-name",
            "HERALD_CHUANGRUI_PWD": "sandbox-pwd",
            "HERALD_CHUANGRUI_ACCESS_SECRET": "sandbox-access-secret",
            "HERALD_CHUANGRUI_MO_NAME": "sandbox-mo-name",
            "HERALD_CHUANGRUI_MO_PWD": "sandbox-mo-pwd",
        }
        sandbox |= {
            "SANDBOX_CHUANGRUI_NAME": "sandbox-name",
            "SANDBOX_CHUANGRUI_PWD": "sandbox-pwd",
            "SANDBOX_CHUANGRUI_ACCESS_SECRET": "sandbox-access-secret",
            "SANDBOX_CHUANGRUI_MO_NAME": "sandbox-mo-name",
            "SANDBOX_CHUANGRUI_MO_PWD": "sandbox-mo-pwd",
            "SANDBOX_CHUANGRUI_REPORT_URL": f"{api_url}/callbacks/chuangrui/report",
            "SANDBOX_CHUANGRUI_MO_URL": f"{api_url}/callbacks/chuangrui/mo",
        }
    if "fivec" in vendors:
        herald |= {
            "HERALD_FIVEC_BASE": sandbox_url,
            "HERALD_FIVEC_APIKEY": "sandbox-apikey",
            "HERALD_FIVEC_USERNAME": "sandbox-username",
            "HERALD_FIVEC_PASSWORD": "sandbox-password",
        }
        sandbox |= {
            "SANDBOX_FIVEC_APIKEY": "sandbox-apikey",
            "SANDBOX_FIVEC_USERNAME": "sandbox-username",
            "SANDBOX_FIVEC_PASSWORD": "sandbox-password",
        }
    return herald, sandbox


def flower_basic_auth(settings: Settings) -> str:
    """HERALD_FLOWER_BASIC_AUTH, or `herald:<random>` made once and kept in the data dir (0600)
    so the password stays the same from one `herald up` to the next. Given to Flower in its
    environment, not its command line, where `ps` would show it."""
    if settings.flower_basic_auth is not None:
        return settings.flower_basic_auth.get_secret_value()
    return kept_secret(
        settings.data_dir / FLOWER_AUTH_FILE, lambda: f"{FLOWER_USER}:{secrets.token_urlsafe(18)}"
    )


def callback_token(data_dir: Path) -> str:
    """HERALD_CALLBACK_TOKEN from the environment, or a token made once and kept in the data dir
    (0600): the callback URLs registered with a vendor stay valid from one `herald up` to the
    next. The environment only: `up.env` may be a stale copy from an earlier run."""
    given = Settings(_env_file=None).callback_token
    if given is not None and given.get_secret_value():
        return given.get_secret_value()
    return kept_secret(data_dir / CALLBACK_TOKEN_FILE, lambda: secrets.token_urlsafe(18))


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, or a new one from `make`, written there readable by its owner
    only."""
    if path.is_file():
        kept = path.read_text().strip()
        if kept:
            return kept
    secret = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(secret + "\n")
    return secret
