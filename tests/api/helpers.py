"""Small HTTP helpers shared by the API tests (they assert on what they rely on)."""

import re
from datetime import datetime
from typing import Any

import httpx

from tests.api.payloads import API

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
COLLECTIONS = {"hero": "heroes", "child": "children", "story": "stories"}


def url(entity: str, entity_id: str | None = None) -> str:
    base = f"{API}/{COLLECTIONS[entity]}"
    return base if entity_id is None else f"{base}/{entity_id}"


async def create(client: httpx.AsyncClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url(entity), json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def fetch(client: httpx.AsyncClient, entity: str, entity_id: str) -> dict[str, Any]:
    response = await client.get(url(entity, entity_id))
    assert response.status_code == 200, response.text
    return response.json()


async def list_page(client: httpx.AsyncClient, entity: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url(entity), params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def list_ids(client: httpx.AsyncClient, entity: str, **params: Any) -> list[str]:
    return [item["id"] for item in (await list_page(client, entity, **params))["items"]]


def error_locations(response: httpx.Response) -> list[list[Any]]:
    """The `loc` of every validation error in a 422 body."""
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [error["loc"] for error in detail]


def names_field(response: httpx.Response, field: str) -> bool:
    """A validation error points at `field` through its `loc`."""
    return any(field in loc for loc in error_locations(response))


def parse_timestamp(value: str) -> datetime:
    """A response timestamp: ISO 8601 in UTC, written with a trailing Z."""
    assert TIMESTAMP.fullmatch(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
