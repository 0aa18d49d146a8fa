"""Application factory: `create_app()` builds everything once, in the lifespan, into one
`Services` object on `app.state`: settings, engine, session factory, the Redis-backed cache
and, per entity, the factory of each request's repository (cached when Redis is enabled)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

from app.api.access import access_control
from app.api.admin import admin_router
from app.api.contract import operation_id, publish_openapi
from app.api.dashboard import router as dashboard_router
from app.api.dependencies import RepositoryFactory, Services
from app.api.entities import entity_router
from app.api.health import router as health_router
from app.api.methods import install_method_not_allowed
from app.api.metrics import RequestMetrics
from app.api.metrics import router as metrics_router
from app.api.near_front import NearFront, NearSlot
from app.api.operator import operator_router
from app.api.security_docs import document_security
from app.cache.cached_repository import CachedRepository, CacheLayer
from app.cache.latency_metrics import RequestLatencyCollector
from app.cache.operations import Operations
from app.cache.outbox import Outbox
from app.cache.prefetch import Prefetcher, PrefetchingRepository
from app.cache.service import CacheService
from app.cache.stats import CacheStatsCollector
from app.cache.verifier import VerifierCollector
from app.core import access_log
from app.core import settings as core_settings
from app.core.database import AfterCommit, UnitOfWork, create_engine, create_session_factory
from app.core.errors import install_error_handlers
from app.core.gc import freeze_startup_objects
from app.core.http import BodySizeLimit
from app.core.registry import EntitySpec, Registry
from app.core.repository import SQLAlchemyRepository
from app.core.settings import Settings
from app.entities import ENTITIES


def load_settings(registry: Registry = ENTITIES, **overrides: Any) -> Settings:
    """The settings of an app serving `registry`, from the environment, `.env` and
    `overrides`; invalid values raise `SettingsError` naming the variables."""
    return core_settings.load_settings(registry, **overrides)


def build_repositories(
    registry: Registry, layer: CacheLayer | None, prefetcher: Prefetcher | None = None
) -> dict[str, RepositoryFactory]:
    """Per entity, a factory giving this request's repository: cached when Redis is enabled
    (`layer`, whose outbox records every write's invalidation), prefetching for the entities
    `prefetcher` has rules for."""

    def plain(spec: EntitySpec, uow: UnitOfWork) -> SQLAlchemyRepository:
        return SQLAlchemyRepository(spec, registry, uow)

    if layer is None:
        return {spec.name: partial(plain, spec) for spec in registry}

    def cached(spec: EntitySpec, uow: UnitOfWork) -> CachedRepository:
        if prefetcher is not None and spec.name in prefetcher.rules:
            return PrefetchingRepository(plain(spec, uow), layer, prefetcher)
        return CachedRepository(plain(spec, uow), layer)

    return {spec.name: partial(cached, spec) for spec in registry}


def create_app(
    settings: Settings | None = None,
    registry: Registry = ENTITIES,
    *,
    pause_after_commit: AfterCommit | None = None,
) -> FastAPI:
    """The app; `pause_after_commit` is a test hook (see `UnitOfWork`), never set in service."""
    settings = settings or load_settings(registry)
    near = NearSlot()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        session_factory = create_session_factory(engine)
        cache = CacheService(settings, registry)
        await cache.warm_up()
        outbox = None
        if cache.enabled:
            outbox = Outbox(session_factory, cache, settings.cache_repair_bound_ms)
            await outbox.start()
        layer = None if outbox is None else CacheLayer(cache, registry, outbox)
        operations = Operations(settings, registry, cache, session_factory, layer)
        metrics = CollectorRegistry(auto_describe=True)
        metrics.register(CacheStatsCollector(cache.stats, cache.breaker_state))
        metrics.register(RequestLatencyCollector(cache.stats.latency))
        metrics.register(VerifierCollector(operations.verifier))
        app.state.services = Services(
            settings=settings,
            registry=registry,
            engine=engine,
            session_factory=session_factory,
            cache=cache,
            repositories=build_repositories(registry, layer, operations.prefetcher),
            metrics=metrics,
            outbox=outbox,
            pause_after_commit=pause_after_commit,
        )
        app.state.operations = operations
        operations.start()
        near.bus, near.stats = cache.near, cache.stats
        freeze_startup_objects()
        try:
            yield
        finally:
            near.bus = None
            await operations.close()
            if outbox is not None:
                await outbox.stop()  # rows it could not apply stay for the other processes
            await cache.close()  # owed invalidations are tried once more
            await engine.dispose()

    app = FastAPIOffline(
        title="tales-api",
        version="0.1.0",
        description="Heroes, children and stories of a bedtime-story app, cached in Redis.",
        lifespan=lifespan,
        # The service exports Prometheus metrics (/metrics). FastAPI's native OpenTelemetry
        # would otherwise look for a configured provider on every request (a tenth of a
        # near hit, measured with py-spy).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        generate_unique_id_function=operation_id,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(admin_router(registry))
    app.include_router(operator_router(registry))
    app.include_router(dashboard_router)
    for spec in registry:
        app.include_router(entity_router(spec))
    install_method_not_allowed(app)
    publish_openapi(app)
    # The near cache's lean path goes in front of the whole stack (FastAPI's own error,
    # telemetry and body-limit middlewares included): a near hit runs none of it. The
    # access check runs first in that layer: no answer, cached or not, before it.
    app.middleware_stack = NearFront(app.build_middleware_stack(), near, access_control(settings))
    if settings.auth_enabled:
        document_security(app, settings.auth_protect_operator_routes)
    return app


def _app_from_environment() -> FastAPI:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    access_log.install()  # also when uvicorn was started by hand, not by `python -m app serve`
    return create_app(settings)


def __getattr__(name: str) -> FastAPI:
    """`app.main:app`, as uvicorn loads it: the app of the environment's settings, built on
    first use (importing this module reads no setting)."""
    if name != "app":
        raise AttributeError(name)
    built = _app_from_environment()
    globals()["app"] = built
    return built
