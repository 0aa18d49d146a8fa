"""The decorated peers' miss path: one hero as a dict, loaded from PostgreSQL with asyncpg.

PostgreSQL builds the JSON (`row_to_json`) of the row in the product's `heroes` table; the
peer returns it as a dict, which its cache decorator stores and FastAPI serializes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson
from fastapi import HTTPException

QUERY = "SELECT row_to_json(h)::text FROM heroes AS h WHERE h.id = $1"
POOL_SIZE = 10  # the product's DATABASE_POOL_SIZE


class HeroTable:
    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None

    async def open(self, dsn: str) -> None:
        self._pool = await asyncpg.create_pool(dsn, min_size=1, max_size=POOL_SIZE)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def load(self, hero_id: UUID) -> dict[str, Any]:
        """The hero's row as a dict; 404 when there is none."""
        assert self._pool is not None, "HeroTable.open() first"
        text = await self._pool.fetchval(QUERY, hero_id)
        if text is None:
            raise HTTPException(status_code=404, detail="hero not found")
        row: dict[str, Any] = orjson.loads(text)
        return row
