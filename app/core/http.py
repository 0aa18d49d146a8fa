"""HTTP plumbing shared by every router: ETag preconditions and the request body limit."""

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: An entity tag (RFC 9110: optional weakness, then printable ASCII but '"' between quotes).
ETAG_PATTERN = r'(?:W/)?"[\x21\x23-\x7e]*"'
#: What If-Match and If-None-Match must hold: `*` or a comma-separated list of entity tags.
#: Stated in the OpenAPI document and enforced (422) by the routes and the near front alike.
#: (No whitespace around it: HTTP parsers strip it before the app sees the value.)
ETAG_LIST_PATTERN = rf"^(?:\*|{ETAG_PATTERN}(?:[ \t]*,[ \t]*{ETAG_PATTERN})*)$"
ETAG_LIST = re.compile(ETAG_LIST_PATTERN)


def _etag_tokens(header: str) -> list[str]:
    return [token.strip() for token in header.split(",") if token.strip()]


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """Weak comparison, as RFC 9110 prescribes for If-None-Match."""
    if not header:
        return False
    return any(tag in ("*", etag) for tag in (t.removeprefix("W/") for t in _etag_tokens(header)))


def expected_version(header: str | None, entity_id: object) -> int | None:
    """The version an If-Match header requires: None = no precondition, -1 = none can match."""
    if header is None:
        return None
    tokens = _etag_tokens(header)
    if "*" in tokens:
        return None
    prefix = f'"{entity_id}.'
    for tag in tokens:
        if tag.startswith(prefix) and tag.endswith('"'):
            version = tag[len(prefix) : -1]
            if version.isdigit():
                return int(version)
    return -1


class BodySizeLimit:
    """Answer 413 with a JSON body to request bodies over the limit, streamed chunks too.

    (FastAPI's own `max_body_size` answers a declared oversize body in plain text.)"""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _too_large(send, self.max_bytes)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(send, self.max_bytes)


class _BodyTooLarge(HTTPException):
    """Raised while the app reads a streamed body (no Content-Length) that grew too large.

    An HTTPException, so that FastAPI's body parsing re-raises it instead of turning it into
    a 400, and the exception handlers render it as a JSON 413.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


async def _too_large(send: Send, max_bytes: int) -> None:
    body = b'{"detail":"request body larger than %d bytes"}' % max_bytes
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
