from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import empty_database, make_settings
from tests.stampede.helpers import LoadGate
from tests.support.redis_server import RedisServer

AppFactory = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def load_gate(monkeypatch: pytest.MonkeyPatch) -> LoadGate:
    return LoadGate().install(monkeypatch)


@pytest.fixture
async def app_factory(
    postgresql_database_url: str, redis_server: RedisServer
) -> AsyncIterator[AppFactory]:
    """Cached app instances on the run's PostgreSQL database and the session Redis (flushed),
    each with its own engine and CacheLayer, as separate processes would have."""
    redis_server.client().flushdb()
    cleaned = False

    @asynccontextmanager
    async def factory(
        redis_url: str | None = None, **overrides: object
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        nonlocal cleaned
        settings = make_settings(
            postgresql_database_url, redis_url or redis_server.url, redis_enabled=True, **overrides
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            if not cleaned:
                await empty_database(app)
                cleaned = True
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tales.test") as c:
                yield app, c

    yield factory
