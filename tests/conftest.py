"""Fixtures: a real PostgreSQL database created for the run, a SQLite file, a throwaway
redis-server, and the app over httpx. Behaviour tests run on both databases, with the
cache on and off: the answers must be identical.

Every test that runs the app starts it with `serve_app`, directly or through a fixture:
`app`/`client` here, `cached_instance` (several cached instances sharing PostgreSQL and
Redis), and the per-directory ones with their own defaults (`tests/cache`: `api`,
`tests/resilience`: `serve`)."""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from alembic import command
from app.core.registry import Registry
from app.core.settings import Settings, settings_class
from app.entities import ENTITIES
from app.main import create_app, load_settings
from tests.support.postgres import create_database, drop_database, postgres_url
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("stories", "children", "heroes")
BASE_URL = "http://tales.test"

AppAndClient = tuple[FastAPI, httpx.AsyncClient]
#: A factory of app instances: `async with factory(...) as (app, client): ...`
AppFactory = Callable[..., AbstractAsyncContextManager[AppAndClient]]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


@pytest.fixture(scope="session", autouse=True)
def clean_environment() -> Iterator[None]:
    """No setting leaks in from the developer's environment: every variable the service
    reads is unset for the run (and `make_settings` ignores `.env`)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in settings_class(ENTITIES).model_fields:
            patch.delenv(name.upper(), raising=False)
        yield


@pytest.fixture(scope="session")
def postgresql_database_url() -> Iterator[str]:
    name = create_database()
    url = postgres_url(name)
    migrate(url)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'tales.db'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_database_url")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["cache", "nocache"])
def cache_enabled(request: pytest.FixtureRequest) -> bool:
    return request.param == "cache"


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        # generous on a noisy 2-core machine; fault tests set their own
        "redis_socket_timeout": 1.0,
        "redis_connect_timeout": 1.0,
        "redis_pool_timeout": 1.0,
        "log_level": "DEBUG",
        # off here: many tests count keys and database loads exactly, and a prefetch adds a
        # story page to every child miss; tests/operator turns it on (the service's default)
        "cache_prefetch": False,
        "_env_file": None,  # a developer's .env must not change what the tests run
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(database_url: str, redis_server: RedisServer, cache_enabled: bool) -> Settings:
    return make_settings(database_url, redis_server.url, redis_enabled=cache_enabled)


async def empty_database(engine: AsyncEngine) -> None:
    """Delete every row (stories first: they refer to children and heroes), and the cache
    outbox rows an earlier test left (their keys belong to another test's Redis)."""
    async with engine.begin() as connection:
        for table in ("cache_outbox", *TABLES):
            await connection.execute(text(f"DELETE FROM {table}"))


@asynccontextmanager
async def serve_app(
    settings: Settings, *, empty: bool = True, registry: Registry = ENTITIES
) -> AsyncIterator[AppAndClient]:
    """Run one app instance's lifespan (its own engine and cache layer, as one process of the
    service would have) and yield it with an httpx client over ASGI.

    `empty` deletes every row first; factories of several instances on one database pass
    False and empty it once per test instead (`clean_database`)."""
    app = create_app(settings, registry)
    async with app.router.lifespan_context(app):
        if empty:
            await empty_database(app.state.services.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield app, client


@pytest.fixture
async def clean_database(postgresql_database_url: str) -> None:
    """The run's PostgreSQL database emptied for this test."""
    engine = create_async_engine(postgresql_database_url)
    try:
        await empty_database(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> RedisServer:
    """The session redis-server, flushed for this test."""
    redis_server.client().flushdb()
    return redis_server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for this test alone: it may be paused, killed or restarted."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def cached_instance(
    postgresql_database_url: str, clean_database: None, clean_redis: RedisServer
) -> AppFactory:
    """Factory of cached app instances on the run's PostgreSQL database (emptied once for the
    test) and the session redis-server (flushed), as several processes of the service sharing
    them would be. `redis_url` points an instance at another Redis; other keywords override
    settings."""

    def factory(
        redis_url: str | None = None, **overrides: object
    ) -> AbstractAsyncContextManager[AppAndClient]:
        settings = make_settings(
            postgresql_database_url, redis_url or clean_redis.url, redis_enabled=True, **overrides
        )
        return serve_app(settings, empty=False)

    return factory


@pytest.fixture
async def app_and_client(
    settings: Settings, clean_redis: RedisServer
) -> AsyncIterator[AppAndClient]:
    """The app of `settings` (both databases, cache on and off), emptied, over httpx."""
    async with serve_app(settings) as served:
        yield served


@pytest.fixture
def app(app_and_client: AppAndClient) -> FastAPI:
    return app_and_client[0]


@pytest.fixture
def client(app_and_client: AppAndClient) -> httpx.AsyncClient:
    return app_and_client[1]
