"""How the cache layer tells the near cache's front what the response being built copies.

The front (`app/api/near_front.py`) sets a `NearFill` for each request it cannot answer
itself; the loader fills it in when the value came from Redis (a hit, or a fill Redis
accepted): which entity, which Redis keys it depends on, until when Redis keeps it. A
response built from anything else (the database alone, a refused fill) is not kept.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class NearFill:
    entity: str | None = None
    deps: tuple[bytes, ...] = ()
    expires_ms: int = 0  # wall clock, as in the stored entry


NEAR_FILL: ContextVar[NearFill | None] = ContextVar("near_fill", default=None)


def offer(entity: str, deps: tuple[bytes, ...], expires_ms: int) -> None:
    fill = NEAR_FILL.get()
    if fill is not None:
        fill.entity, fill.deps, fill.expires_ms = entity, deps, expires_ms
