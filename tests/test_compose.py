"""compose.yaml (and its sandbox rehearsal, compose.sandbox.yaml): valid for Debian's
`docker-compose`, every command it runs exists with the options it gives, every HERALD_ and
SANDBOX_ variable it names is a real setting, and the services have the production shape (one
migration first, several workers, one beat, Flower behind a password, a sandbox wired both ways).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from tests.support import need
from worker.sandbox.config import SandboxConfig
from worker.settings import Settings
from worker.up_config import VENDOR_ACCOUNT_SETTINGS, sandbox_settings

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "compose.yaml"
SANDBOX_OVERRIDE = ROOT / "compose.sandbox.yaml"
TOKEN = "compose-test-callback-token"
SECRETS = {
    "POSTGRES_PASSWORD": "compose-test-password",
    "HERALD_CALLBACK_TOKEN": TOKEN,
    "HERALD_FLOWER_BASIC_AUTH": "herald:compose-test-password",
}
"""What a user must fill in .env before compose starts anything."""
HERALD_IMAGE = "herald:latest"
VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)(?::([-?])([^}]*))?\}")


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load(COMPOSE)["services"]
    return found


def herald_services() -> dict[str, dict[str, Any]]:
    """The services that run the herald image with .env: everything but the sandbox."""
    return {
        name: service
        for name, service in services().items()
        if service.get("image") == HERALD_IMAGE and "env_file" in service
    }


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, for this test's own reading."""

    def substitute(match: re.Match[str]) -> str:
        name, kind, rest = match[1], match[2], match[3]
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return VARIABLE.sub(substitute, value)


def filled_env_file() -> str:
    text = (ROOT / ".env.example").read_text()
    for name, value in SECRETS.items():
        text, count = re.subn(rf"(?m)^{name}=$", f"{name}={value}", text)
        assert count == 1, name
    return text


def docker_compose(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        need("docker-compose")
    assert binary is not None
    return subprocess.run(
        [binary, *args],
        cwd=folder,
        env={"PATH": os.environ["PATH"]},  # no HERALD_ variable of the test run
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "options",
    [
        ["-f", "compose.yaml"],
        ["-f", "compose.yaml", "-f", "compose.sandbox.yaml", "--profile", "sandbox"],
    ],
    ids=["production", "sandbox-rehearsal"],
)
def test_docker_compose_accepts_the_files(tmp_path: Path, options: list[str]) -> None:
    for path in (COMPOSE, SANDBOX_OVERRIDE):
        shutil.copy(path, tmp_path)
    (tmp_path / ".env").write_text(filled_env_file())

    checked = docker_compose(tmp_path, *options, "config", "-q")

    assert checked.returncode == 0, checked.stderr


def test_docker_compose_refuses_to_start_while_the_secrets_are_empty(tmp_path: Path) -> None:
    shutil.copy(COMPOSE, tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")

    checked = docker_compose(tmp_path, "config", "-q")

    assert checked.returncode != 0
    assert "in .env" in checked.stderr


def test_every_command_exists_with_the_options_given() -> None:
    commands = {name: service.get("command", []) for name, service in services().items()}
    for service in services().values():
        test = service.get("healthcheck", {}).get("test", [])
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], "healthcheck", "exec")

    checked = {
        name: check_command([interpolate(arg, SECRETS) for arg in argv])
        for name, argv in commands.items()
        if name in herald_services() or name == "sandbox"
    }

    assert checked == {
        "migrate": "herald db upgrade",
        "api": "uvicorn worker.api:api",
        "worker": "celery -A worker worker",
        "beat": "celery -A worker beat",
        "flower": "celery -A worker flower",
        "sandbox": "python -m worker.sandbox",
    }


def check_command(argv: list[str]) -> str:
    """Resolves `argv` as the container would run it, parsing its options without running it;
    returns the program and its (sub)command."""
    program, *args = argv
    if program == "herald":
        from worker.cli import main

        command: click.Command = main
        names = []
        while isinstance(command, click.Group):
            name, *args = args
            sub = command.get_command(click.Context(command), name)
            assert sub is not None, f"herald has no command {[*names, name]}"
            command, names = sub, [*names, name]
        command.make_context("herald", args)
        return " ".join(["herald", *names])
    if program == "uvicorn":
        from uvicorn.main import main as uvicorn

        app_path = uvicorn.make_context("uvicorn", args).params["app"]
        module, _, attribute = app_path.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
        return f"uvicorn {app_path}"
    if program == "celery":
        return check_celery(args)
    if program == "python":
        assert args[0] == "-m"
        spec = importlib.util.find_spec(args[1])
        assert spec is not None, args[1]
        if spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"{args[1]}.__main__") is not None
        return f"python -m {args[1]}"
    raise AssertionError(f"unknown program {program}")


def check_celery(args: list[str]) -> str:
    from celery import Celery
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery

    import worker

    assert args[:2] == ["-A", "worker"]
    app = worker.celery
    assert isinstance(app, Celery)
    name, *options = args[2:]
    assert name in celery.commands, f"celery has no command {name}"
    parent = click.Context(celery, obj=CLIContext(app=app, no_color=True, workdir=None, quiet=True))
    parsed = celery.commands[name].make_context(name, options, parent=parent)
    if name == "flower":  # Flower hands its options to tornado
        import flower.options  # noqa: F401  (defines them)
        from tornado.options import options as tornado_options

        for option in parsed.params["tornado_argv"]:
            assert option.removeprefix("--").partition("=")[0] in tornado_options, option
    return f"celery -A worker {name}"


def test_the_sandbox_starts_with_the_options_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.sandbox import __main__ as sandbox_main

    served: dict[str, Any] = {}
    monkeypatch.setattr(sandbox_main.uvicorn, "run", lambda _app, **kw: served.update(kw))
    command = services()["sandbox"]["command"]
    assert command[:3] == ["python", "-m", "worker.sandbox"]

    sandbox_main.main(command[3:])

    assert (served["host"], served["port"]) == ("0.0.0.0", 8100)


def test_every_herald_and_sandbox_variable_named_is_a_setting() -> None:
    text = COMPOSE.read_text() + SANDBOX_OVERRIDE.read_text()
    herald = set(re.findall(r"\bHERALD_[A-Z0-9_]+", text))
    sandbox = set(re.findall(r"\bSANDBOX_[A-Z0-9_]+", text))

    assert herald and sandbox
    settings, sandbox_settings = Settings.model_fields, SandboxConfig.model_fields
    assert {v for v in herald if v.removeprefix("HERALD_").lower() not in settings} == set()
    assert {
        v for v in sandbox if v.removeprefix("SANDBOX_").lower() not in sandbox_settings
    } == set()


def test_the_services_have_the_production_shape() -> None:
    every = services()
    herald = herald_services()

    assert set(herald) == {"migrate", "api", "worker", "beat", "flower"}
    assert every["migrate"]["command"] == ["herald", "db", "upgrade"]
    assert every["migrate"]["restart"] == "no"
    for name, service in herald.items():
        assert service["env_file"] == [".env"], name
        assert "HERALD_API_KEYS" not in service["environment"], "API keys come from .env"
        if name in ("api", "worker", "beat"):  # they use the store
            assert service["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name
    assert every["worker"]["deploy"]["replicas"] >= 2
    beat = ["celery", "-A", "worker", "beat"]
    beats = [name for name, service in every.items() if service.get("command", [])[:4] == beat]
    assert beats == ["beat"]
    assert every["beat"]["deploy"]["replicas"] == 1
    api = every["api"]
    host = api["command"][api["command"].index("--host") + 1]
    assert api["environment"]["HERALD_API_HOST"] == host
    with pytest.raises(KeyError, match="HERALD_FLOWER_BASIC_AUTH"):
        interpolate(every["flower"]["environment"]["FLOWER_BASIC_AUTH"], {})
    assert every["sandbox"]["profiles"] == ["sandbox"]
    assert "env_file" not in every["sandbox"], "the sandbox gets none of herald's secrets"


def test_the_sandbox_rehearsal_is_wired_as_herald_up_wires_the_sandbox() -> None:
    sandbox = services()["sandbox"]
    command = sandbox["command"]
    sandbox_url = f"http://sandbox:{command[command.index('--port') + 1]}"
    api_port = services()["api"]["command"][services()["api"]["command"].index("--port") + 1]
    herald_env, sandbox_env = sandbox_settings(
        sandbox_url, f"http://api:{api_port}", TOKEN, list(VENDOR_ACCOUNT_SETTINGS)
    )

    pushing = {name: interpolate(value, SECRETS) for name, value in sandbox["environment"].items()}
    assert pushing == sandbox_env
    overridden = load(SANDBOX_OVERRIDE)["services"]
    assert set(overridden) == set(herald_services())
    for name, service in overridden.items():
        assert service == {"environment": herald_env}, name
