"""Liveness, readiness, the OpenAPI schema and the offline documentation pages."""

import re

import httpx
import pytest

from tests.api.payloads import API

# src="...", href="...", url: '...', spec-url="..."
ASSET_REFERENCE = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")


async def test_liveness_is_ok(client: httpx.AsyncClient):
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_reports_the_database_up_with_its_latency(client: httpx.AsyncClient):
    response = await client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] in ("ok",)
    assert body["database"]["status"] == "up"
    latency = body["database"]["latency_ms"]
    assert isinstance(latency, int | float)
    assert not isinstance(latency, bool)
    assert 0 <= latency < 60_000


async def test_openapi_schema_describes_every_entity_route(client: httpx.AsyncClient):
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for collection in ("heroes", "children", "stories"):
        assert set(paths[f"{API}/{collection}"]) >= {"get", "post"}
        assert set(paths[f"{API}/{collection}/{{entity_id}}"]) >= {"get", "put", "patch", "delete"}
    assert "put" in paths[f"{API}/stories/{{entity_id}}/rating"]
    assert {"/health", "/health/ready"} <= set(paths)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_uses_no_external_host(client: httpx.AsyncClient, page: str):
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower()
    assert "http://" not in html
    assert "https://" not in html
    references = ASSET_REFERENCE.findall(html)
    assert references, "the page references no script, stylesheet or schema"
    for reference in references:
        assert reference.startswith("/"), reference
        assert not reference.startswith("//"), reference


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_assets_are_served_by_the_app(client: httpx.AsyncClient, page: str):
    html = (await client.get(page)).text
    references = ASSET_REFERENCE.findall(html)
    scripts = [reference for reference in references if reference.endswith(".js")]
    assert scripts, "the page loads no script"
    if page == "/docs":
        assert any(reference.endswith(".css") for reference in references)

    for reference in references:
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    for script in scripts:
        asset = await client.get(script)
        assert "javascript" in asset.headers["Content-Type"], script
