"""Fixtures: a real PostgreSQL database created for the run, a SQLite file, a throwaway
redis-server, and the app over httpx. Behaviour tests run on both databases, with the
cache on and off: the answers must be identical."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import text

from alembic import command
from app.core.settings import Settings, load_settings
from app.main import create_app
from tests.support.postgres import create_database, drop_database, postgres_url
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("stories", "children", "heroes")


def migrate(database_url: str, revision: str = "head") -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.downgrade(config, revision)


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
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(database_url: str, redis_server: RedisServer, cache_enabled: bool) -> Settings:
    return make_settings(database_url, redis_server.url, redis_enabled=cache_enabled)


async def empty_database(app: FastAPI) -> None:
    async with app.state.engine.begin() as connection:
        for table in TABLES:
            await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def app(settings: Settings, redis_server: RedisServer) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await empty_database(application)
        redis_server.client().flushdb()
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tales.test") as http:
        yield http
