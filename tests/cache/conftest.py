"""Fixtures for the cache tests: the app with Redis caching on, served over httpx.

`api` is the cached app on PostgreSQL; `api_any_db` is the same on SQLite and PostgreSQL.
Both start from an empty database and an empty (session-wide) redis-server. Tests that kill,
restart or password-protect Redis start their own `RedisServer` and use `serve()`. Request
bodies come from `tests.api.payloads`.

`Api.cached_read` is the workhorse: it reads twice and asserts that the second read was a
cache hit (hits +1, misses unchanged in `GET /cache/stats`) with identical bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from app.cache.format import EntityKeys
from app.cache.keys import KeyEncoder
from app.core.settings import Settings
from app.entities import ENTITIES
from tests.api.helpers import COLLECTIONS, create, list_page, url
from tests.api.payloads import API
from tests.conftest import make_settings, serve_app
from tests.support.redis_server import RedisServer

ADMIN_TOKEN = "cache-admin-token-for-tests"
ENTITY_OF_COLLECTION = {collection: entity for entity, collection in COLLECTIONS.items()}
STAT_FIELDS = ("hits", "misses", "hit_rate", "sets", "invalidations", "errors")


def cache_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    """Settings of a cached app with the admin endpoints enabled."""
    values: dict[str, Any] = {"redis_enabled": True, "admin_token": ADMIN_TOKEN}
    values.update(overrides)
    return make_settings(database_url, redis_url, **values)


def entity_of_path(path: str) -> str:
    return ENTITY_OF_COLLECTION[path.removeprefix(f"{API}/").split("/")[0]]


class Api:
    """The HTTP client of one running app, with helpers for CRUD and cache statistics."""

    def __init__(self, http: httpx.AsyncClient, app: FastAPI) -> None:
        self.http = http
        self.app = app

    @property
    def settings(self) -> Settings:
        return self.app.state.services.settings

    # -- cache statistics ------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        response = await self.http.get("/cache/stats")
        assert response.status_code == 200, response.text
        return response.json()

    async def counters(self, entity: str) -> dict[str, Any]:
        return (await self.stats())["entities"][entity]

    # -- reads -----------------------------------------------------------------------------
    async def cached_read(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET twice; the second GET must be a cache hit serving the same status and bytes."""
        entity = entity_of_path(path)
        first = await self.http.get(path, params=params)
        before = await self.counters(entity)
        second = await self.http.get(path, params=params)
        after = await self.counters(entity)
        assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"]), (
            f"GET {path} {params or ''} was not served from the cache: {before} -> {after}"
        )
        assert second.status_code == first.status_code
        assert second.content == first.content
        return second

    async def entry(self, entity: str, entity_id: str) -> dict[str, Any]:
        """GET by id (asserting a cache hit on the re-read); the body of a 200."""
        response = await self.cached_read(url(entity, entity_id))
        assert response.status_code == 200, response.text
        return response.json()

    async def entry_status(self, entity: str, entity_id: str) -> int:
        return (await self.cached_read(url(entity, entity_id))).status_code

    async def page(self, entity: str, **params: Any) -> dict[str, Any]:
        """A list page (asserting a cache hit on the re-read)."""
        response = await self.cached_read(url(entity), params)
        assert response.status_code == 200, response.text
        return response.json()

    async def items(self, entity: str, **params: Any) -> dict[str, dict[str, Any]]:
        """The listed items by id."""
        return {item["id"]: item for item in (await self.page(entity, **params))["items"]}

    async def ids(self, entity: str, **params: Any) -> list[str]:
        return [item["id"] for item in (await self.page(entity, **params))["items"]]

    # -- uncached plain calls --------------------------------------------------------------
    async def get(self, entity: str, entity_id: str) -> httpx.Response:
        return await self.http.get(url(entity, entity_id))

    async def list(self, entity: str, **params: Any) -> dict[str, Any]:
        return await list_page(self.http, entity, **params)

    # -- writes ----------------------------------------------------------------------------
    async def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        return await create(self.http, entity, body)

    async def patch(self, entity: str, entity_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.patch(url(entity, entity_id), json=changes)
        assert response.status_code == 200, response.text
        return response.json()

    async def rate(self, story_id: str, rating: int) -> dict[str, Any]:
        response = await self.http.put(f"{url('story', story_id)}/rating", json={"rating": rating})
        assert response.status_code == 200, response.text
        return response.json()

    async def delete(self, entity: str, entity_id: str) -> None:
        response = await self.http.delete(url(entity, entity_id))
        assert response.status_code == 204, response.text

    async def flush(self, what: str = "") -> dict[str, Any]:
        """DELETE /cache or /cache/{heroes|children|stories} with the admin token."""
        response = await self.http.delete(
            f"/cache{'/' + what if what else ''}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def serve(settings: Settings, *, empty: bool = True) -> AsyncIterator[Api]:
    """`serve_app` with an `Api` on it: the database is emptied first unless `empty=False`."""
    async with serve_app(settings, empty=empty) as (app, http):
        yield Api(http, app)


@pytest.fixture
async def api(postgresql_database_url: str, clean_redis: RedisServer) -> AsyncIterator[Api]:
    """The cached app on PostgreSQL with helpers."""
    async with serve(cache_settings(postgresql_database_url, clean_redis.url)) as api:
        yield api


@pytest.fixture
async def api_any_db(database_url: str, clean_redis: RedisServer) -> AsyncIterator[Api]:
    """The cached app on SQLite and on PostgreSQL (parametrized by `database_url`)."""
    async with serve(cache_settings(database_url, clean_redis.url)) as api:
        yield api


@pytest.fixture
def redis(redis_server: RedisServer) -> Any:
    """A sync client on the session redis-server, for looking at the keys."""
    return redis_server.client()


def entity_keys(entity: str, prefix: str = "tales:") -> EntityKeys:
    """The key names of `entity` (`app/cache/format.py`)."""
    return EntityKeys(ENTITIES[entity], prefix, KeyEncoder())


def entry_key(entity: str, entity_id: str, prefix: str = "tales:") -> str:
    return entity_keys(entity, prefix).entry(UUID(entity_id))


def all_keys(client: Any) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(count=1000))
