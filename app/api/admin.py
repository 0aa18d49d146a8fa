"""Cache endpoints: statistics, and (admin token) flushing or invalidating cached values."""

import logging
import time
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter

from app.api.auth import ADMIN_RESPONSES, Admin
from app.api.dependencies import Services, ServicesDep
from app.api.operator import OperationsDep
from app.core.registry import Registry

logger = logging.getLogger(__name__)


async def _flush(services: Services, entities: list[str]) -> dict[str, Any]:
    cache = services.cache
    # Move the epochs first: a fill started before the flush can no longer land.
    moved = await cache.move_epoch(entities)
    deleted = 0
    for entity in entities:
        deleted += await cache.delete_entries(entity)
    logger.info(
        "cache flushed by admin request: %s (%d keys deleted, reachable=%s)",
        ", ".join(entities),
        deleted,
        moved,
    )
    return {"flushed": entities, "deleted_keys": deleted, "cache_reachable": moved}


def near_stats(services: Services) -> dict[str, Any]:
    """This process's near cache: whether it serves now, its size and its bound."""
    bus = services.cache.near
    if bus is None:
        return {"enabled": False}
    store = bus.store
    return {
        "enabled": True,
        "serving": bus.serving(time.monotonic()),
        "entries": len(store),
        "bytes": store.bytes,
        "max_bytes": store.max_bytes,
        "evictions": store.evictions,
        "rejected": store.rejected,
        "invalidations_applied": bus.applied,
        "lapses": bus.lapses,
    }


def admin_router(registry: Registry) -> APIRouter:
    router = APIRouter(prefix="/cache", tags=["cache"])
    by_plural = registry.by_plural()
    Collection: Any = Literal[tuple(by_plural)]  # the entities' collection names

    @router.get("/stats")
    async def cache_stats(services: ServicesDep, operations: OperationsDep) -> dict[str, Any]:
        """Hits, misses, hit rate, sets, invalidations and errors per entity and in total;
        the prefetcher's and the consistency verifier's counts."""
        cache = services.cache
        return {
            **operations.snapshot(),
            "status": cache.status,
            "breaker": cache.breaker_state(),
            "redis_url": cache.url,
            "key_prefix": cache.prefix,
            "near": near_stats(services),
            **cache.stats.snapshot(),
        }

    @router.delete("", responses=ADMIN_RESPONSES)
    async def flush_cache(_admin: Admin, services: ServicesDep) -> dict[str, Any]:
        """Flush every entity's cached entries and lists (only keys under this service's
        prefix)."""
        return await _flush(services, registry.names)

    @router.delete("/{entity}", responses=ADMIN_RESPONSES)
    async def flush_entity_cache(
        entity: Collection, _admin: Admin, services: ServicesDep
    ) -> dict[str, Any]:
        """Flush one entity's cached entries and lists."""
        return await _flush(services, [by_plural[entity].name])

    @router.delete("/{entity}/{entity_id}", responses=ADMIN_RESPONSES)
    async def invalidate_entry(
        entity: Collection, entity_id: UUID, _admin: Admin, services: ServicesDep
    ) -> dict[str, Any]:
        """Stop serving one cached entity (e.g. after a fix made in SQL); its version stays
        as the floor for fills, so no reader can store an older copy."""
        name = by_plural[entity].name
        cache = services.cache
        reachable = await cache.demote(name, [cache.keys[name].entry(entity_id)])
        logger.info("cache entry invalidated by admin request: %s %s", name, entity_id)
        return {"invalidated": f"{name} {entity_id}", "cache_reachable": reachable}

    return router
