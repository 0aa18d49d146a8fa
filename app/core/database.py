"""Engine, session factory and the per-request unit of work."""

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from app.core.documents import Change
from app.core.settings import Settings

#: PostgreSQL advisory lock (a bigint key) held by a migration run for its transaction
#: (alembic/env.py): two runs, started together, upgrade one after the other and the second
#: finds the schema at head. An arbitrary constant: "tales" and 1.
MIGRATION_LOCK_KEY = 0x7461_6C65_7301

logger = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _enable_sqlite_foreign_keys(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        pool_timeout=settings.database_connect_timeout,
        connect_args={
            "timeout": settings.database_connect_timeout,
            "command_timeout": settings.database_statement_timeout,
        },
    )


def _enable_sqlite_foreign_keys(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork:
    """One session per request, committed once.

    Repositories only flush. Work registered with `after_commit` (cache invalidation) runs
    after the commit and before the response is sent, so that an acknowledged write is
    already visible to every later reader. The session is opened lazily: a request served
    from the cache never touches the database.

    A COMMIT that raised may still have been applied (the connection broke after the server
    committed: an ambiguous commit). The after-commit work then runs anyway, harmless if the
    write did not happen, before the error becomes the response (503).

    `pause_after_commit` is a test hook only (the service never sets it): awaited between
    the COMMIT and the after-commit work, it lets a test stop or kill a writer there.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        pause_after_commit: AfterCommit | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self.changes: list[Change] = []
        self._after_commit: list[AfterCommit] = []
        self._pause_after_commit = pause_after_commit

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    def after_commit(self, callback: AfterCommit) -> None:
        self._after_commit.append(callback)

    async def commit(self) -> None:
        if self._session is not None:
            try:
                await self._session.commit()
            except Exception:
                await self._run_after_commit(ambiguous=True)
                raise
        if self._pause_after_commit is not None:
            await self._pause_after_commit()
        await self._run_after_commit()

    async def _run_after_commit(self, *, ambiguous: bool = False) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            if not ambiguous:
                await callback()
                continue
            try:
                await callback()
            except Exception:  # the COMMIT's error is the one the client gets
                logger.exception("after-commit work of an ambiguous commit failed")

    async def rollback(self) -> None:
        self._after_commit.clear()
        self.changes.clear()
        if self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
