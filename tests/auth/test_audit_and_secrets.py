"""One audit line per write (subject, method, route, entity, id, version), never a child's
name or a token; no token in any log line or answer."""

import logging
import re

import pytest

from app.api.access import ADMIN, READ, WRITE
from tests.api import payloads
from tests.auth.conftest import (
    ADMIN_TOKEN,
    BAD,
    SCOPE_TOKENS,
    AuthInstance,
    bearer,
    token,
)
from tests.conftest import AppFactory

CHILD_NAME = "Zephyrine"  # appears nowhere else
AUDIT_LINE = re.compile(
    r"^write subject=(?P<subject>\S+) method=(?P<method>\S+) route=(?P<route>\S+) "
    r"entity=(?P<entity>\S+) op=(?P<op>\S+) id=(?P<id>\S+) version=(?P<version>\S+) "
    r"related=(?P<related>\d+)$"
)


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    lines = []
    for record in caplog.records:
        if record.name == "tales.audit":
            found = AUDIT_LINE.match(record.getMessage())
            assert found, record.getMessage()
            lines.append(found.groupdict())
    return lines


async def test_every_write_leaves_one_audit_line(
    auth_instance: AuthInstance, caplog: pytest.LogCaptureFixture
) -> None:
    writer_token = token(f"{READ} {WRITE}", sub="parent-app-7")
    writer = bearer(writer_token)
    caplog.set_level(logging.DEBUG)
    async with auth_instance() as (_app, client):
        created = await client.post(
            "/api/v1/children", json=payloads.child(name=CHILD_NAME), headers=writer
        )
        child_id = created.json()["id"]
        child = f"/api/v1/children/{child_id}"
        story = await client.post(
            "/api/v1/stories", json=payloads.story_of_child(child_id), headers=writer
        )
        story_id = story.json()["id"]
        await client.patch(child, json={"age": 6}, headers=writer)
        await client.put(f"/api/v1/stories/{story_id}/rating", json={"rating": 9}, headers=writer)
        await client.get(child, headers=writer)  # a read: no audit line
        refused = await client.patch(child, json={"age": 7}, headers=bearer(SCOPE_TOKENS[READ]))
        assert refused.status_code == 403  # refused: no audit line
        missing = await client.delete(f"/api/v1/children/{payloads.MISSING_ID}", headers=writer)
        assert missing.status_code == 404  # failed: no audit line
        assert (await client.delete(child, headers=writer)).status_code == 204
        flushed = await client.delete("/cache", headers=bearer(ADMIN_TOKEN))
        assert flushed.status_code == 200

    lines = audit_lines(caplog)
    assert [(line["method"], line["route"], line["op"]) for line in lines] == [
        ("POST", "/api/v1/children", "create"),
        ("POST", "/api/v1/stories", "create"),
        ("PATCH", "/api/v1/children/{entity_id}", "update"),
        ("PUT", "/api/v1/stories/{entity_id}/rating", "rate"),
        ("DELETE", "/api/v1/children/{entity_id}", "delete"),
    ]
    assert {line["subject"] for line in lines} == {"parent-app-7"}
    assert [line["entity"] for line in lines] == ["child", "story", "child", "story", "child"]
    assert [line["id"] for line in lines] == [child_id, story_id, child_id, story_id, child_id]
    assert [line["version"] for line in lines] == ["1", "1", "2", "2", "deleted"]
    assert [line["related"] for line in lines] == ["0", "0", "0", "0", "1"]  # the story went too
    every_line = "\n".join(record.getMessage() for record in caplog.records)
    assert CHILD_NAME not in every_line
    assert writer_token not in every_line and ADMIN_TOKEN not in every_line


async def test_without_auth_the_writer_is_anonymous(
    cached_instance: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tales.audit")
    async with cached_instance() as (_app, client):
        created = await client.post("/api/v1/heroes", json=payloads.hero())
        assert created.status_code == 201
    (line,) = audit_lines(caplog)
    assert line["subject"] == "anonymous" and line["id"] == created.json()["id"]


async def test_a_subject_cannot_forge_log_lines(
    auth_instance: AuthInstance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tales.audit")
    forged = "x\nwrite subject=admin method=DELETE"
    async with auth_instance() as (_app, client):
        response = await client.post(
            "/api/v1/heroes", json=payloads.hero(), headers=bearer(token(WRITE, sub=forged))
        )
        assert response.status_code == 201
    (line,) = audit_lines(caplog)
    assert line["subject"] == "x?write?subject=admin?method=DELETE"


async def test_no_token_reaches_a_log_line_or_an_answer(
    auth_instance: AuthInstance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent: list[str] = []
    answers: list[str] = []
    async with auth_instance(auth_protect_operator_routes=True) as (_app, client):
        for authorization, _says in BAD.values():
            sent.append(authorization.removeprefix("Bearer ").strip())
            for path in ("/api/v1/heroes", "/cache", "/metrics"):
                response = await client.get(path, headers={"Authorization": authorization})
                answers.append(response.text + str(response.headers))
        for scope in (READ, WRITE, ADMIN):
            sent.append(SCOPE_TOKENS[scope])
            for path in ("/api/v1/heroes", "/cache/stats", "/metrics"):
                response = await client.get(path, headers=bearer(SCOPE_TOKENS[scope]))
                answers.append(response.text + str(response.headers))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in filter(None, sent):
        assert value not in logged
        assert not any(value in answer for answer in answers)
