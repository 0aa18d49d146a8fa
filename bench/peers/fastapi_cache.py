"""Peer: fastapi-cache2's `@cache` (RedisBackend, its default JsonCoder) on a route that
loads the hero from PostgreSQL (`heroes_pg.py`).

A hit is the decorator's Redis round trip (a TTL+GET pipeline), a JSON decode, and FastAPI
serializing the returned dict; the decorator also sets Cache-Control and ETag.

    BENCH_REDIS_URL=redis://... BENCH_DATABASE_DSN=postgresql://... \\
        uvicorn bench.peers.fastapi_cache:app
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi_cache import FastAPICache
from fastapi_cache.backends.redis import RedisBackend
from fastapi_cache.decorator import cache
from redis.asyncio import Redis

from bench.peers import HERO_ROUTE, TTL_SECONDS, database_dsn, redis_url
from bench.peers.heroes_pg import HeroTable

heroes = HeroTable()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    redis = Redis.from_url(redis_url())
    FastAPICache.init(RedisBackend(redis), prefix="peer-fastapi-cache2")
    await heroes.open(database_dsn())
    try:
        yield
    finally:
        await heroes.close()
        await redis.aclose()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get(HERO_ROUTE)
@cache(expire=TTL_SECONDS)
async def get_hero(hero_id: UUID) -> dict[str, Any]:
    return await heroes.load(hero_id)


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
