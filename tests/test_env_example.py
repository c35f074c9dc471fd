"""`.env.example` (compose.yaml's env file) is generated from worker/settings.py, lists every
setting with its description, and its values read back as the settings' defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import SettingsEnv
from worker.env_example import ENV_EXAMPLE_COMMAND, env_example, main
from worker.settings import Settings, get_settings

ENV_EXAMPLE = Path(__file__).parent.parent / ".env.example"
LINE = re.compile(r"^(# )?(HERALD_[A-Z0-9_]+)=(.*)$")


def listed() -> dict[str, tuple[bool, str]]:
    """Each HERALD_ variable of .env.example: (whether its line is commented out, its value)."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := LINE.match(line):
            found[match[2]] = (match[1] is not None, match[3])
    return found


def test_the_committed_file_is_what_the_generator_writes() -> None:
    assert ENV_EXAMPLE.read_text() == env_example(), f"run `{ENV_EXAMPLE_COMMAND}`"


def test_every_setting_is_listed_once_after_its_description() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    variables = [(i, m[2]) for i, line in enumerate(lines) if (m := LINE.match(line))]

    assert sorted(v for _, v in variables) == sorted(
        f"HERALD_{name.upper()}" for name in Settings.model_fields
    )
    for index, variable in variables:
        field = Settings.model_fields[variable.removeprefix("HERALD_").lower()]
        start = index
        while lines[start - 1].startswith("# "):
            start -= 1
        described = " ".join(line.removeprefix("# ") for line in lines[start:index])
        assert field.description, f"{variable} has no description"
        assert described.removeprefix("(secret) ") == field.description, variable


def test_secrets_and_settings_without_a_default_are_left_empty_to_fill() -> None:
    secrets = {
        f"HERALD_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    assert "HERALD_VEESING_APP_KEY" in secrets
    for variable, (commented, value) in listed().items():
        if variable in secrets:
            assert (commented, value) == (False, ""), variable
        if not commented:
            assert value == "", variable


def test_every_value_shown_reads_back_as_the_default(settings_env: SettingsEnv) -> None:
    for variable, (_commented, value) in listed().items():
        settings_env.setenv(variable, value)

    assert get_settings().model_dump() == Settings.model_construct().model_dump()


def test_an_empty_value_means_unset(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_CHUANGRUI_MO_PWD", "")
    settings_env.setenv("HERALD_CHUANGRUI_ACCESS_SECRET", "")
    settings_env.setenv("HERALD_VEESING_SMS_BASE", "")

    settings = get_settings()

    assert settings.chuangrui_mo_pwd is None
    assert settings.chuangrui_access_secret is None
    assert settings.veesing_sms_base == "https://vip.veesing.com"


def test_the_generator_is_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--env-example"]) == 0
    assert capsys.readouterr().out == env_example()
    assert main([]) == 2
