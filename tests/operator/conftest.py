"""Fixtures of the operator's features (warming, prefetching, the verifier, the dashboard):
the cached app on PostgreSQL with the admin token (`tests/cache`'s `Api`), built with
extra settings by `operator_api`."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from tests.cache.conftest import Api, cache_settings, serve
from tests.support.redis_server import RedisServer

OperatorApi = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def operator_api(postgresql_database_url: str, clean_redis: RedisServer) -> OperatorApi:
    """`async with operator_api(**settings) as api:` the cached app, database emptied."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[Api]:
        values: dict[str, Any] = {"cache_prefetch": True, **overrides}  # the default
        settings = cache_settings(postgresql_database_url, clean_redis.url, **values)
        async with serve(settings) as api:
            yield api

    return factory
