"""The outermost ASGI layer: the access check, then the lean hit path: GETs of entities and
lists answered from the near cache, in front of FastAPI, with the exact bytes the full path
sent.

With auth enabled, every HTTP request is checked first (`AccessControl.check`), before any
cache lookup: a refused request gets its 401/403 here and nothing else runs. The check is a
plain call in this layer, not a layer of its own: an authenticated near hit pays for the
check, not for one more ASGI frame.

On a near hit nothing else runs: no routing, no dependency, no per-request object beyond
the ASGI messages; the status, headers and body are those the full path sent for the same
request target (path and query string), and `If-None-Match` gets the 304 the full path
would send. Metrics and cache statistics are counted as on the full path, and the
answer's latency as a hit's (`app/cache/latency.py`): one bucket increment and one float add.

Any other request, and a miss, goes through FastAPI; if the response copies what Redis
holds (the loader says so through `NearFill`), it is kept for the next request, unless an
invalidation was applied meanwhile or the process is not in step with Redis (`bus.py`).
Whether the cache is near or not, the front times every GET under the API prefix that goes
through FastAPI, and records it as a hit or a miss by what the loader's lookups found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.access import AccessControl
from app.api.metrics import http_request_seconds, http_requests_total
from app.cache.latency import LOOKUPS, Lookups
from app.cache.near.bus import InvalidationBus
from app.cache.near.fill import NEAR_FILL, NearFill
from app.cache.near.store import NearEntry
from app.cache.stats import CacheStats
from app.core.http import ETAG_LIST, if_none_match_hits

API_PREFIX = "/api/v1/"
OK, NOT_MODIFIED = 200, 304
EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}
MS_PER_SECOND = 1000


@dataclass
class NearSlot:
    """Filled in by the lifespan: the near cache of this app instance (None: none)."""

    bus: InvalidationBus | None = None
    stats: CacheStats | None = None


class NearFront:
    def __init__(self, app: ASGIApp, slot: NearSlot, access: AccessControl | None = None) -> None:
        self.app = app
        self.slot = slot
        self.access = access  # None: AUTH_ENABLED is false
        self._metrics: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = self.access
        if access is not None:
            refusal = access.check(scope)  # before any cached answer
            if refusal is not None:
                await refusal.send(send)
                return
        stats = self.slot.stats
        if stats is None or scope["method"] != "GET" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        bus = self.slot.bus
        target = b""
        if bus is not None:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            target = raw_path + b"?" + scope["query_string"]
            if time.monotonic() < bus.valid_until:
                entry = bus.store.get(target)
                if entry is not None and await self._serve(entry, scope, send, started):
                    return
        lookups = Lookups()  # not on a near hit: it records its latency itself
        token = LOOKUPS.set(lookups)
        try:
            if bus is None:
                await self.app(scope, receive, send)
            else:
                await self._through(bus, target, scope, receive, send)
        finally:
            LOOKUPS.reset(token)
        stats.latency.record(lookups, time.perf_counter() - started)

    async def _serve(self, entry: NearEntry, scope: Scope, send: Send, started: float) -> bool:
        """Answer from `entry`; False (nothing sent) if the request is one the full path
        refuses: a malformed If-None-Match is a 422 there."""
        status = OK
        if entry.not_modified is not None:
            for name, value in scope["headers"]:
                if name == b"if-none-match":
                    header = value.decode("latin-1")
                    if not ETAG_LIST.fullmatch(header):
                        return False
                    if if_none_match_hits(header, entry.etag or ""):
                        status = NOT_MODIFIED
                    break
        if status == OK:
            await send(entry.start)
            await send({"type": "http.response.body", "body": entry.body})
        else:
            assert entry.not_modified is not None
            await send(entry.not_modified)
            await send(EMPTY_BODY)
        elapsed = time.perf_counter() - started
        stats = self.slot.stats
        if stats is not None:
            entity = stats[entry.entity]
            entity.hits += 1
            entity.near_hits += 1
            stats.latency.hits[entry.entity].record(elapsed)
        counter, histogram = self._children(entry.route, status)
        counter.inc()
        histogram.observe(elapsed)
        return True

    def _children(self, route: str, status: int) -> tuple[Any, Any]:
        children = self._metrics.get((route, status))
        if children is None:
            labels = (route, "GET", str(status))
            children = (http_requests_total.labels(*labels), http_request_seconds.labels(*labels))
            self._metrics[(route, status)] = children
        return children

    async def _through(
        self, bus: InvalidationBus, target: bytes, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The full path; its answer is kept if it copies what Redis holds."""
        fill = NearFill()
        sequence = bus.sequence
        token = NEAR_FILL.set(fill)
        start: Message | None = None
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            NEAR_FILL.reset(token)
        if (
            fill.entity is None
            or start is None
            or start["status"] != OK
            or bus.sequence != sequence
            or time.monotonic() >= bus.valid_until
        ):
            return
        route = scope.get("route")
        bus.store.put(target, near_entry(fill, start, b"".join(body), getattr(route, "path", "")))


def near_entry(fill: NearFill, start: Message, body: bytes, route: str) -> NearEntry:
    assert fill.entity is not None
    raw_etag = next((value for name, value in start["headers"] if name == b"etag"), None)
    etag = None if raw_etag is None else raw_etag.decode("latin-1")
    not_modified: Message | None = None
    if etag is not None:
        headers = Response(status_code=NOT_MODIFIED, headers={"ETag": etag}).raw_headers
        not_modified = {"type": "http.response.start", "status": NOT_MODIFIED, "headers": headers}
    seconds_left = fill.expires_ms / MS_PER_SECOND - time.time()
    return NearEntry(
        entity=fill.entity,
        route=route,
        etag=etag,
        start=start,
        body=body,
        not_modified=not_modified,
        deps=fill.deps,
        expires=time.monotonic() + seconds_left,
    )
