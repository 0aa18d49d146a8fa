from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import empty_database, make_settings
from tests.support.redis_server import RedisServer

CachedApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def cached_app(postgresql_database_url: str, redis_server: RedisServer) -> CachedApp:
    """Factory for cached app instances sharing one PostgreSQL database and one Redis,
    as several processes of the service would."""
    redis_server.client().flushdb()

    @asynccontextmanager
    async def factory(
        redis_url: str | None = None, **overrides: object
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings = make_settings(
            postgresql_database_url, redis_url or redis_server.url, redis_enabled=True, **overrides
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tales.test") as c:
                yield app, c

    return factory


@pytest.fixture
async def clean_database(postgresql_database_url: str, redis_server: RedisServer) -> None:
    settings = make_settings(postgresql_database_url, redis_server.url, redis_enabled=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await empty_database(app)
