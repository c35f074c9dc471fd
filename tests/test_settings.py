"""Unit tests of the settings: documented, validated, secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from worker.settings import Settings

README = Path(__file__).parent.parent / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    missing = [
        f"HERALD_{name.upper()}"
        for name in Settings.model_fields
        if f"`HERALD_{name.upper()}`" not in readme
    ]
    assert missing == []


def test_secrets_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_VEESING_APP_KEY", "very-secret-key")

    assert "very-secret-key" not in repr(Settings())


def test_a_task_limit_shorter_than_the_http_timeouts_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERALD_TASK_TIME_LIMIT_S", "20")

    with pytest.raises(ValidationError, match="HERALD_TASK_TIME_LIMIT_S"):
        Settings()


def test_a_sending_timeout_shorter_than_a_task_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_SENDING_TIMEOUT_S", "60")

    with pytest.raises(ValidationError, match="HERALD_SENDING_TIMEOUT_S"):
        Settings()
