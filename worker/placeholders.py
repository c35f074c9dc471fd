"""Personalised text: `{name}` placeholders in a content, filled from each recipient's values.

A placeholder is a name of letters, digits or underscores (any script: `{姓名}` matches a CSV
column 姓名) between braces; every other brace is text and is sent as it is. Pure functions: the
producer decides which field a missing value is reported on, and which rules the rendered text
must keep.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def placeholders(template: str) -> list[str]:
    """The names a template asks for, each once, in the order they first appear."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each placeholder replaced by its value; every one must have a value
    (the producer checks that first, naming each one missing)."""
    return PLACEHOLDER.sub(lambda found: values[found.group(1)], template)
