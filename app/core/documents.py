"""What repositories hand to routers: entities already serialized to JSON bytes.

Both the SQLAlchemy repositories and the cached repositories return these, so a cache hit is
served as the stored bytes without rebuilding a pydantic model.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

import orjson


@dataclass(frozen=True, slots=True)
class Doc:
    id: UUID
    version: int
    body: bytes

    @property
    def etag(self) -> str:
        return f'"{self.id}.{self.version}"'


def page_body(items: list[bytes], total: int, limit: int, offset: int) -> bytes:
    return orjson.dumps(
        {
            "items": [orjson.Fragment(item) for item in items],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@dataclass(frozen=True, slots=True)
class RelatedChange:
    """A row of another entity that the write changed too (propagation, cascade, set null)."""

    entity: str
    id: UUID
    version: int | None  # None: the row is gone


@dataclass(frozen=True, slots=True)
class Change:
    """One committed-to-be write, recorded by a repository for cache invalidation."""

    entity: str
    op: str  # create, update, delete, or an action's name (e.g. rate)
    id: UUID
    version: int | None  # None: deleted
    before: Mapping[str, object] | None  # indexed attributes before the write
    after: Mapping[str, object] | None  # indexed attributes after the write
    related: tuple[RelatedChange, ...] = field(default=())
