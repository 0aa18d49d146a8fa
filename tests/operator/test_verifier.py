"""The consistency verifier: a row changed straight in SQL is served fresh within one
interval; a write in flight is never counted as stale; its database load is bounded."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, text

from app.cache.cached_repository import CachedRepository
from app.cache.verifier import Verifier, nines
from app.core.settings import SettingsError
from app.main import load_settings
from tests.api import payloads
from tests.cache.conftest import Api
from tests.operator.conftest import OperatorApi

INTERVAL = 0.5
#: How long past one interval (and its re-check) a repair may take on a busy machine.
MARGIN_S = 2.0
SIGNAL_TIMEOUT = 10


def verifier(api: Api) -> Verifier:
    found = api.app.state.operations.verifier
    assert isinstance(found, Verifier)
    return found


async def cached_hero(api: Api, **overrides: Any) -> dict[str, Any]:
    hero = await api.create("hero", payloads.hero(**overrides))
    await api.entry("hero", hero["id"])  # cached (asserts the re-read hit)
    return hero


async def sql(api: Api, statement: str, **params: Any) -> None:
    async with api.app.state.services.engine.begin() as connection:
        await connection.execute(text(statement), params)


async def served_within(
    api: Api, hero_id: str, check: Callable[[Any], bool], limit: float
) -> float:
    """Seconds until GET of the hero satisfies `check` (fails past `limit`)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        response = await api.get("hero", hero_id)
        if check(response):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    pytest.fail(f"still stale after {limit} s: {response.status_code} {response.text}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CACHE_VERIFY_INTERVAL_S", 0),
        ("CACHE_VERIFY_INTERVAL_S", "soon"),
        ("CACHE_VERIFY_SAMPLE", -1),
        ("CACHE_VERIFY_SAMPLE", 10_001),
        ("CACHE_PREFETCH_CONCURRENCY", 0),
        ("CACHE_WARM_LIMIT", 0),
        ("CACHE_WARM_ON_START", "maybe"),
        ("CACHE_PREFETCH", "maybe"),
    ],
)
def test_operator_settings_are_validated_naming_the_variable(name: str, value: object) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(_env_file=None, **{name.lower(): value})


def test_nines() -> None:
    assert nines(0, 0) is None
    assert nines(1000, 1) == 3.0
    assert nines(1000, 0) == 3.0  # what 1000 checks can support
    assert nines(100, 10) == 1.0


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE heroes SET name = 'Fixed', version = version + 1 WHERE id = :id",
        "UPDATE heroes SET name = 'Fixed' WHERE id = :id",  # version not bumped: JSON differs
    ],
)
async def test_a_row_changed_in_sql_is_served_fresh_within_one_interval(
    operator_api: OperatorApi, change: str
) -> None:
    async with operator_api(cache_verify_interval_s=INTERVAL) as api:
        hero = await cached_hero(api, name="Broken")
        await sql(api, change, id=hero["id"])

        took = await served_within(
            api, hero["id"], lambda r: r.json()["name"] == "Fixed", INTERVAL * 1.5 + MARGIN_S
        )

        stats = (await api.stats())["verifier"]
        assert stats["entities"]["hero"]["stale"] == 1, stats
        assert stats["entities"]["hero"]["repaired"] == 1, stats
        assert stats["stale"] == 1 and stats["checked"] >= 1, stats
        metrics = (await api.http.get("/metrics")).text
        assert 'tales_cache_verify_stale_total{entity="hero"} 1.0' in metrics
        assert 'tales_cache_verify_checked_total{entity="hero"}' in metrics
        assert took < INTERVAL * 1.5 + MARGIN_S


async def test_a_row_deleted_in_sql_stops_being_served(operator_api: OperatorApi) -> None:
    async with operator_api(cache_verify_interval_s=INTERVAL) as api:
        hero = await cached_hero(api)
        await sql(api, "DELETE FROM heroes WHERE id = :id", id=hero["id"])
        await served_within(api, hero["id"], lambda r: r.status_code == 404, INTERVAL + MARGIN_S)


async def test_a_write_in_flight_is_not_counted_stale(
    operator_api: OperatorApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write has committed (the row is newer than the cached entry) but not yet
    invalidated when the verifier looks: a suspect, not a stale entry."""
    committed, release = asyncio.Event(), asyncio.Event()
    original = CachedRepository._invalidate

    async def held(self: CachedRepository, *args: Any, **kwargs: Any) -> None:
        committed.set()
        await release.wait()
        await original(self, *args, **kwargs)

    # a verifier that only runs when called (one round per call)
    async with operator_api(cache_verify_interval_s=3600) as api:
        hero = await cached_hero(api)
        monkeypatch.setattr(CachedRepository, "_invalidate", held)
        writing = asyncio.create_task(api.patch("hero", hero["id"], {"name": "Next"}))
        await asyncio.wait_for(committed.wait(), SIGNAL_TIMEOUT)
        check = verifier(api)
        check.recheck_delay = 0.5

        round_ = asyncio.create_task(check.verify_once())
        await asyncio.sleep(0.2)  # the first look has seen the old entry and the new row
        release.set()
        counts = await round_
        await writing

        assert counts["hero"].suspects == 1
        assert counts["hero"].stale == 0
        assert check.counts["hero"].stale == 0


async def test_concurrent_writes_give_no_false_stale(operator_api: OperatorApi) -> None:
    async with operator_api(cache_verify_interval_s=0.1) as api:
        heroes = [await cached_hero(api) for _ in range(10)]
        stop = time.monotonic() + 3.0

        async def writer(hero: dict[str, Any]) -> None:
            age = 3
            while time.monotonic() < stop:
                age = 3 + (age + 1) % 10
                await api.patch("hero", hero["id"], {"age": age})
                await api.get("hero", hero["id"])  # cached again

        await asyncio.gather(*(writer(hero) for hero in heroes))
        stats = (await api.stats())["verifier"]

        assert stats["rounds"] >= 3
        assert stats["checked"] >= 10
        assert stats["stale"] == 0, stats


async def test_each_round_reads_at_most_the_sample_with_one_query_per_entity(
    operator_api: OperatorApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sample 9 shared by three entities: 3 heroes a round, one SELECT; the SCAN cursor
    carries on, so four rounds compare each of the 12 cached heroes once."""
    async with operator_api(cache_verify_interval_s=3600, cache_verify_sample=9) as api:
        heroes = {(await cached_hero(api))["id"] for _ in range(12)}
        check = verifier(api)
        compared: list[str] = []
        original = Verifier._rows

        async def rows(self: Verifier, entity: str, ids: Any) -> Any:
            ids = list(ids)
            compared.extend(str(i) for i in ids)
            return await original(self, entity, ids)

        monkeypatch.setattr(Verifier, "_rows", rows)
        statements: list[str] = []
        engine = api.app.state.services.engine.sync_engine

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            for _ in range(4):
                counts = await check.verify_once()
                assert (counts["hero"].checked, counts["hero"].stale) == (3, 0)
        finally:
            event.remove(engine, "before_cursor_execute", count)

        assert len([s for s in statements if "FROM heroes" in s]) == 4
        assert sorted(compared) == sorted(heroes)  # each once
