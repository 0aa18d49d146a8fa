"""Every route of the OpenAPI document x (no token, each kind of bad token, each scope), on a
cached instance (Redis and the near cache on) whose GET answers were cached first with a
good token: a refusal never comes from, or after, a cached answer.

The scope each route needs is written out here (`expected_scope`), independently of
`app/api/access.py`; a route this table does not know fails the test until it is added."""

from typing import Any

import httpx
import pytest

from app.api.access import ADMIN, READ, WRITE
from app.main import create_app, load_settings
from tests.api import payloads
from tests.auth.conftest import (
    ADMIN_TOKEN,
    ALL_SCOPES,
    AUTH_SETTINGS,
    BAD,
    SCOPE_TOKENS,
    AuthInstance,
    bearer,
)

COLLECTIONS = ("heroes", "children", "stories")
OPERATOR_ROUTES = {
    "/metrics",
    "/cache/stats",
    "/cache/samples",
    "/dashboard",
}  # samples: what /dashboard polls
OPEN_OUTSIDE_THE_DOCUMENT = ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect")


def expected_scope(method: str, path: str, protect_operator_routes: bool = False) -> str | None:
    if path in ("/health", "/health/ready"):
        return None
    if path.startswith("/api/v1/"):
        return READ if method == "GET" else WRITE
    if path in OPERATOR_ROUTES:
        return ADMIN if protect_operator_routes else None
    if path.startswith("/cache"):
        return ADMIN
    raise AssertionError(f"{method} {path}: say in expected_scope which scope it needs")


def operations() -> list[tuple[str, str]]:
    app = create_app(load_settings(_env_file=None, **AUTH_SETTINGS))
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


OPERATIONS = operations()


def body_of(method: str, path: str) -> Any:
    """A valid body, so that an allowed write succeeds (2xx)."""
    if path.endswith("/rating"):
        return {"rating": 7}
    if path == "/cache/warm":
        return {"entity": "heroes", "limit": 1}
    if method == "PATCH":
        return {"age": 8} if "/stories/" not in path else {"title": "Another title"}
    if method in ("POST", "PUT") and path.startswith("/api/v1/"):
        collection = path.split("/")[3]
        return {"heroes": payloads.hero, "children": payloads.child, "stories": payloads.story}[
            collection
        ]()
    return None


async def entities(client: httpx.AsyncClient) -> dict[str, str]:
    ids = {}
    for collection in COLLECTIONS:
        body = body_of("POST", f"/api/v1/{collection}")
        response = await client.post(f"/api/v1/{collection}", json=body, headers=bearer(ALL_SCOPES))
        assert response.status_code == 201, response.text
        ids[collection] = response.json()["id"]
    return ids


def concrete(path: str, ids: dict[str, str]) -> str:
    collection = next((c for c in COLLECTIONS if f"/{c}" in path), "heroes")
    return path.replace("{entity_id}", ids[collection]).replace("{entity}", collection)


def assert_refused(response: httpx.Response, status: int, secret: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    if secret:
        assert secret not in response.text
        assert secret not in response.headers["www-authenticate"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_every_route_checks_the_token_before_answering(
    auth_instance: AuthInstance, method: str, path: str
) -> None:
    needed = expected_scope(method, path)
    async with auth_instance() as (_app, client):
        ids = await entities(client)
        url = concrete(path, ids)
        body = body_of(method, path)
        if method == "GET":  # cached (Redis, then near) with a good token first
            for _ in range(3):
                warm = await client.get(url, headers=bearer(SCOPE_TOKENS[READ]))
                assert warm.status_code == 200, warm.text

        async def call(headers: dict[str, str]) -> httpx.Response:
            return await client.request(method, url, json=body, headers=headers)

        if needed is None:  # open: credentials, good or bad, change nothing
            for headers in ({}, {"Authorization": BAD["expired"][0]}, bearer(ALL_SCOPES)):
                assert (await call(headers)).status_code == 200
            return

        missing = await call({})
        assert_refused(missing, 401, "")
        assert missing.headers["www-authenticate"] == 'Bearer realm="tales-api"'  # RFC 6750 3.1

        for kind, (authorization, says) in BAD.items():
            refused = await call({"Authorization": authorization})
            assert_refused(refused, 401, authorization.removeprefix("Bearer ").strip())
            challenge = refused.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="tales-api", error="invalid_token"'), kind
            assert says in refused.json()["detail"], (kind, refused.json())
            assert says in challenge, (kind, challenge)

        for scope, good in SCOPE_TOKENS.items():
            if scope == needed:
                continue
            forbidden = await call(bearer(good))
            assert_refused(forbidden, 403, good)
            assert forbidden.headers["www-authenticate"] == (
                'Bearer realm="tales-api", error="insufficient_scope", '
                f'error_description="{forbidden.json()["detail"]}", scope="{needed}"'
            )
            assert needed in forbidden.json()["detail"]

        allowed = await call(bearer(SCOPE_TOKENS[needed]))
        assert 200 <= allowed.status_code < 300, allowed.text
        if needed == ADMIN:  # ADMIN_TOKEN keeps working beside the scope
            assert (await call(bearer(ADMIN_TOKEN))).status_code == 200
            assert (await call(bearer(SCOPE_TOKENS[WRITE]))).status_code == 403


@pytest.mark.parametrize("path", OPEN_OUTSIDE_THE_DOCUMENT)
async def test_the_docs_stay_open(auth_instance: AuthInstance, path: str) -> None:
    async with auth_instance() as (_app, client):
        assert (await client.get(path)).status_code == 200
        assert (await client.get(path, headers={"Authorization": "Bearer junk"})).status_code == 200


async def test_operator_routes_need_the_admin_scope_when_the_setting_says_so(
    auth_instance: AuthInstance,
) -> None:
    operator = [(m, p) for m, p in OPERATIONS if p in OPERATOR_ROUTES]
    assert {"/metrics", "/cache/stats"} <= {p for _m, p in operator}
    async with auth_instance(auth_protect_operator_routes=True) as (_app, client):
        for method, path in operator:
            assert expected_scope(method, path, True) == ADMIN
            missing = await client.request(method, path)
            assert missing.status_code == 401
            assert (
                await client.request(method, path, headers=bearer(ALL_SCOPES))
            ).status_code == 200
            reader = await client.request(method, path, headers=bearer(SCOPE_TOKENS[READ]))
            assert reader.status_code == 403
            admin = await client.request(method, path, headers=bearer(SCOPE_TOKENS[ADMIN]))
            assert admin.status_code == 200
        assert (await client.get("/health/ready")).status_code == 200


async def test_a_path_no_route_serves_is_closed_too(auth_instance: AuthInstance) -> None:
    async with auth_instance() as (_app, client):
        assert (await client.get("/api/v1/unknown")).status_code == 401
        assert (await client.get("/somewhere-else")).status_code == 401
        found = await client.get("/somewhere-else", headers=bearer(SCOPE_TOKENS[READ]))
        assert found.status_code == 404
