"""Cache endpoints: statistics, and flushing this service's keys (admin token)."""

import hmac
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from app.cache.service import CacheService

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/cache", tags=["cache"])

ENTITY_OF_PATH = {"heroes": "hero", "children": "child", "stories": "story"}


def _cache(request: Request) -> CacheService:
    return request.app.state.cache


@router.get("/stats")
async def cache_stats(cache: Annotated[CacheService, Depends(_cache)]) -> dict[str, Any]:
    """Hits, misses, hit rate, sets, invalidations and errors per entity and in total."""
    return {
        "status": cache.status,
        "breaker": cache.breaker_state(),
        "redis_url": cache.url,
        "key_prefix": cache.prefix,
        **cache.stats.snapshot(),
    }


class AdminDenied(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail


def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = request.app.state.settings.admin_token
    if token is None or not token.get_secret_value():
        raise AdminDenied(403, "admin endpoints are disabled: no ADMIN_TOKEN is configured")
    scheme, _, presented = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected):
        raise AdminDenied(401, "a valid 'Authorization: Bearer <ADMIN_TOKEN>' header is required")


Admin = Annotated[None, Depends(require_admin)]
FLUSH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong admin token"},
    403: {"description": "Admin endpoints disabled (no ADMIN_TOKEN)"},
}


async def _flush(cache: CacheService, entities: list[str]) -> dict[str, Any]:
    # Move the epochs first: a fill started before the flush can no longer land.
    moved = await cache.move_epoch(entities)
    deleted = 0
    for entity in entities:
        deleted += await cache.delete_pattern(f"{cache.prefix}{entity}:", entries_only=True)
    logger.info(
        "cache flushed by admin request: %s (%d keys deleted, reachable=%s)",
        ", ".join(entities),
        deleted,
        moved,
    )
    return {"flushed": entities, "deleted_keys": deleted, "cache_reachable": moved}


@router.delete("", responses=FLUSH_RESPONSES)
async def flush_cache(
    _admin: Admin, cache: Annotated[CacheService, Depends(_cache)]
) -> dict[str, Any]:
    """Flush every entity's cached entries and lists (only keys under this service's prefix)."""
    return await _flush(cache, list(ENTITY_OF_PATH.values()))


@router.delete("/{entity}", responses=FLUSH_RESPONSES)
async def flush_entity_cache(
    entity: Literal["heroes", "children", "stories"],
    _admin: Admin,
    cache: Annotated[CacheService, Depends(_cache)],
) -> dict[str, Any]:
    """Flush one entity's cached entries and lists."""
    return await _flush(cache, [ENTITY_OF_PATH[entity]])


async def admin_denied_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AdminDenied)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
