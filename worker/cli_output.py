"""How the `herald` commands write: `--json` for programs (the API's own JSON, times in UTC),
and rich tables and progress bars for people (times in the display zone, worker/display.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

import click
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from rich.console import Console

PIPED_WIDTH = 200
"""Columns a table may use when the output is not a terminal: rows stay whole for grep."""


def print_json(value: BaseModel | Sequence[BaseModel] | Mapping[str, BaseModel]) -> None:
    """What `--json` prints: the public schemas, in the JSON the HTTP API answers with."""
    click.echo(json.dumps(to_jsonable_python(value), ensure_ascii=False))


def console() -> Console:
    """A console on this command's standard output, made when the command runs (so a test's
    captured output is where it writes). Content is printed as given: no markup, no colouring
    of numbers."""
    stdout = sys.stdout
    return Console(
        file=stdout,
        markup=False,
        highlight=False,
        width=None if stdout.isatty() else PIPED_WIDTH,
    )
