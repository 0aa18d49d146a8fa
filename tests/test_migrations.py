"""Alembic migrations on a fresh PostgreSQL database and a fresh SQLite file: upgrade from
empty, downgrade to base, round trip, and no drift between the models and the schema."""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import app.cache.outbox
import app.entities  # noqa: F401  (every model, so Base.metadata knows all tables)
from app.core.database import Base, create_engine
from app.main import load_settings
from tests.conftest import ROOT, TABLES, downgrade, migrate
from tests.support.postgres import create_database, drop_database, postgres_url

T = TypeVar("T")

#: The list filters of each table (GET /heroes?language=&name=, ...).
FILTERS = {
    "heroes": ("language", "name"),
    "children": ("name", "age", "gender"),
    "stories": ("child_id", "child_name", "language"),
}
#: Lists are ordered by created_at desc, id desc.
ORDER = ["created_at", "id"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that has never seen a migration."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = create_database()
    try:
        yield postgres_url(name)
    finally:
        drop_database(name)


async def upgrade_to(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop: migrate from a thread, as the CLI would.
    await asyncio.to_thread(migrate, url, revision)


async def downgrade_to(url: str, revision: str = "base") -> None:
    await asyncio.to_thread(downgrade, url, revision)


async def on_connection(url: str, work: Callable[[Connection], T]) -> T:
    engine = create_engine(load_settings(database_url=url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def schema_of(connection: Connection) -> dict[str, Any]:
    """What the migrations built, in a form two databases' answers can be compared in."""
    inspector = inspect(connection)
    schema: dict[str, Any] = {}
    for table in TABLES:
        if not inspector.has_table(table):
            continue
        schema[table] = {
            "columns": {
                column["name"]: (str(column["type"]), column["nullable"])
                for column in inspector.get_columns(table)
            },
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": {
                index["name"]: list(index["column_names"]) for index in inspector.get_indexes(table)
            },
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "checks": sorted(check["name"] for check in inspector.get_check_constraints(table)),
        }
    return schema


def model_drift(connection: Connection) -> list[Any]:
    """`alembic check`: what autogenerate would write to make the schema match the models."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()


async def test_upgrade_from_empty_creates_the_tables_and_an_index_for_every_filter(
    empty_database_url: str,
):
    assert await on_connection(empty_database_url, schema_of) == {}

    await upgrade_to(empty_database_url)

    schema = await on_connection(empty_database_url, schema_of)
    assert set(schema) == set(TABLES)
    for table, filters in FILTERS.items():
        indexes = schema[table]["indexes"]
        for column in filters:
            assert any(column in columns for columns in indexes.values()), (
                f"{table}.{column} is filtered on but not indexed"
            )
        assert ORDER in indexes.values(), f"{table} has no index for its list order"
        assert schema[table]["primary_key"] == ["id"]
    assert schema["heroes"]["indexes"]["ix_heroes_language"] == ["language"]
    assert schema["heroes"]["indexes"]["ix_heroes_name"] == ["name"]
    assert schema["children"]["indexes"]["ix_children_name_age_gender"] == ["name", "age", "gender"]
    assert schema["stories"]["indexes"]["ix_stories_child_id"] == ["child_id"]
    assert schema["stories"]["indexes"]["ix_stories_child_name"] == ["child_name"]
    assert schema["stories"]["indexes"]["ix_stories_language"] == ["language"]


async def test_upgrade_creates_foreign_keys_that_cascade_children_and_detach_heroes(
    empty_database_url: str,
):
    await upgrade_to(empty_database_url)

    schema = await on_connection(empty_database_url, schema_of)

    assert schema["stories"]["foreign_keys"] == [
        (("child_id",), "children", "CASCADE"),
        (("hero_id",), "heroes", "SET NULL"),
    ]


async def test_upgrade_records_the_head_revision(empty_database_url: str):
    await upgrade_to(empty_database_url)

    assert await on_connection(empty_database_url, current_revision) == head_revision()


async def test_downgrade_to_base_drops_every_table(empty_database_url: str):
    await upgrade_to(empty_database_url)

    await downgrade_to(empty_database_url)

    assert await on_connection(empty_database_url, schema_of) == {}
    assert await on_connection(empty_database_url, current_revision) is None


async def test_upgrade_downgrade_upgrade_round_trip_rebuilds_the_same_schema(
    empty_database_url: str,
):
    await upgrade_to(empty_database_url)
    first = await on_connection(empty_database_url, schema_of)

    await downgrade_to(empty_database_url)
    await upgrade_to(empty_database_url)

    assert await on_connection(empty_database_url, schema_of) == first
    assert await on_connection(empty_database_url, current_revision) == head_revision()


async def test_migrated_schema_matches_the_models(empty_database_url: str):
    await upgrade_to(empty_database_url)

    assert await on_connection(empty_database_url, model_drift) == []


async def test_models_and_an_empty_database_differ(empty_database_url: str):
    """The drift check above can see a difference: on an empty database it reports the tables."""
    drift = await on_connection(empty_database_url, model_drift)

    added = {change[1].name for change in drift if change[0] == "add_table"}
    assert added == {*TABLES, "cache_outbox"}
