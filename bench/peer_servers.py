"""The servers of the hit-path comparison, started for it and stopped after it: the peers
(`bench/peers/`) and tales-api with the near cache off. tales-api with the near cache on is
the bench's `cached` server. Every one is started by `Processes.start_uvicorn`, the command
line of the other servers (one worker, no access log)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import redis

from bench.peers import DATABASE_DSN_VAR, NAIVE_KEY_PREFIX, REDIS_URL_VAR
from bench.procs import Processes, Server, app_env


@dataclass(frozen=True)
class Peer:
    key: str  # results key: peer_<key>_get
    label: str
    app: str  # uvicorn app
    env: dict[str, str] = field(default_factory=dict)


PEERS = [
    Peer("naive", "naive FastAPI + redis-py GET (raw bytes)", "bench.peers.naive:app"),
    Peer("fastapi_cache2", "fastapi-cache2 @cache (RedisBackend)", "bench.peers.fastapi_cache:app"),
    Peer("cashews", "cashews @cache (Redis)", "bench.peers.cashews_app:app"),
    Peer(
        "cashews_client_side",
        "cashews @cache (Redis, client_side=True)",
        "bench.peers.cashews_app:app",
        {"BENCH_CASHEWS_CLIENT_SIDE": "1"},
    ),
]

NEAR_OFF_PREFIX = "benchnearoff:"  # its own entries: it publishes no near invalidations


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL `postgresql+asyncpg://...` as a plain DSN for asyncpg."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def start_peers(
    procs: Processes, redis_url: str, database_url: str
) -> tuple[dict[str, Server], dict[str, str]]:
    """Start and wait for every peer; (ready servers by key, errors by key)."""
    env = {REDIS_URL_VAR: redis_url, DATABASE_DSN_VAR: asyncpg_dsn(database_url)}
    started = {
        peer.key: procs.start_uvicorn(f"peer-{peer.key}", peer.app, app_env() | env | peer.env)
        for peer in PEERS
    }
    ready: dict[str, Server] = {}
    errors: dict[str, str] = {}
    for key, server in started.items():
        try:
            procs.wait_ready(server)
        except RuntimeError as exc:
            errors[key] = str(exc)
            procs.stop(server.proc)
        else:
            ready[key] = server
    return ready, errors


def start_near_off(procs: Processes, redis_url: str, database_url: str) -> Server:
    env = app_env(
        database_url=database_url,
        redis_url=redis_url,
        log_level="WARNING",
        cache_key_prefix=NEAR_OFF_PREFIX,
        cache_near_enabled="false",
    )
    server = procs.start_uvicorn("app-nearoff", "app.main:app", env)
    procs.wait_ready(server)
    return server


def store_naive_bodies(source: Server, hero_path: str, ids: list[str], redis_url: str) -> int:
    """Copy the bytes `source` serves for each hero into the naive peer's keys; total bytes."""
    total = 0
    client = redis.Redis.from_url(redis_url)
    try:
        with httpx.Client(base_url=source.url, timeout=10.0) as http:
            for hero_id in ids:
                response = http.get(f"{hero_path}/{hero_id}")
                response.raise_for_status()
                client.set(NAIVE_KEY_PREFIX + hero_id, response.content)
                total += len(response.content)
    finally:
        client.close()
    return total
