"""A write commits, then invalidates, and only then is its response sent: a client that got
the answer of a write can never read older data afterwards, from any instance."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache.outbox import OUTBOX_SESSION
from app.cache.service import CacheService
from tests.conftest import BASE_URL

HEROES = "/api/v1/heroes"
HERO = {"name": "Luna", "age": 7, "gender": "female", "language": "en"}


class ResponseRecorder:
    """ASGI wrapper noting when the response starts."""

    def __init__(self, app: ASGIApp, events: list[str]) -> None:
        self.app = app
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.events.append("response")
            await send(message)

        await self.app(scope, receive, recording_send)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What happens, in order: commits, invalidations sent, responses started."""
    happened: list[str] = []
    original = CacheService.invalidate

    async def invalidate(self: CacheService, *args: Any, **kwargs: Any) -> bool:
        sent = await original(self, *args, **kwargs)
        happened.append("invalidated")
        return sent

    def committed(session: Session) -> None:
        if not session.info.get(OUTBOX_SESSION):  # not the outbox's deletes of applied rows
            happened.append("committed")

    monkeypatch.setattr(CacheService, "invalidate", invalidate)
    event.listen(Session, "after_commit", committed)
    yield happened
    event.remove(Session, "after_commit", committed)


async def test_every_write_commits_then_invalidates_then_answers(
    cached_instance, events: list[str]
) -> None:
    async with cached_instance() as (app, _client):
        transport = httpx.ASGITransport(app=ResponseRecorder(app, events))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            created = await client.post(HEROES, json=HERO)
            url = f"{HEROES}/{created.json()['id']}"
            patched = await client.patch(url, json={"age": 8})
            deleted = await client.delete(url)
    assert (created.status_code, patched.status_code, deleted.status_code) == (201, 200, 204)
    assert events == ["committed", "invalidated", "response"] * 3
