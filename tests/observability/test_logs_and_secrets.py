"""What the service writes to its logs and answers: useful lines at the right levels, and
never the Redis password, the admin token or a child's name (personal data)."""

import logging
import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.cache.conftest import entry_key
from tests.stampede.helpers import HERO, HEROES
from tests.support.redis_server import RedisServer

CHILDREN = "/api/v1/children"
STORIES = "/api/v1/stories"
CHILD_NAME = "Zoë Secretname"
#: forms in which the name could leak: as given, percent-encoded, or only the rare part
CHILD_NAME_FORMS = (CHILD_NAME, "Zo%C3%AB", "Secretname")
#: entity endpoints whose answers carry the child's name as data (the child, its stories)
PERSONAL_DATA_PATHS = (CHILDREN, STORIES)
TEST_CLIENT_LOGGERS = {"httpx", "httpcore"}


@pytest.fixture
def password() -> str:
    return f"redis-pw-{secrets.token_hex(8)}"


@pytest.fixture
def protected_redis(password: str) -> Iterator[RedisServer]:
    with RedisServer(password=password) as server:
        yield server


class Recorder:
    """The test's client, keeping every response to inspect afterwards."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.responses: list[httpx.Response] = []

    async def __call__(self, method: str, url: str, **kwargs) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        self.responses.append(response)
        return response


def formatted(record: logging.LogRecord) -> str:
    """Everything a handler could write for the record: message, args, exception, stack."""
    return "\n".join(
        [logging.Formatter().format(record), repr(record.args), repr(record.msg)]
    ).casefold()


def service_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every record but those of the test's own HTTP client (httpx logs the URLs it sends)."""
    return [r for r in caplog.records if r.name.partition(".")[0] not in TEST_CLIENT_LOGGERS]


def lines(caplog: pytest.LogCaptureFixture, level: int, start: str) -> list[str]:
    return [
        r.getMessage()
        for r in service_records(caplog)
        if r.levelno == level and r.getMessage().startswith(start)
    ]


async def test_logs_and_answers_carry_no_secrets_nor_child_names(
    cached_instance,
    protected_redis: RedisServer,
    password: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = f"admin-{secrets.token_hex(12)}"
    caplog.set_level(logging.DEBUG)
    redis_url = f"redis://127.0.0.1:{protected_redis.port}/0"
    async with cached_instance(
        redis_url,
        redis_password=password,
        admin_token=token,
        log_level="DEBUG",
        breaker_failure_threshold=2,
    ) as (_app, client):
        call = Recorder(client)
        # heroes
        hero = (await call("POST", HEROES, json=HERO)).json()
        hero_url = f"{HEROES}/{hero['id']}"
        assert (await call("GET", hero_url)).status_code == 200  # miss, fill
        assert (await call("GET", hero_url)).status_code == 200  # hit
        assert (await call("PATCH", hero_url, json={"age": 8})).status_code == 200
        assert (await call("GET", HEROES, params={"name": "Luna"})).status_code == 200
        # a child, queries by its name, a story about it
        child = await call(
            "POST", CHILDREN, json={"name": CHILD_NAME, "age": 6, "gender": "female"}
        )
        assert child.status_code == 201
        child_url = f"{CHILDREN}/{child.json()['id']}"
        for _ in range(2):
            assert (await call("GET", child_url)).json()["name"] == CHILD_NAME
            found = await call("GET", CHILDREN, params={"name": CHILD_NAME})
            assert found.json()["total"] == 1
        story = await call(
            "POST",
            STORIES,
            json={
                "title": "The Moon Lantern",
                "content": "Once upon a time.",
                "language": "en",
                "child_id": child.json()["id"],
                "hero_id": hero["id"],
            },
        )
        assert story.status_code == 201 and story.json()["child_name"] == CHILD_NAME
        story_url = f"{STORIES}/{story.json()['id']}"
        for _ in range(2):
            by_name = await call("GET", STORIES, params={"child_name": CHILD_NAME})
            assert by_name.json()["total"] == 1
        assert (await call("PUT", f"{story_url}/rating", json={"rating": 9})).status_code == 200
        assert (await call("PATCH", child_url, json={"age": 7})).status_code == 200
        # service endpoints, admin flush with right and wrong tokens, errors
        assert (await call("GET", "/cache/stats")).status_code == 200
        assert (await call("GET", "/health/ready")).json()["cache"]["status"] == "up"
        assert (await call("GET", "/metrics")).status_code == 200
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await call("DELETE", "/cache", headers=bearer)).status_code == 200
        assert (await call("DELETE", "/cache/children", headers=bearer)).status_code == 200
        wrong = {"Authorization": f"Bearer {token[:-1]}x"}
        assert (await call("DELETE", "/cache", headers=wrong)).status_code == 401
        assert (await call("DELETE", "/cache")).status_code == 401
        assert (await call("POST", HEROES, json={**HERO, "age": -1})).status_code == 422
        assert (await call("GET", f"{CHILDREN}/{uuid.uuid4()}")).status_code == 404
        # Redis dies: the service answers from the database and logs the failures
        protected_redis.kill()
        assert (await call("GET", child_url)).status_code == 200
        assert (await call("GET", CHILDREN, params={"name": CHILD_NAME})).status_code == 200
        assert (await call("GET", STORIES, params={"child_name": CHILD_NAME})).status_code == 200
        assert (await call("PATCH", child_url, json={"age": 8})).status_code == 200
        assert (await call("GET", "/health/ready")).json()["status"] == "degraded"
        assert (await call("GET", "/cache/stats")).json()["breaker"] == "open"
        assert (await call("DELETE", story_url)).status_code == 204
        assert (await call("DELETE", child_url)).status_code == 204

    logged = [formatted(record) for record in service_records(caplog)]
    assert len(logged) > 20
    for secret in (password, token):
        assert not [text for text in logged if secret.casefold() in text]
    for form in CHILD_NAME_FORMS:
        assert not [text for text in logged if form.casefold() in text]

    for response in call.responses:
        path = response.request.url.path
        shown = response.text + repr(response.headers.multi_items())
        assert password not in shown and token not in shown, path
        if not path.startswith(PERSONAL_DATA_PATHS) or response.is_error:
            assert not any(form in shown for form in CHILD_NAME_FORMS), path
        else:
            assert not any(form in repr(response.headers) for form in CHILD_NAME_FORMS), path

    entry = entry_key("hero", hero["id"])
    assert lines(caplog, logging.DEBUG, f"cache miss {entry}")
    assert lines(caplog, logging.DEBUG, f"cache fill {entry} ttl=")
    assert lines(caplog, logging.DEBUG, f"cache hit {entry}")
    assert lines(caplog, logging.DEBUG, "cache miss tales:child:")  # the name is hashed
    invalidated = lines(caplog, logging.INFO, "cache invalidated")
    assert any(f"hero update {hero['id']}" in line for line in invalidated)
    assert lines(caplog, logging.WARNING, "cache circuit breaker closed -> open")
    assert lines(caplog, logging.ERROR, "cache operation failed: ")


async def test_redis_url_password_is_not_shown_in_cache_stats(
    cached_instance, password: str
) -> None:
    with RedisServer(password=password) as server:
        assert f":{password}@" in server.url
        async with cached_instance(server.url) as (_app, client):
            stats = await client.get("/cache/stats")
            ready = await client.get("/health/ready")

    assert stats.json()["redis_url"] == f"redis://127.0.0.1:{server.port}/0"
    assert stats.json()["status"] == "up"
    assert ready.json()["cache"]["status"] == "up"  # the password in the URL is used
    for response in (stats, ready):
        assert password not in response.text
