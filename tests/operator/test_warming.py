"""Cache warming: `POST /cache/warm` (admin token, validated body), `python -m app warm`,
`CACHE_WARM_ON_START`; warming reads through the versioned fills, so it never stores a row
older than a write that raced it."""

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.api import payloads
from tests.api.helpers import url
from tests.cache.conftest import ADMIN_TOKEN, Api, cache_settings, serve
from tests.conftest import ROOT
from tests.consistency.test_stale_fill_race import Pause
from tests.operator.conftest import OperatorApi
from tests.support.loads import patch_loads
from tests.support.redis_server import RedisServer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SIGNAL_TIMEOUT = 10


async def warm(api: Api, entity: str, limit: int) -> dict[str, Any]:
    response = await api.http.post(
        "/cache/warm", json={"entity": entity, "limit": limit}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    return response.json()


async def heroes(api: Api, count: int) -> list[dict[str, Any]]:
    """`count` heroes, created one after the other (the last is the most recent)."""
    return [await api.create("hero", payloads.hero()) for _ in range(count)]


async def is_hit(api: Api, path: str) -> bool:
    before = await api.counters("hero")
    response = await api.http.get(path)
    assert response.status_code == 200, response.text
    after = await api.counters("hero")
    return after["misses"] == before["misses"] and after["hits"] == before["hits"] + 1


async def test_warm_needs_the_admin_token(operator_api: OperatorApi) -> None:
    body = {"entity": "heroes", "limit": 1}
    async with operator_api() as api:
        assert (await api.http.post("/cache/warm", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await api.http.post("/cache/warm", json=body, headers=wrong)).status_code == 401
    async with operator_api(admin_token=None) as api:
        response = await api.http.post("/cache/warm", json=body, headers=AUTH)
        assert response.status_code == 403
        assert "ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entity": "dragons", "limit": 1}, "entity"),
        ({"limit": 1}, "entity"),
        ({"entity": "heroes", "limit": 0}, "limit"),
        ({"entity": "heroes", "limit": 100_001}, "limit"),
        ({"entity": "heroes", "limit": "many"}, "limit"),
        ({"entity": "heroes"}, "limit"),
        ({"entity": "heroes", "limit": 1, "colour": "red"}, "colour"),
    ],
)
async def test_warm_rejects_a_bad_body_naming_the_field(
    operator_api: OperatorApi, body: dict[str, Any], field: str
) -> None:
    async with operator_api() as api:
        response = await api.http.post("/cache/warm", json=body, headers=AUTH)
        assert response.status_code == 422, response.text
        assert any(error["loc"][-1] == field for error in response.json()["detail"]), response.text


async def test_warm_is_a_409_when_the_cache_is_disabled(operator_api: OperatorApi) -> None:
    async with operator_api(redis_enabled=False) as api:
        response = await api.http.post(
            "/cache/warm", json={"entity": "heroes", "limit": 1}, headers=AUTH
        )
        assert response.status_code == 409
        assert "REDIS_ENABLED" in response.json()["detail"]


async def test_warm_caches_the_most_recent_rows_and_the_first_page(
    operator_api: OperatorApi,
) -> None:
    async with operator_api(cache_near_enabled=False) as api:
        created = await heroes(api, 5)
        await api.flush()

        result = await warm(api, "heroes", 3)

        assert (result["entity"], result["entries"], result["pages"]) == ("hero", 3, 1)
        for hero in created[2:]:  # the three most recent
            assert await is_hit(api, url("hero", hero["id"])), hero["id"]
        for hero in created[:2]:
            assert not await is_hit(api, url("hero", hero["id"])), hero["id"]
        assert await is_hit(api, url("hero"))  # the first page, default limit and offset


async def test_a_warm_racing_a_write_never_stores_the_older_row(
    operator_api: OperatorApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm reads the row, is held before its fill, a PATCH commits and invalidates,
    the warm resumes: its fill of the old version must be refused."""
    pause = Pause()
    pause.armed = False
    patch_loads(monkeypatch, pause.wrap, "get")
    async with operator_api(cache_near_enabled=False) as api:
        (hero,) = await heroes(api, 1)
        await api.flush()
        pause.armed = True
        warming = asyncio.create_task(warm(api, "heroes", 1))
        await asyncio.wait_for(pause.loaded.wait(), SIGNAL_TIMEOUT)

        patched = await api.patch("hero", hero["id"], {"name": "Renamed"})
        pause.resume.set()
        await warming

        assert patched["version"] == hero["version"] + 1
        for _ in range(2):  # the first read loads (the fill was refused), the second hits
            fresh = (await api.get("hero", hero["id"])).json()
            assert (fresh["version"], fresh["name"]) == (patched["version"], "Renamed")


async def test_concurrent_warms_and_writes_leave_no_stale_read(operator_api: OperatorApi) -> None:
    async with operator_api() as api:
        created = await heroes(api, 12)
        await api.flush()
        expected: dict[str, int] = {}

        async def writer() -> None:
            for round_ in range(3):
                for hero in created:
                    body = await api.patch("hero", hero["id"], {"age": 3 + round_})
                    expected[hero["id"]] = body["version"]

        await asyncio.gather(writer(), *(warm(api, "heroes", 12) for _ in range(3)))

        for hero in created:
            for _ in range(2):
                body = (await api.get("hero", hero["id"])).json()
                assert body["version"] == expected[hero["id"]], hero["id"]


async def test_warm_on_start_warms_every_entity_and_is_off_by_default(
    operator_api: OperatorApi, postgresql_database_url: str, clean_redis: RedisServer
) -> None:
    async with operator_api() as api:
        (hero,) = await heroes(api, 1)
        assert api.settings.cache_warm_on_start is False
    path = url("hero", hero["id"])

    clean_redis.client().flushdb()
    async with serve(cache_settings(postgresql_database_url, clean_redis.url), empty=False) as api:
        await asyncio.sleep(0.2)
        assert api.app.state.operations.last_warm == {}
        assert not await is_hit(api, path)

    clean_redis.client().flushdb()
    settings = cache_settings(
        postgresql_database_url, clean_redis.url, cache_warm_on_start=True, cache_warm_limit=5
    )
    async with serve(settings, empty=False) as api:
        operations = api.app.state.operations
        async with asyncio.timeout(SIGNAL_TIMEOUT):
            while set(operations.last_warm) != {"hero", "child", "story"}:
                await asyncio.sleep(0.02)
        assert operations.last_warm["hero"].entries == 1
        assert await is_hit(api, path)


def run_warm_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "warm", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_warm_command_warms_with_a_progress_bar(
    operator_api: OperatorApi, postgresql_database_url: str, clean_redis: RedisServer
) -> None:
    async with operator_api(cache_near_enabled=False) as api:
        created = await heroes(api, 3)
        await api.flush()
        env = {"DATABASE_URL": postgresql_database_url, "REDIS_URL": clean_redis.url}

        done = await asyncio.to_thread(run_warm_cli, env, "--entity", "heroes", "--limit", "2")

        assert done.returncode == 0, done.stderr
        assert "warmed hero: 2 entries, 1 pages" in done.stdout
        assert "warm hero: 100%" in done.stderr  # tqdm's bar
        assert "3/3" in done.stderr  # 2 entries + 1 page
        assert await is_hit(api, url("hero", created[-1]["id"]))
        assert not await is_hit(api, url("hero", created[0]["id"]))


def test_the_warm_command_refuses_invalid_settings_and_a_disabled_cache() -> None:
    invalid = run_warm_cli({"CACHE_WARM_LIMIT": "0"})
    assert invalid.returncode == 2
    assert "CACHE_WARM_LIMIT" in invalid.stderr
    disabled = run_warm_cli({"REDIS_ENABLED": "false"})
    assert disabled.returncode == 2
    assert "REDIS_ENABLED" in disabled.stderr
