"""Peer: cashews' `@cache` on a route that loads the hero from PostgreSQL (`heroes_pg.py`).

The backend is cashews' default for a `redis://` URL (values pickled); with
`BENCH_CASHEWS_CLIENT_SIDE=1` it is the client-side mode (`client_side=True`): a local
in-memory copy in front of Redis, dropped when Redis client tracking (BCAST) reports that
the key changed.

    BENCH_REDIS_URL=redis://... BENCH_DATABASE_DSN=postgresql://... \\
        [BENCH_CASHEWS_CLIENT_SIDE=1] uvicorn bench.peers.cashews_app:app
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from cashews import cache
from fastapi import FastAPI
from fastapi.responses import Response

from bench.peers import HERO_ROUTE, TTL_SECONDS, database_dsn, redis_url
from bench.peers.heroes_pg import HeroTable

CLIENT_SIDE_VAR = "BENCH_CASHEWS_CLIENT_SIDE"
CLIENT_SIDE = os.environ.get(CLIENT_SIDE_VAR) == "1"

heroes = HeroTable()
cache.setup(redis_url(), client_side=CLIENT_SIDE)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await cache.init()
    await heroes.open(database_dsn())
    try:
        yield
    finally:
        await heroes.close()
        await cache.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get(HERO_ROUTE)
@cache(ttl=TTL_SECONDS)
async def get_hero(hero_id: UUID) -> dict[str, Any]:
    return await heroes.load(hero_id)


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
