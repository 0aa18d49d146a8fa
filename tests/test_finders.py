"""The seed's finders, on the repository routers receive: plain or cached (the `app`
fixture runs both, on SQLite and PostgreSQL), answering like the list they stand for."""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.database import UnitOfWork
from tests.api import payloads


@asynccontextmanager
async def repository(app: FastAPI, entity: str) -> AsyncIterator[Any]:
    uow = UnitOfWork(app.state.session_factory)
    try:
        yield app.state.repositories[entity](uow)
    finally:
        await uow.close()


def ids(page: bytes) -> set[str]:
    return {item["id"] for item in json.loads(page)["items"]}


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/v1/{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_hero_finders_by_language_and_by_name(app: FastAPI, client: httpx.AsyncClient):
    en = await post(client, "heroes", payloads.hero(name="Max", language="en"))
    ru = await post(client, "heroes", payloads.hero(name="Макс", language="ru"))
    async with repository(app, "hero") as heroes:
        for _ in range(2):  # the second round is served from the cache when it is on
            assert ids(await heroes.find_by_language("en")) == {en["id"]}
            assert ids(await heroes.find_by_language("ru")) == {ru["id"]}
            assert ids(await heroes.find_by_name("Max")) == {en["id"]}
            assert ids(await heroes.find_by_name("max")) == set()


async def test_child_finders_by_name_and_exact_match(app: FastAPI, client: httpx.AsyncClient):
    ann5 = await post(client, "children", payloads.child(name="Ann", age=5, gender="female"))
    ann7 = await post(client, "children", payloads.child(name="Ann", age=7, gender="female"))
    async with repository(app, "child") as children:
        for _ in range(2):
            assert ids(await children.find_by_name("Ann")) == {ann5["id"], ann7["id"]}
            assert ids(await children.find_exact("Ann", 7, "female")) == {ann7["id"]}
            assert ids(await children.find_exact("Ann", 7, "male")) == set()


async def test_story_finders_by_child_id_child_name_and_language(
    app: FastAPI, client: httpx.AsyncClient
):
    child = await post(client, "children", payloads.child(name="Ann"))
    mine = await post(client, "stories", payloads.story_of_child(child["id"], language="ru"))
    other = await post(client, "stories", payloads.story(language="en"))
    async with repository(app, "story") as stories:
        for _ in range(2):
            assert ids(await stories.find_by_child_id(uuid.UUID(child["id"]))) == {mine["id"]}
            assert ids(await stories.find_by_child_name("Ann")) == {mine["id"]}
            assert ids(await stories.find_by_language("en")) == {other["id"]}
            assert ids(await stories.find_by_language("ru")) == {mine["id"]}
