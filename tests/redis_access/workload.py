"""What every Redis access mode must carry (TLS, an ACL user, Sentinel): app instances on
the run's PostgreSQL database, and one workload that uses every kind of Redis operation the
service makes: hits, fills, invalidations, the near-cache bus and the admin flush."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.api import payloads
from tests.conftest import make_settings, serve_app
from tests.resilience.conftest import Instance, eventually
from tests.support.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "redis-access-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: The user of README's "Redis permissions"
ACL_USER = "tales-api"
WITHIN = 10.0
#: The ACL user's own connection in the tests (seconds): only refusals are awaited on it.
USER_SOCKET_TIMEOUT = 1.0


@asynccontextmanager
async def serve_instance(
    database_url: str, redis_url: str, **overrides: object
) -> AsyncIterator[Instance]:
    settings = make_settings(database_url, redis_url, admin_token=ADMIN_TOKEN, **overrides)
    async with serve_app(settings, empty=False) as (app, http):
        yield Instance(app, http)


def acl_rule(password: str) -> list[str]:
    """The ACL SETUSER line README documents, as arguments, with `password`."""
    readme = (ROOT / "README.md").read_text()
    lines = re.findall(r"^ACL SETUSER \S+ on .*$", readme, flags=re.MULTILINE)
    assert len(lines) == 1, "README must document one ACL SETUSER line"
    words = lines[0].split()
    assert words[2] == ACL_USER, words
    return [f">{password}" if word == ">PASSWORD" else word for word in words[3:]]


def cluster_acl_rule(password: str) -> list[str]:
    """The rule with README's additions for `REDIS_MODE=cluster`."""
    readme = (ROOT / "README.md").read_text()
    lines = re.findall(r"^ACL SETUSER tales-api (\+.*)$", readme, flags=re.MULTILINE)
    assert len(lines) == 1, "README must document one line of cluster additions"
    return [*acl_rule(password), *lines[0].split()]


def allowed_commands(rule: list[str]) -> set[str]:
    return {word[1:] for word in rule if word.startswith("+")}


@contextmanager
def acl_user_client(host: str, port: int, password: str, tls: TlsFiles) -> Iterator[redis.Redis]:
    """A TLS connection to one node as the ACL user (verifying the server with the test CA),
    closed on the way out."""
    user = redis.Redis(
        host=host,
        port=port,
        username=ACL_USER,
        password=password,
        socket_timeout=USER_SOCKET_TIMEOUT,
        ssl=True,
        ssl_ca_certs=str(tls.ca),
    )
    try:
        yield user
    finally:
        user.close()


def assert_refused_outside_the_prefix(user: redis.Redis, *admin_commands: tuple[str, ...]) -> None:
    """The ACL user is refused every key and channel outside the prefix and the server's
    admin commands: FLUSHALL, CONFIG GET, and the mode's own `admin_commands`."""
    attempts: list[Callable[[], object]] = [
        lambda: user.get("other:key"),
        lambda: user.set("other:key", "x"),
        lambda: user.publish("other:channel", "x"),
        lambda: user.execute_command("FLUSHALL"),
        lambda: user.execute_command("CONFIG", "GET", "requirepass"),
        *(partial(user.execute_command, *command) for command in admin_commands),
        lambda: user.keys("*"),
    ]
    for outside in attempts:
        with pytest.raises(redis.exceptions.NoPermissionError):
            outside()


async def near(instance: Instance) -> dict[str, Any]:
    return dict((await instance.cache_stats())["near"])


async def exercise(one: Instance, two: Instance) -> None:
    """Two instances sharing Redis: fills and hits of entries and pages, a write whose
    invalidation reaches the other instance's near cache, the admin flush; no cache error."""
    for instance in (one, two):
        await instance.until_ready_ok()
    hero = await one.create_hero(payloads.hero(name="Luna"))
    for instance in (one, two):
        await instance.warm_hero(hero)  # miss, fill, then a hit
        await instance.warm_list(name="Luna")

    async def near_serving() -> bool:
        assert await two.get_hero(hero["id"]) == hero  # kept near once the bus serves
        stats = await near(two)
        return bool(stats["serving"]) and stats["entries"] > 0

    try:  # subscribed, heartbeats echoed, copies kept
        await eventually(near_serving, within=WITHIN)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {await two.cache_stats()}") from None
    applied = (await near(two))["invalidations_applied"]
    patched = await one.patch_hero(hero["id"], {"name": "Luna Moon"})
    assert await two.get_hero(hero["id"]) == patched
    assert [h["id"] for h in (await two.list_heroes(name="Luna Moon"))["items"]] == [hero["id"]]
    assert (await two.list_heroes(name="Luna"))["items"] == []
    assert (await near(two))["invalidations_applied"] > applied  # over the bus

    response = await one.http.delete("/cache", headers=ADMIN)
    assert response.status_code == 200, response.text
    flushed = response.json()
    assert flushed["cache_reachable"] is True and flushed["deleted_keys"] >= 1, flushed
    await two.warm_hero(patched)

    for instance in (one, two):
        stats = await instance.cache_stats()
        assert stats["total"]["errors"] == 0, stats
        assert stats["breaker"] == "closed", stats
