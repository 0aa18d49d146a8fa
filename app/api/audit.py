"""The audit log of writes: one line per committed write on logger `tales.audit`.

Each line names who wrote (the token's subject), the method and route template, the entity,
its id and the version the write produced (`deleted` for a delete). It never carries a
request body, a child's name or a token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.types import Scope

from app.api.access import CALLER
from app.api.tokens import Caller
from app.core.documents import Change

audit_log = logging.getLogger("tales.audit")

ANONYMOUS = "anonymous"  # AUTH_ENABLED=false: nobody was asked who they are
MAX_SUBJECT_CHARS = 128


def subject_of(scope: Scope) -> str:
    caller = scope.get(CALLER)
    if not isinstance(caller, Caller):
        return ANONYMOUS
    # a subject is the caller's id; printable and bounded, so it cannot forge log lines
    subject = "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in caller.subject)
    return subject[:MAX_SUBJECT_CHARS] or "?"


def record_writes(scope: Scope, changes: Iterable[Change]) -> None:
    """Log the writes a request committed (called after its commit)."""
    route = getattr(scope.get("route"), "path", "?")
    subject = subject_of(scope)
    for change in changes:
        audit_log.info(
            "write subject=%s method=%s route=%s entity=%s op=%s id=%s version=%s related=%d",
            subject,
            scope.get("method", "?"),
            route,
            change.entity,
            change.op,
            change.id,
            "deleted" if change.version is None else change.version,
            len(change.related),
        )
