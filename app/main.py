"""Application factory: `create_app()` builds everything once in the lifespan and puts it on
`app.state`: settings, engine, session factory, Redis-backed cache, repository factories."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

from app.cache.cached_repository import CachedRepository, CacheLayer
from app.cache.keys import KeyEncoder
from app.cache.metrics import RequestMetrics
from app.cache.metrics import router as metrics_router
from app.cache.router import AdminDenied, admin_denied_handler
from app.cache.router import router as cache_router
from app.cache.service import CacheService
from app.cache.stats import CacheStatsCollector
from app.cache.strategy import CacheStrategy, EntityKeys
from app.children.repository import ChildRepository
from app.children.router import router as children_router
from app.children.strategy import CHILD_STRATEGY
from app.core.database import UnitOfWork, create_engine, create_session_factory
from app.core.errors import install_error_handlers
from app.core.http import BodySizeLimit
from app.core.repository import SQLAlchemyRepository
from app.core.settings import Settings, get_settings
from app.health.router import router as health_router
from app.heroes.repository import HeroRepository
from app.heroes.router import router as heroes_router
from app.heroes.strategy import HERO_STRATEGY
from app.stories.repository import StoryRepository
from app.stories.router import router as stories_router
from app.stories.strategy import STORY_STRATEGY

#: entity -> (SQLAlchemy repository, cache strategy)
ENTITIES: dict[str, tuple[type[SQLAlchemyRepository[Any, Any]], CacheStrategy]] = {
    "hero": (HeroRepository, HERO_STRATEGY),
    "child": (ChildRepository, CHILD_STRATEGY),
    "story": (StoryRepository, STORY_STRATEGY),
}

RepositoryFactory = Callable[[UnitOfWork], Any]


def build_repositories(settings: Settings, cache: CacheService) -> dict[str, RepositoryFactory]:
    """Per entity, a factory giving this request's repository: cached when Redis is enabled."""
    if not cache.enabled:
        return {entity: repository for entity, (repository, _) in ENTITIES.items()}
    encoder = KeyEncoder(settings.cache_key_salt.get_secret_value().encode())
    keys = {
        entity: EntityKeys(strategy, settings.cache_key_prefix, encoder)
        for entity, (_, strategy) in ENTITIES.items()
    }
    ttls = {
        entity: getattr(settings, strategy.ttl_setting)
        for entity, (_, strategy) in ENTITIES.items()
    }
    layer = CacheLayer(cache, keys, ttls)

    def cached(repository: type[SQLAlchemyRepository[Any, Any]]) -> RepositoryFactory:
        cached_class = type(
            f"Cached{repository.__name__}", (repository.finders, CachedRepository), {}
        )
        return lambda uow: cached_class(repository(uow), layer)

    return {entity: cached(repository) for entity, (repository, _) in ENTITIES.items()}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        cache = CacheService(settings, list(ENTITIES))
        await cache.warm_up()
        registry = CollectorRegistry(auto_describe=True)
        registry.register(CacheStatsCollector(cache.stats, cache.breaker_state))
        app.state.settings = settings
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.cache = cache
        app.state.metrics_registry = registry
        app.state.repositories = build_repositories(settings, cache)
        try:
            yield
        finally:
            await cache.close()
            await engine.dispose()

    app = FastAPIOffline(
        title="tales-api",
        version="0.1.0",
        description="Heroes, children and stories of a bedtime-story app, cached in Redis.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_exception_handler(AdminDenied, admin_denied_handler)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(cache_router)
    for router in (heroes_router, children_router, stories_router):
        app.include_router(router)
    return app


def _app_from_environment() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return create_app(settings)


app = _app_from_environment()
