"""Without `CACHE_KEY_SALT`, two real service processes (`python -m app serve`) on one Redis
hash children's names with the one salt the first of them generated and kept in Redis: a
page one process cached is a hit in the other, and a write in one invalidates the other's
page. No key holds the name or its unkeyed BLAKE2b (which anyone with a list of names could
compute)."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cache import format
from app.cache.keys import DIGEST_BYTES
from tests.api import payloads
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess, running_services

CHILDREN = "/api/v1/children"
NAME = "Zoë Secretname"


@pytest.fixture
def two_processes(
    postgresql_database_url: str, clean_database: None, own_redis: RedisServer, tmp_path: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    with running_services(postgresql_database_url, own_redis.url, tmp_path, 2) as (a, b):
        yield a, b


async def child_hits(client: httpx.AsyncClient) -> int:
    response = await client.get("/cache/stats")
    assert response.status_code == 200
    return int(response.json()["entities"]["child"]["hits"])


async def test_two_processes_share_the_generated_salt(
    two_processes: tuple[ServiceProcess, ServiceProcess], own_redis: RedisServer
) -> None:
    a, b = (httpx.AsyncClient(base_url=service.url, timeout=10.0) for service in two_processes)
    async with a, b:
        created = await a.post(CHILDREN, json=payloads.child(name=NAME))
        assert created.status_code == 201, created.text
        child_id = created.json()["id"]

        first = await a.get(CHILDREN, params={"name": NAME})  # a miss in A: A fills the page
        assert first.json()["total"] == 1
        hits = await child_hits(b)
        second = await b.get(CHILDREN, params={"name": NAME})
        assert second.json() == first.json()
        assert await child_hits(b) == hits + 1, "B did not find the page A keyed"

        redis = own_redis.client()
        salt = redis.get(format.key_salt("tales:"))
        assert salt is not None and redis.ttl(format.key_salt("tales:")) == -1
        keys = [key.decode() for key in redis.keys("tales:*")]
        unkeyed = hashlib.blake2b(NAME.encode(), digest_size=DIGEST_BYTES).hexdigest()
        assert any(key.startswith("tales:child:{child.pages}:name:#") for key in keys), keys
        assert not [key for key in keys if unkeyed in key or "Zo" in key]

        renamed = await b.patch(f"{CHILDREN}/{child_id}", json={"name": "Ann"})
        assert renamed.status_code == 200
        assert (await a.get(CHILDREN, params={"name": NAME})).json()["total"] == 0
