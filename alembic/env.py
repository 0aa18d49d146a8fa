"""Alembic environment: async engine on DATABASE_URL (or the URL a caller put in the config)."""

import asyncio
from logging.config import fileConfig

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alembic import context
from app.cache import outbox  # noqa: F401  (the cache_outbox table)
from app.core.database import MIGRATION_LOCK_KEY, Base, create_engine
from app.core.settings import load_settings
from app.entities import ENTITIES  # every entity's model, so Base.metadata knows all tables

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    return config.attributes.get("database_url") or load_settings(ENTITIES).database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Before alembic reads the current revision; released at commit or rollback.
            # Two runs (replicas, a deploy and an operator) upgrade one after the other.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(load_settings(ENTITIES, database_url=_database_url()))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
