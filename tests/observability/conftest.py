from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer

AppFactory = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A Redis of this test only: the tests kill it."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def app_factory(postgresql_database_url: str) -> AppFactory:
    @asynccontextmanager
    async def factory(
        redis_url: str, **overrides: object
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings = make_settings(postgresql_database_url, redis_url, **overrides)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tales.test") as c:
                yield app, c

    return factory


class Scrape:
    """One parsed /metrics answer."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))
        self.samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in self.families
            for sample in family.samples
        }

    def family(self, name: str):
        return next(f for f in self.families if f.name == name)

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return Scrape(response.text)
