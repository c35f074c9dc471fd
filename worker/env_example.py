"""`.env.example`, generated from the settings: every HERALD_ setting with its description and
default, for compose's env file (`python -m worker.settings --env-example > .env.example`)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import get_args

from pydantic import SecretStr

from worker.settings import Settings

ENV_EXAMPLE_COMMAND = "python -m worker.settings --env-example > .env.example"

ENV_EXAMPLE_HEADER = f"""\
# herald's configuration for compose.yaml: its services' env file, and the values compose.yaml
# itself reads. Copy it to .env, fill in the secrets, then `docker compose up -d` (README,
# "Production"); .env is git-ignored.
#
# Every HERALD_* setting is here, with what it is for. The lines left empty are yours to fill
# (empty = unset); the commented-out ones show herald's default: uncomment one to change it.
# Values are read as written, without quotes: make secrets of letters, digits, - and _, e.g.
#   python3 -c 'import secrets; print(secrets.token_urlsafe(24))'
# compose.yaml points HERALD_REDIS_URL and HERALD_DATABASE_URL at its own redis and postgres
# services unless they are set here, and runs the api with HERALD_API_HOST=0.0.0.0.
#
# Generated from worker/settings.py by `{ENV_EXAMPLE_COMMAND}`;
# tests/test_env_example.py checks that it is current: change the settings, not this file.

# --- compose.yaml's own ---

# (secret) Password of the postgres service; herald's services get it as PGPASSWORD.
POSTGRES_PASSWORD=

# A rehearsal against the vendor sandbox instead of the vendors (README, "Production"):
# COMPOSE_FILE=compose.yaml:compose.sandbox.yaml
# COMPOSE_PROFILES=sandbox

# --- herald (worker/settings.py) ---
"""


def env_example() -> str:
    """The text of `.env.example`: every setting with its description and its default."""
    lines = [ENV_EXAMPLE_HEADER]
    for name, field in Settings.model_fields.items():
        variable = f"HERALD_{name.upper()}"
        secret = field.annotation is SecretStr or SecretStr in get_args(field.annotation)
        default = field.get_default(call_default_factory=True)
        described = f"{'(secret) ' if secret else ''}{field.description}"
        lines.append(
            "\n" + textwrap.fill(described, 100, initial_indent="# ", subsequent_indent="# ")
        )
        lines.append("\n")
        if secret or default is None:
            lines.append(f"{variable}=\n")
        else:
            lines.append(f"# {variable}={env_value(default)}\n")
    return "".join(lines)


def env_value(value: object) -> str:
    """`value` as an environment variable holds it for the settings to read back."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.settings", description="herald's settings (HERALD_*)."
    )
    parser.add_argument(
        "--env-example",
        action="store_true",
        help="print .env.example: every setting, its description and its default",
    )
    if not parser.parse_args(argv).env_example:
        parser.print_help()
        return 2
    sys.stdout.write(env_example())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
