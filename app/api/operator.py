"""The operator's routes: `POST /cache/warm` (admin token), and the dependency giving the
app's `Operations` (warming, prefetching, verifier, samples)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import ConfigDict, Field, create_model

from app.api.auth import ADMIN_RESPONSES, Admin
from app.cache.operations import Operations
from app.core.errors import AppError
from app.core.registry import Registry

#: The most rows one warm request may read.
MAX_WARM_LIMIT = 100_000


class CacheDisabled(AppError):
    status_code = 409
    title = "cache_disabled"


def get_operations(request: Request) -> Operations:
    operations: Operations = request.app.state.operations
    return operations


OperationsDep = Annotated[Operations, Depends(get_operations)]


def operator_router(registry: Registry) -> APIRouter:
    router = APIRouter(prefix="/cache", tags=["cache"])
    by_plural = registry.by_plural()
    Collection: Any = Literal[tuple(by_plural)]  # the entities' collection names
    fields: dict[str, Any] = {
        "entity": (Collection, Field(description="which entity to warm")),
        "limit": (int, Field(ge=1, le=MAX_WARM_LIMIT, description="the most recent N rows")),
    }
    WarmRequest: Any = create_model("WarmRequest", __config__=ConfigDict(extra="forbid"), **fields)

    @router.post(
        "/warm", responses={**ADMIN_RESPONSES, 409: {"description": "The cache is disabled"}}
    )
    async def warm_cache(
        body: WarmRequest, _admin: Admin, operations: OperationsDep
    ) -> dict[str, Any]:
        """Read the most recent `limit` rows of `entity` and its first list page through the
        cache (the same versioned fills as misses: a warm never overwrites newer data)."""
        if operations.warmer is None:
            raise CacheDisabled("the cache is disabled (REDIS_ENABLED=false): nothing to warm")
        request = body.model_dump()
        result = await operations.warm(by_plural[request["entity"]].name, request["limit"])
        return result.as_dict()

    return router
