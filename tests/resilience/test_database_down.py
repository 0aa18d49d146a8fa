"""PostgreSQL unreachable (a FaultProxy in front of it resets or black-holes every
connection): cached reads are still served, everything needing the database answers 503
`{"detail": "database unavailable"}` without leaking internals, no write is half-applied,
readiness says so while liveness stays up, and the service recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.database import UnitOfWork
from tests.api import payloads
from tests.resilience.conftest import HEROES, RELAXED, Instance, Serve
from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer

UNAVAILABLE = {"detail": "database unavailable"}
LEAKS = ("Traceback", "asyncpg", "sqlalchemy", "File ", "Error", "postgres")


@dataclass
class Outage:
    api: Instance  # talks to PostgreSQL through the proxy
    direct: Instance  # cache disabled, talks to PostgreSQL directly: the truth
    proxy: FaultProxy
    mode: str
    cached: dict[str, Any]  # a hero read until it is a cache hit
    uncached: dict[str, Any]  # a hero never read through the cache

    def fail(self) -> None:
        self.proxy.set_mode(self.mode)  # type: ignore[arg-type]

    def heal(self) -> None:
        self.proxy.set_mode("pass")


@pytest.fixture
def postgres_proxy(postgresql_database_url: str) -> Iterator[FaultProxy]:
    url = make_url(postgresql_database_url)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture(params=["reset", "blackhole"])
async def outage(
    request: pytest.FixtureRequest,
    serve: Serve,
    postgres_proxy: FaultProxy,
    postgresql_database_url: str,
    clean_redis: RedisServer,
) -> AsyncIterator[Outage]:
    through_proxy = (
        make_url(postgresql_database_url)
        .set(host=postgres_proxy.host, port=postgres_proxy.port)
        .render_as_string(hide_password=False)
    )
    async with (
        serve(
            clean_redis.url,
            database_url=through_proxy,
            database_statement_timeout=1.0,
            database_connect_timeout=1.0,
            **RELAXED,  # the fault is in the database: Redis must not look faulty
        ) as api,
        serve(clean_redis.url, redis_enabled=False) as direct,
    ):
        cached = await api.create_hero(payloads.hero(name="Luna"))
        uncached = await direct.create_hero(payloads.hero(name="Bolt", language="ru"))
        await api.warm_hero(cached)
        outage = Outage(api, direct, postgres_proxy, request.param, cached, uncached)
        try:
            yield outage
        finally:
            outage.heal()  # let the app's pool close its connections on shutdown


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == UNAVAILABLE
    assert response.headers["content-type"] == "application/json"
    for leak in LEAKS:
        assert leak not in response.text


async def test_cached_hero_is_served_while_the_database_is_down(outage: Outage) -> None:
    hits = await outage.api.hero_hits()
    outage.fail()
    for _ in range(3):
        assert await outage.api.get_hero(outage.cached["id"]) == outage.cached
    assert await outage.api.hero_hits() == hits + 3  # from Redis, the database untouched


async def test_reads_needing_the_database_answer_503_database_unavailable(outage: Outage) -> None:
    outage.fail()
    assert_unavailable(await outage.api.http.get(f"{HEROES}/{outage.uncached['id']}"))
    assert_unavailable(await outage.api.http.get(HEROES, params={"language": "ru"}))


async def test_writes_answer_503_and_leave_nothing_half_written(outage: Outage) -> None:
    target = outage.cached["id"]
    outage.fail()
    assert_unavailable(await outage.api.http.post(HEROES, json=payloads.hero(name="Ghost")))
    assert_unavailable(await outage.api.http.patch(f"{HEROES}/{target}", json={"name": "Nova"}))
    assert_unavailable(await outage.api.http.delete(f"{HEROES}/{outage.uncached['id']}"))
    outage.heal()

    truth = outage.direct
    assert (await truth.list_heroes(name="Ghost"))["total"] == 0
    assert await truth.get_hero(target) == outage.cached  # same name, same version
    assert await truth.get_hero(outage.uncached["id"]) == outage.uncached
    assert (await truth.list_heroes())["total"] == 2
    # and the cache did not take a write that the database refused
    assert await outage.api.get_hero(target) == outage.cached


async def test_write_cut_off_between_flush_and_commit_answers_503_and_is_rolled_back(
    outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = UnitOfWork.commit
    flushed: list[int] = []

    async def cut_off_then_commit(uow: UnitOfWork) -> None:
        flushed.append(len(uow.changes))  # the statement already ran in the open transaction
        outage.fail()
        await commit(uow)

    target = outage.cached["id"]
    monkeypatch.setattr(UnitOfWork, "commit", cut_off_then_commit)
    patch = await outage.api.http.patch(f"{HEROES}/{target}", json={"name": "Nova"})
    outage.heal()
    post = await outage.api.http.post(HEROES, json=payloads.hero(name="Ghost"))
    outage.heal()
    monkeypatch.undo()

    assert_unavailable(patch)
    assert_unavailable(post)
    assert flushed == [1, 1]
    truth = outage.direct
    assert await truth.get_hero(target) == outage.cached
    assert (await truth.list_heroes(name="Ghost"))["total"] == 0
    assert await outage.api.get_hero(target) == outage.cached


async def test_readiness_is_503_with_database_down_while_liveness_stays_200(
    outage: Outage,
) -> None:
    outage.fail()
    ready = await outage.api.http.get("/health/ready")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["database"]["status"] == "down"
    assert body["cache"]["status"] == "up"
    live = await outage.api.http.get("/health")
    assert live.status_code == 200 and live.json() == {"status": "ok"}


async def test_everything_works_again_once_the_database_is_back(outage: Outage) -> None:
    api = outage.api
    outage.fail()
    assert (await api.http.get("/health/ready")).status_code == 503
    outage.heal()

    ready = await api.http.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.text
    assert await api.get_hero(outage.uncached["id"]) == outage.uncached
    assert (await api.list_heroes(language="ru"))["items"] == [outage.uncached]
    created = await api.create_hero(payloads.hero(name="Ghost"))
    assert await outage.direct.get_hero(created["id"]) == created
    patched = await api.patch_hero(outage.cached["id"], {"name": "Nova"})
    assert patched["version"] == outage.cached["version"] + 1
    assert await api.get_hero(outage.cached["id"]) == patched
    deleted = await api.http.delete(f"{HEROES}/{outage.uncached['id']}")
    assert deleted.status_code == 204, deleted.text
    assert (await api.http.get(f"{HEROES}/{outage.uncached['id']}")).status_code == 404
