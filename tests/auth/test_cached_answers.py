"""A cached answer is never the way around the check: an entity (and a list page) cached near
and in Redis with a good token is refused to a caller without one. And a token remembered
by the verifier stops working when it expires."""

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI

from app.api.access import READ, WRITE
from tests.api import payloads
from tests.auth.conftest import SCOPE_TOKENS, AuthInstance, bearer, token
from tests.near.conftest import near_copy

HEROES = "/api/v1/heroes"
READER = bearer(SCOPE_TOKENS[READ])


async def create_hero(client: httpx.AsyncClient) -> str:
    response = await client.post(HEROES, json=payloads.hero(), headers=bearer(SCOPE_TOKENS[WRITE]))
    assert response.status_code == 201, response.text
    return f"{HEROES}/{response.json()['id']}"


def near_hits(app: FastAPI) -> int:
    return int(app.state.services.cache.stats["hero"].near_hits)


@pytest.mark.parametrize("kind", ["entity", "list"])
async def test_an_answer_cached_near_is_refused_without_a_token(
    auth_instance: AuthInstance, kind: str
) -> None:
    async with auth_instance() as (app, client):
        url = await create_hero(client)
        if kind == "list":
            url = f"{HEROES}?language=en&limit=5"
        client.headers.update(READER)
        cached = await near_copy(app, client, url)  # a near hit with the good token, confirmed
        assert cached.status_code == 200
        del client.headers["Authorization"]

        before = near_hits(app)
        refused = await client.get(url)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="tales-api"'
        assert "Luna" not in refused.text and cached.content not in refused.content
        writer = await client.get(url, headers=bearer(SCOPE_TOKENS[WRITE]))
        assert writer.status_code == 403 and "Luna" not in writer.text
        assert near_hits(app) == before  # nothing was served from the near cache

        again = await client.get(url, headers=READER)  # the copy is still there, for readers
        assert again.content == cached.content and near_hits(app) == before + 1


async def test_an_answer_cached_in_redis_is_refused_without_a_token(
    auth_instance: AuthInstance,
) -> None:
    async with auth_instance(cache_near_enabled=False) as (app, client):
        url = await create_hero(client)
        stats = app.state.services.cache.stats["hero"]
        assert (await client.get(url, headers=READER)).status_code == 200  # fills Redis
        hits = stats.hits
        assert (await client.get(url, headers=READER)).status_code == 200
        assert stats.hits == hits + 1  # a Redis hit
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers={"Authorization": "Bearer x.y.z"})).status_code == 401
        assert stats.hits == hits + 1  # the cache was not even asked


async def test_a_remembered_token_is_refused_once_it_expired(auth_instance: AuthInstance) -> None:
    async with auth_instance() as (app, client):
        url = await create_hero(client)
        expires = int(time.time()) + 2  # AUTH_LEEWAY_S is 0 here
        short = bearer(token(READ, exp=expires))
        verifier = app.middleware_stack.access.verifier  # NearFront runs the check
        assert (await client.get(url, headers=short)).status_code == 200
        checked = verifier.verified
        assert (await client.get(url, headers=short)).status_code == 200
        assert verifier.verified == checked  # remembered: no second signature check
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.1)
        expired = await client.get(url, headers=short)
        assert expired.status_code == 401
        assert "expired" in expired.json()["detail"]
