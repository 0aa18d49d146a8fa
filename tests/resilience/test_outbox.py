"""Invalidations are never lost: each write's invalidation is recorded in its own transaction
(the `cache_outbox` row) and applied by any live process, so once a write is acknowledged no
instance serves older data for longer than CACHE_REPAIR_BOUND_MS - when the writer lost
Redis (one-sided partition, its breaker open), was killed right after COMMIT, shut down with
the invalidation pending, or could not tell whether its COMMIT went through. And an
invalidation that timed out (but ran) moves no epoch: the rest of the cache stays warm.

Real PostgreSQL and redis-server; the partition is a FaultProxy in front of one instance's
Redis; the killed writer is a service process paused by the test hook between COMMIT and
invalidation, then SIGKILLed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from app.cache.invalidation import InvalidationPlan
from app.cache.outbox import OutboxRow, encode
from app.cache.service import Marker
from app.core.settings import Settings
from tests.api import payloads
from tests.cache.conftest import entry_key
from tests.resilience.conftest import HEROES, LONG_COOLDOWN, RELAXED, Instance, Serve, outbox_of
from tests.resilience.test_no_stale_after_outage import cached_version
from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess

#: CACHE_REPAIR_BOUND_MS, the default (seconds).
BOUND = Settings.model_fields["cache_repair_bound_ms"].default / 1000
#: Reads go on this long after the bound: every one of them must show the write.
WATCH = 0.5
#: How long a test waits for a fact it polls for (the writer's COMMIT, a late command).
POLL_WITHIN = 10.0


async def served_version(instance: Instance, hero_id: str) -> int:
    return int((await instance.get_hero(hero_id))["version"])


async def assert_served_within_bound(
    instance: Instance, hero_id: str, version: int, since: float
) -> float:
    """Read the hero through `instance` until `since + BOUND + WATCH`: every read begun after
    `since + BOUND` answers `version`, and once a read answered it no later one goes back.
    Returns when it was first served (seconds after `since`)."""
    first: float | None = None
    while (began := time.monotonic()) < since + BOUND + WATCH:
        served = await served_version(instance, hero_id)
        if began > since + BOUND or first is not None:
            assert served == version, (
                f"version {served} served {began - since:.3f} s after the write "
                f"(bound {BOUND} s, new version {version}, first served at {first})"
            )
        if served == version and first is None:
            first = began - since
        await asyncio.sleep(0.01)
    assert first is not None
    print(f"\nthe write was served {first * 1000:.0f} ms after it (bound {BOUND * 1000:.0f} ms)")
    return first


async def outbox_rows(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(OutboxRow)) or 0)
    finally:
        await engine.dispose()


async def stored_version(instance: Instance, hero_id: str) -> int | None:
    async with instance.app.state.services.engine.connect() as connection:
        version = await connection.scalar(
            text("SELECT version FROM heroes WHERE id = :id"), {"id": hero_id}
        )
    return None if version is None else int(version)


async def until(check: Any, within: float = POLL_WITHIN) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"not true within {within} s"
        await asyncio.sleep(0.01)
    return time.monotonic()


# -- the writer lost Redis ---------------------------------------------------------------------


@pytest.mark.parametrize("breaker", ["closed", "open"])
async def test_a_write_acknowledged_by_an_instance_cut_off_from_redis_is_served_by_the_other(
    own_redis: RedisServer, serve: Serve, breaker: str
) -> None:
    """One-sided partition: the writer's Redis link is black-holed (its breaker still closed:
    the invalidation times out; or already open: it is not even tried), the other instance
    reaches Redis directly and keeps serving from it. It serves the write within the bound:
    its repairer applied the writer's outbox row."""
    with FaultProxy("127.0.0.1", own_redis.port) as proxy:
        async with (
            serve(proxy.url(), breaker_cooldown_seconds=LONG_COOLDOWN) as cut_off,
            serve(own_redis.url, **RELAXED) as direct,
        ):
            hero = await direct.create_hero(payloads.hero(name="Luna"))
            await direct.warm_hero(hero)
            proxy.set_mode("blackhole")
            if breaker == "open":
                await cut_off.open_breaker(hero["id"])

            patched = await cut_off.patch_hero(hero["id"], {"name": "Luna Moon"})
            acknowledged = time.monotonic()

            assert patched["version"] == hero["version"] + 1
            assert cut_off.app.state.services.cache.guard.owed == 1  # it could not send it
            await assert_served_within_bound(direct, hero["id"], patched["version"], acknowledged)
            assert outbox_of(direct).stats.repaired >= 1
            assert await direct.get_hero(hero["id"]) == patched


# -- the writer was killed right after COMMIT ----------------------------------------------------


async def test_a_writer_killed_between_commit_and_invalidation_is_repaired_by_another_instance(
    own_redis: RedisServer, serve: Serve, postgresql_database_url: str, tmp_path: Path
) -> None:
    async with serve(own_redis.url, **RELAXED) as survivor:
        hero = await survivor.create_hero(payloads.hero(name="Luna"))
        await survivor.warm_hero(hero)
        new_version = hero["version"] + 1
        writer = ServiceProcess(
            postgresql_database_url,
            own_redis.url,
            tmp_path / "writer.log",
            module="tests.support.paused_writer",
        )
        try:
            await asyncio.to_thread(writer.wait_healthy)
            async with httpx.AsyncClient(base_url=writer.url, timeout=POLL_WITHIN) as http:
                patch = asyncio.create_task(
                    http.patch(f"{HEROES}/{hero['id']}", json={"name": "Luna Moon"})
                )

                async def committed() -> bool:
                    return await stored_version(survivor, hero["id"]) == new_version

                committed_at = await until(committed)
                writer.process.kill()  # SIGKILL, paused after its COMMIT
                await asyncio.to_thread(writer.process.wait)
                with pytest.raises(httpx.TransportError):
                    await patch  # never acknowledged
        finally:
            writer.stop()

        await assert_served_within_bound(survivor, hero["id"], new_version, committed_at)
        assert outbox_of(survivor).stats.repaired >= 1


# -- the writer shut down with its invalidation pending ---------------------------------------


async def test_shutdown_with_an_invalidation_pending_leaves_it_to_the_next_process(
    own_redis: RedisServer, serve: Serve, postgresql_database_url: str
) -> None:
    """The writer cannot reach Redis and shuts down: its graceful shutdown neither hangs nor
    drops the pending invalidation (its row stays in the outbox, Redis still holds the old
    entry); the next process applies it before it serves anything."""
    with FaultProxy("127.0.0.1", own_redis.port) as proxy:
        async with serve(proxy.url()) as writer:
            hero = await writer.create_hero(payloads.hero(name="Luna"))
            await writer.warm_hero(hero)
            proxy.set_mode("blackhole")
            patched = await writer.patch_hero(hero["id"], {"name": "Luna Moon"})
            assert writer.app.state.services.cache.guard.owed == 1
            stopping = time.monotonic()
        stopped_in = time.monotonic() - stopping

    assert stopped_in < 5.0, f"shutdown took {stopped_in:.1f} s"
    assert await outbox_rows(postgresql_database_url) == 1
    assert cached_version(own_redis, hero["id"]) == hero["version"]  # still the old entry

    async with serve(own_redis.url, **RELAXED) as next_process:
        assert await next_process.get_hero(hero["id"]) == patched  # its first read
        assert cached_version(own_redis, hero["id"]) != hero["version"]
        assert outbox_of(next_process).stats.repaired == 1
        assert await outbox_rows(postgresql_database_url) == 0


# -- the COMMIT's outcome is unknown -----------------------------------------------------------


@contextmanager
def commit_applied_then_connection_lost(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The next COMMIT of a write (a transaction that inserted an outbox row) is applied by
    PostgreSQL, then the driver raises the error of a connection lost before the answer."""
    dialect = engine.sync_engine.dialect
    original = dialect.do_commit
    writes: list[object] = []
    armed = [True]

    def flushed(session: Session, _context: object) -> None:
        if any(isinstance(obj, OutboxRow) for obj in session.new):
            writes.append(session.connection().connection)

    def do_commit(dbapi_connection: Any) -> None:
        original(dbapi_connection)
        if armed and any(dbapi_connection is write for write in writes):
            armed.clear()
            raise dialect.loaded_dbapi.InterfaceError("connection lost")

    event.listen(Session, "after_flush", flushed)
    monkeypatch.setattr(dialect, "do_commit", do_commit)
    try:
        yield
    finally:
        monkeypatch.undo()
        event.remove(Session, "after_flush", flushed)
    assert not armed, "no write was committed"


async def test_an_ambiguous_commit_invalidates_anyway_and_the_new_etag_works(
    own_redis: RedisServer, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(own_redis.url, **RELAXED) as api:
        hero = await api.create_hero(payloads.hero(name="Luna"))
        await api.warm_hero(hero)
        url = f"{HEROES}/{hero['id']}"
        etag = (await api.http.get(url)).headers["etag"]

        engine = api.app.state.services.engine
        with commit_applied_then_connection_lost(engine, monkeypatch):
            response = await api.http.patch(
                url, json={"name": "Luna Moon"}, headers={"If-Match": etag}
            )

        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "database unavailable"}
        assert await stored_version(api, hero["id"]) == hero["version"] + 1  # it did apply
        # served at once (not after the bound): the write's invalidation was sent anyway
        current = await api.http.get(url)
        assert current.json()["name"] == "Luna Moon"
        assert current.json()["version"] == hero["version"] + 1
        assert cached_version(own_redis, hero["id"]) in (None, hero["version"] + 1)
        retried = await api.http.patch(
            url, json={"name": "Luna Moonlight"}, headers={"If-Match": current.headers["etag"]}
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["version"] == hero["version"] + 2


# -- a timeout is no evidence ------------------------------------------------------------------

#: Redis timeouts of the timeout test, and the proxy's delay: each reply comes later than
#: the socket timeout (the command reaches Redis and runs, its answer is waited for in vain).
TIMEOUTS: dict[str, object] = {
    "redis_socket_timeout": 0.3,
    "redis_connect_timeout": 0.3,
    "redis_pool_timeout": 0.3,
    "cache_near_enabled": False,  # one Redis call per request: the invalidation alone fails
}
LATE_BY = 0.5


async def test_an_invalidation_that_timed_out_but_ran_moves_no_epoch(
    own_redis: RedisServer, serve: Serve
) -> None:
    with FaultProxy("127.0.0.1", own_redis.port) as proxy:
        async with serve(proxy.url(), **TIMEOUTS) as api:
            written, other = [
                await api.create_hero(payloads.hero(name=name)) for name in ("Luna", "Sol")
            ]
            await api.warm_hero(written)
            await api.warm_hero(other)
            redis = own_redis.client(socket_timeout=1.0)
            epoch = redis.get("tales:epoch:hero")
            stats = api.app.state.services.cache.stats["hero"]

            proxy.set_mode("latency", latency=LATE_BY)
            errors = stats.errors
            patched = await api.patch_hero(written["id"], {"name": "Luna Moon"})
            assert stats.errors == errors + 1  # the invalidation timed out

            async def ran() -> bool:  # its late command reached Redis all the same
                return cached_version(own_redis, written["id"]) is None

            await until(ran)
            proxy.set_mode("pass")

            hits, misses = stats.hits, stats.misses
            assert await api.get_hero(other["id"]) == other
            assert (stats.hits, stats.misses) == (hits + 1, misses)  # still cached: a hit
            assert redis.get("tales:epoch:hero") == epoch  # no epoch moved
            assert await api.get_hero(written["id"]) == patched
            assert api.app.state.services.cache.guard.owed == 0  # sent again, before reading


# -- one database, two caches ------------------------------------------------------------------


async def test_a_process_applies_only_the_outbox_rows_of_its_own_cache(
    own_redis: RedisServer, serve: Serve
) -> None:
    """Two deployments with different CACHE_KEY_PREFIXes on one database: each repairer takes
    only its own cache's rows. A row of the other cache stays (its keys are not this Redis's
    to write, and its own processes must still apply it), and it does not stop the repair of
    this cache's rows behind it."""
    async with serve(own_redis.url, **RELAXED) as ours:
        hero = await ours.create_hero(payloads.hero())
        theirs_key = entry_key("hero", hero["id"], prefix="other:")
        ours_key = entry_key("hero", hero["id"])
        long_ago = datetime.now(UTC) - timedelta(minutes=1)
        rows = {
            # the other cache's row first: oldest, so a repairer that takes it meets it first
            "theirs": OutboxRow(
                id=uuid.uuid4(),
                key_prefix="other:",
                entity="hero",
                payload=encode(InvalidationPlan(markers=[Marker(theirs_key, 7, 60)])),
                created_at=long_ago,
            ),
            "ours": OutboxRow(
                id=uuid.uuid4(),
                key_prefix="tales:",
                entity="hero",
                payload=encode(InvalidationPlan(markers=[Marker(ours_key, 7, 60)])),
                created_at=long_ago + timedelta(seconds=1),
            ),
        }
        ids = {name: row.id for name, row in rows.items()}
        engine = ours.app.state.services.engine
        async with AsyncSession(engine) as session, session.begin():
            session.add_all(rows.values())

        async def left() -> set[uuid.UUID]:
            async with engine.connect() as connection:
                return set((await connection.scalars(select(OutboxRow.id))).all())

        async def ours_applied() -> bool:
            return ids["ours"] not in await left()

        await until(ours_applied)
        # a few more repair passes: the other cache's row is still not taken
        await asyncio.sleep(3 * outbox_of(ours).interval)
        assert await left() == {ids["theirs"]}
    client = own_redis.client(socket_timeout=1.0)
    assert client.exists(ours_key) == 1
    assert client.exists(theirs_key) == 0
