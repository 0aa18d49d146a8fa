"""Adding an entity is declaring it: a throwaway `widget` entity, declared here and nowhere
else (its table created in the test database), gets CRUD, caching, list invalidation, its
TTL setting, statistics and flush, without a line changed in app/cache or app/core."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any
from uuid import UUID

import httpx
import pytest
from pydantic import Field
from sqlalchemy import String
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from app.cache.format import EntityKeys
from app.cache.keys import KeyEncoder
from app.core.database import Base
from app.core.models import EntityModel
from app.core.registry import EntitySpec, Filter, Registry
from app.core.schemas import EntityRead, InputModel
from app.entities import ENTITIES
from app.main import load_settings
from tests.cache.conftest import ADMIN_TOKEN
from tests.conftest import serve_app
from tests.support.redis_server import RedisServer

WIDGETS = "/api/v1/widgets"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def widgets() -> Iterator[EntitySpec]:
    """The declaration: model, schemas, one EntitySpec. The table leaves the shared metadata
    afterwards, so the migration tests never see it."""

    class Widget(EntityModel):
        __tablename__ = "test_widgets"
        name: Mapped[str] = mapped_column(String(50), nullable=False)
        colour: Mapped[str] = mapped_column(String(20), nullable=False)

    class WidgetCreate(InputModel):
        name: Annotated[str, Field(min_length=1, max_length=50)]
        colour: Annotated[str, Field(min_length=1, max_length=20)]

    class WidgetRead(EntityRead):
        name: str
        colour: str

    spec = EntitySpec(
        name="widget",
        plural="widgets",
        model=Widget,
        create=WidgetCreate,
        read=WidgetRead,
        filters=(Filter("colour", str, scope="colour"),),
        ttl=77,
    )
    yield spec
    Base.metadata.remove(Widget.__table__)


@pytest.fixture
async def widget_api(
    widgets: EntitySpec, postgresql_database_url: str, clean_redis: RedisServer
) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_async_engine(postgresql_database_url)
    table = widgets.model.__table__
    async with engine.begin() as connection:
        await connection.run_sync(table.create, checkfirst=True)
    registry = Registry((*ENTITIES, widgets))
    settings = load_settings(
        registry,
        database_url=postgresql_database_url,
        redis_url=clean_redis.url,
        admin_token=ADMIN_TOKEN,
        _env_file=None,
    )
    try:
        async with serve_app(settings, registry=registry) as (_app, client):
            yield client
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(table.drop)
        await engine.dispose()


async def widget_stats(client: httpx.AsyncClient) -> dict[str, Any]:
    stats: dict[str, Any] = (await client.get("/cache/stats")).json()["entities"]["widget"]
    return stats


async def test_a_declared_entity_gets_crud(widget_api: httpx.AsyncClient) -> None:
    client = widget_api
    created = await client.post(WIDGETS, json={"name": "cog", "colour": "red"})
    assert created.status_code == 201, created.text
    widget = created.json()
    url = f"{WIDGETS}/{widget['id']}"
    assert created.headers["location"].endswith(url)
    assert (await client.get(url)).json() == widget
    patched = await client.patch(
        url, json={"colour": "blue"}, headers={"If-Match": created.headers["etag"]}
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert (
        await client.patch(url, json={"colour": "x"}, headers={"If-Match": created.headers["etag"]})
    ).status_code == 412
    assert (
        await client.post(WIDGETS, json={"name": "cog", "colour": "red", "size": 3})
    ).status_code == 422
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_a_declared_entity_is_cached_with_its_own_ttl(
    widgets: EntitySpec, widget_api: httpx.AsyncClient, clean_redis: RedisServer
) -> None:
    client = widget_api
    widget = (await client.post(WIDGETS, json={"name": "cog", "colour": "red"})).json()
    url = f"{WIDGETS}/{widget['id']}"
    await client.get(url)
    before = await widget_stats(client)
    assert (await client.get(url)).json() == widget
    after = await widget_stats(client)
    assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"])
    key = EntityKeys(widgets, "tales:", KeyEncoder()).entry(UUID(widget["id"]))
    ttl = clean_redis.client().ttl(key)
    assert 70 <= ttl <= 77


async def test_a_declared_entitys_lists_are_invalidated_by_its_writes(
    widget_api: httpx.AsyncClient,
) -> None:
    client = widget_api
    first = (await client.post(WIDGETS, json={"name": "cog", "colour": "red"})).json()
    red = (await client.get(WIDGETS, params={"colour": "red"})).json()
    assert [item["id"] for item in red["items"]] == [first["id"]]
    await client.get(WIDGETS, params={"colour": "red"})
    assert (await widget_stats(client))["hits"] >= 1

    await client.patch(f"{WIDGETS}/{first['id']}", json={"colour": "blue"})
    assert (await client.get(WIDGETS, params={"colour": "red"})).json()["total"] == 0
    blue = (await client.get(WIDGETS, params={"colour": "blue"})).json()
    assert [item["colour"] for item in blue["items"]] == ["blue"]


async def test_a_declared_entity_appears_in_stats_and_can_be_flushed(
    widget_api: httpx.AsyncClient,
) -> None:
    client = widget_api
    widget = (await client.post(WIDGETS, json={"name": "cog", "colour": "red"})).json()
    url = f"{WIDGETS}/{widget['id']}"
    await client.get(url)
    flushed = await client.delete("/cache/widgets", headers=ADMIN)
    assert flushed.status_code == 200
    assert flushed.json()["flushed"] == ["widget"]
    before = await widget_stats(client)
    await client.get(url)
    assert (await widget_stats(client))["misses"] == before["misses"] + 1
    everything = await client.delete("/cache", headers=ADMIN)
    assert "widget" in everything.json()["flushed"]
