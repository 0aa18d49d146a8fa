"""Application factory: `create_app()` builds everything once in the lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app.children.repository import ChildRepository
from app.children.router import router as children_router
from app.core.database import create_engine, create_session_factory
from app.core.errors import install_error_handlers
from app.core.http import BodySizeLimit
from app.core.settings import Settings, get_settings
from app.health.router import router as health_router
from app.heroes.repository import HeroRepository
from app.heroes.router import router as heroes_router
from app.stories.repository import StoryRepository
from app.stories.router import router as stories_router

REPOSITORIES = {
    "hero": HeroRepository,
    "child": ChildRepository,
    "story": StoryRepository,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.cache = None
        app.state.repositories = dict(REPOSITORIES)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPIOffline(
        title="tales-api",
        version="0.1.0",
        description="Heroes, children and stories of a bedtime-story app, cached in Redis.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health_router)
    for router in (heroes_router, children_router, stories_router):
        app.include_router(router, prefix="/api/v1")
    return app


def _app_from_environment() -> FastAPI:
    logging.basicConfig(level=get_settings().log_level)
    return create_app()


app = _app_from_environment()
