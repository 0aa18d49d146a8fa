"""A client generated from the service's own `/openapi.json` by a maintained generator
(openapi-python-client, from PyPI) drives a full round trip of every entity: create, read,
list with filters, ETag/304, If-Match/412, update, replace, delete. On both databases, with
the cache on and off (the `client` fixture).

The client is generated once per run, into a temporary directory, and imported; its typed
functions are named by the document's tags and operation ids (`heroes.list_heroes`)."""

import asyncio
import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.api import payloads
from tests.conftest import BASE_URL, make_settings

PACKAGE = "tales_client"
GENERATOR_CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"
COLLECTION = {"hero": "heroes", "child": "children", "story": "stories"}
MODEL = {"hero": "Hero", "child": "Child", "story": "Story"}
STALE = 999  # a version no entity of the test reaches


async def _served_document() -> bytes:
    settings = make_settings("sqlite+aiosqlite://", "redis://127.0.0.1:9/0", redis_enabled=False)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.content


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The generated package, imported (its `api`, `models`, `client` and `types`)."""
    root = tmp_path_factory.mktemp("generated_client")
    document = root / "openapi.json"
    document.write_bytes(asyncio.run(_served_document()))
    config = root / "config.yaml"
    config.write_text(GENERATOR_CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    run = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # the generator warns about any part of the document it could not turn into code
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(PACKAGE)
        for module in ("client", "models", "types", "errors"):
            importlib.import_module(f"{PACKAGE}.{module}")
    finally:
        sys.path.remove(str(root))
    return package


class Api:
    """The generated functions of one entity, by operation (`api.call("get", ...)`)."""

    def __init__(self, generated: ModuleType, client: Any, entity: str) -> None:
        self.generated = generated
        self.client = client
        self.entity = entity

    def operation(self, operation: str) -> ModuleType:
        plural = COLLECTION[self.entity]
        name = f"list_{plural}" if operation == "list" else f"{operation}_{self.entity}"
        return importlib.import_module(f"{PACKAGE}.api.{plural}.{name}")

    def model(self, suffix: str) -> Any:
        models = importlib.import_module(f"{PACKAGE}.models")
        return getattr(models, f"{MODEL[self.entity]}{suffix}")

    async def call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        function = self.operation(operation).asyncio_detailed
        return await function(*args, client=self.client, **kwargs)


def etag(read: Any, version: int | None = None) -> str:
    return f'"{read.id}.{read.version if version is None else version}"'


async def create_body(api: Api) -> dict[str, Any]:
    """A create body; a story's refers to a child and a hero created through the client."""
    if api.entity != "story":
        return payloads.of(api.entity)
    children = Api(api.generated, api.client, "child")
    heroes = Api(api.generated, api.client, "hero")
    child = await children.call("create", body=children.model("Create").from_dict(payloads.child()))
    hero = await heroes.call("create", body=heroes.model("Create").from_dict(payloads.hero()))
    assert child.status_code == hero.status_code == 201
    return payloads.story_of_child(str(child.parsed.id), hero_id=str(hero.parsed.id))


def list_filters(entity: str, read: Any) -> dict[str, Any]:
    if entity == "hero":
        return {"name": read.name, "language": read.language}
    if entity == "child":
        return {"name": read.name, "age": read.age, "gender": read.gender}
    return {"child_id": read.child_id, "language": read.language}


@pytest.mark.parametrize("entity", ["hero", "child", "story"])
async def test_a_generated_client_round_trips_every_entity(
    generated: ModuleType, client: httpx.AsyncClient, entity: str
):
    generated_client = generated.client.Client(base_url=BASE_URL).set_async_httpx_client(client)
    api = Api(generated, generated_client, entity)
    ErrorMessage = generated.models.ErrorMessage
    body = await create_body(api)

    created = await api.call("create", body=api.model("Create").from_dict(body))
    assert created.status_code == 201, created.content
    read = created.parsed
    assert isinstance(read, api.model("Read"))
    assert read.version == 1
    assert created.headers["ETag"] == etag(read)
    assert created.headers["Location"].endswith(f"/{COLLECTION[entity]}/{read.id}")

    fetched = await api.call("get", read.id)
    assert fetched.status_code == 200
    assert fetched.parsed.to_dict() == read.to_dict()

    page = await api.call("list", **list_filters(entity, read), limit=5)
    assert page.status_code == 200
    assert [item.id for item in page.parsed.items] == [read.id]
    assert (page.parsed.total, page.parsed.limit, page.parsed.offset) == (1, 5, 0)

    not_modified = await api.call("get", read.id, if_none_match=etag(read))
    assert not_modified.status_code == 304
    assert not_modified.headers["ETag"] == etag(read)

    change = {"hero": {"name": "Nova"}, "child": {"age": 6}, "story": {"title": "Lanterns"}}
    patch = api.model("Patch").from_dict(change[entity])
    stale = await api.call("update", read.id, body=patch, if_match=etag(read, STALE))
    assert stale.status_code == 412
    assert isinstance(stale.parsed, ErrorMessage)

    updated = await api.call("update", read.id, body=patch, if_match=etag(read))
    assert updated.status_code == 200, updated.content
    assert updated.parsed.version == 2
    assert updated.parsed.to_dict().items() >= change[entity].items()

    replaced = await api.call(
        "replace", read.id, body=api.model("Create").from_dict(body), if_match=etag(updated.parsed)
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.parsed.version == 3
    current = replaced.parsed
    if entity == "story":
        rating = generated.models.RatingUpdate(rating=9)
        rated = await api.call("rate", read.id, body=rating, if_match=etag(current))
        assert rated.status_code == 200
        assert (rated.parsed.rating, rated.parsed.version) == (9, 4)
        current = rated.parsed
    changed = await api.call("get", read.id, if_none_match=etag(read))
    assert changed.status_code == 200
    assert changed.parsed.to_dict() == current.to_dict()

    refused = await api.call("delete", read.id, if_match=etag(read))
    assert refused.status_code == 412
    deleted = await api.call("delete", read.id, if_match=etag(current))
    assert deleted.status_code == 204
    gone = await api.call("get", read.id)
    assert gone.status_code == 404
    assert isinstance(gone.parsed, ErrorMessage)
