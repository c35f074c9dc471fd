"""Schemathesis against the API's own OpenAPI schema, in-process, on a fresh store: every
operation (the vendors' callbacks included), with valid and invalid input, answers no 500 and,
where it documents its answer, answers in that shape.

`CI_EXAMPLES_PER_OPERATION` examples per operation by default (a few hundred in all);
HERALD_FUZZ_EXAMPLES per operation when set, and then on PostgreSQL too (which refuses text
that SQLite keeps, such as NUL characters).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.conftest import CALLBACK_TOKEN, make_postgres_database
from tests.fuzz.conftest import DEEP, fuzz_examples
from tests.support import SettingsEnv
from worker.api import create_api

CI_EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
BACKENDS = ["sqlite", "postgresql"] if DEEP else ["sqlite"]
READINESS_PATH = "/readyz"


def examples_per_operation() -> int:
    return fuzz_examples() if DEEP else CI_EXAMPLES_PER_OPERATION


def load_schema() -> schemathesis.BaseSchema:
    """The schema the API serves at /openapi.json, called in-process (ASGI). Read from the app
    rather than fetched, so that nothing starts while tests are being collected."""
    app = create_api()
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.app = app
    loaded.location = "/openapi.json"
    loaded.config.generation.update(
        modes=["positive", "negative"], max_examples=examples_per_operation(), database="none"
    )
    return loaded


schema = load_schema()


@pytest.fixture(autouse=True, params=BACKENDS)
def fresh_store(
    request: pytest.FixtureRequest, settings_env: SettingsEnv, tmp_path: Path, redis_url: str
) -> Iterator[str]:
    """A new, empty store for each operation's run (and the settings that open every callback)."""
    from worker.store import migrate, reset_engine

    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url, drop = make_postgres_database()
    settings_env.setenv("HERALD_DATABASE_URL", url)
    settings_env.setenv("HERALD_CHUANGRUI_ACCESS_SECRET", "fuzz-access-secret")
    settings_env.setenv("HERALD_CHUANGRUI_MO_NAME", "fuzz")
    reset_engine()
    migrate.upgrade(url)
    yield url
    reset_engine()
    if drop is not None:
        drop()


@schema.parametrize()
def test_no_operation_answers_500_or_breaks_its_schema(case: Case) -> None:
    if "token" in case.path_parameters:
        # Past the token check, where the push is read and stored; a wrong token is only a 403.
        case.path_parameters["token"] = CALLBACK_TOKEN
    if case.path == READINESS_PATH:
        # No worker or beat runs here, so readiness's documented answer is 503 "unready": it is
        # checked against its schema, and may be 503 (or a 4xx for a negative case), never a 500.
        response = case.call_and_validate(checks=CHECKS, excluded_checks=[not_a_server_error])
        assert response.status_code < 500 or response.status_code == 503, response.text
        return
    case.call_and_validate(checks=CHECKS)
