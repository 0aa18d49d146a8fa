"""How routes reach what the lifespan built: one `Services` object on `app.state`, and
dependencies that read it. Every route gets what it needs through these `Depends`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.audit import record_writes
from app.cache.outbox import Outbox
from app.cache.service import CacheService
from app.core.database import AfterCommit, UnitOfWork
from app.core.registry import EntitySpec, Registry
from app.core.repository import EntityRepository
from app.core.settings import Settings

RepositoryFactory = Callable[[UnitOfWork], EntityRepository]


@dataclass(frozen=True)
class Services:
    """Everything one app instance built at start-up."""

    settings: Settings
    registry: Registry
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    cache: CacheService
    repositories: Mapping[str, RepositoryFactory]  # entity -> this request's repository
    metrics: CollectorRegistry  # the app's own collectors (cache statistics)
    outbox: Outbox | None = None  # the invalidations of writes (None: no cache)
    pause_after_commit: AfterCommit | None = None  # a test hook (`UnitOfWork`)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


@asynccontextmanager
async def unit_of_work(services: Services) -> AsyncIterator[UnitOfWork]:
    """Commit once when the endpoint returned, roll back when it raised. The commit and the
    after-commit cache invalidation finish before the response is sent, and a failed commit
    becomes the response (409/503), not a lost write."""
    uow = UnitOfWork(services.session_factory, services.pause_after_commit)
    try:
        yield uow
        await uow.commit()
    except BaseException:
        await uow.rollback()
        raise
    finally:
        await uow.close()


def repository_dependency(spec: EntitySpec) -> Any:
    """`Depends` giving the entity's repository on this request's unit of work: cached when
        Redis is enabled. One generator dependency (no nested ones) keeps the cache-hit path
        short; function scope commits before the response is sent. A committed write is then
    recorded in the audit log."""

    async def dependency(request: Request) -> AsyncIterator[EntityRepository]:
        services = get_services(request)
        async with unit_of_work(services) as uow:
            yield services.repositories[spec.name](uow)
        if uow.changes:  # committed
            record_writes(request.scope, uow.changes)

    dependency.__name__ = f"{spec.name}_repository"
    return Depends(dependency, scope="function")
