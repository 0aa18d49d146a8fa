"""Property-based conformance: schemathesis generates requests from the app's own OpenAPI
schema and checks every response against it (no 5xx, documented status codes and content
types, bodies that match the response schemas).

Runs over ASGI on a migrated SQLite file with the cache disabled; bounded and derandomized so
that the run is reproducible and short.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.conftest import make_settings, migrate

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
UNUSED_REDIS = "redis://127.0.0.1:9/0"  # the cache is disabled: never connected to


def make_app(database_url: str) -> FastAPI:
    settings = make_settings(database_url, UNUSED_REDIS, redis_enabled=False, log_level="WARNING")
    return create_app(settings)


# The schema is what the app serves at /openapi.json. It is built without starting the app (no
# lifespan, no database), so collecting this module has no side effects; the requests go to the
# module's own app on a migrated database. (`schemathesis.pytest.from_fixture` would load it
# lazily, but fails on pytest 9: it writes `Function._nodeid`, which no longer exists.)
schema = schemathesis.openapi.from_dict(make_app("sqlite+aiosqlite://").openapi())


@pytest.fixture(scope="module")
def conformance_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('schemathesis') / 'tales.db'}"
    migrate(url)
    app = make_app(url)
    assert schemathesis.openapi.from_dict(app.openapi()).raw_schema == schema.raw_schema
    try:
        yield app
    finally:
        # schemathesis runs the app's lifespan in its own event-loop thread; end it here so
        # that the engine is disposed before the run ends, not at interpreter exit.
        asgi.shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_conforms_to_the_openapi_schema(
    case: schemathesis.Case, conformance_app: FastAPI
):
    case.call_and_validate(app=conformance_app, checks=CHECKS)
