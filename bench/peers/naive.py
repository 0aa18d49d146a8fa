"""Peer: a naive FastAPI route doing one Redis `GET` (redis-py asyncio, hiredis parser) and
returning the raw bytes: the bytes tales-api serves for the hero, stored by the bench under
`NAIVE_KEY_PREFIX + id` before the measurement.

    BENCH_REDIS_URL=redis://... uvicorn bench.peers.naive:app
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from redis.asyncio import Redis

from bench.peers import HERO_ROUTE, NAIVE_KEY_PREFIX, redis_url

NOT_FOUND = 404


class State:
    redis: Redis


state = State()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    state.redis = Redis.from_url(redis_url())
    try:
        yield
    finally:
        await state.redis.aclose()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get(HERO_ROUTE)
async def get_hero(hero_id: str) -> Response:
    body = await state.redis.get(NAIVE_KEY_PREFIX + hero_id)
    if body is None:
        return Response(status_code=NOT_FOUND)
    return Response(body, media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
