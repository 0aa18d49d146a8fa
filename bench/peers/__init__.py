"""Peers: small apps that serve the same hero JSON from the same Redis as tales-api, each
started by the bench with the same uvicorn command line as the product (one worker).

- `naive`: one redis-py (asyncio, hiredis) `GET` of bytes the bench stored, returned as is;
- `fastapi_cache`: fastapi-cache2 `@cache` (RedisBackend) in front of a PostgreSQL load;
- `cashews_app`: cashews `@cache` (Redis backend) in front of the same load; with
  `BENCH_CASHEWS_CLIENT_SIDE=1`, cashews' client-side mode (`client_side=True`: a local
  memory copy, invalidated through Redis client tracking).

The decorated peers mirror "a cache in front of the database": a miss loads the hero from
the bench's PostgreSQL database with asyncpg (`heroes_pg.py`); the bench measures hits only
(every id is read once before a measurement). Every peer serves `GET /api/v1/heroes/{id}` and
`GET /health`, and reads its settings from the environment variables below.
"""

import os

#: the bench's redis-server
REDIS_URL_VAR = "BENCH_REDIS_URL"
#: asyncpg DSN of the bench's database
DATABASE_DSN_VAR = "BENCH_DATABASE_DSN"
#: key of the naive peer's copy of a hero's JSON (the bytes tales-api serves), by id
NAIVE_KEY_PREFIX = "peer:naive:hero:"
#: route of every peer: the product's path, so that the same load script serves both
HERO_ROUTE = "/api/v1/heroes/{hero_id}"
#: lifetime of a decorated peer's entry (the product's hero TTL is also an hour)
TTL_SECONDS = 3600


def redis_url() -> str:
    return os.environ[REDIS_URL_VAR]


def database_dsn() -> str:
    return os.environ[DATABASE_DSN_VAR]
