"""Liveness and readiness."""

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.dependencies import Services, ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def liveness() -> dict[str, str]:
    """The process is up; touches nothing."""
    return {"status": "ok"}


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _database_status(services: Services) -> dict[str, Any]:
    """SELECT 1 within HEALTH_TIMEOUT. A probe that overruns is abandoned, not awaited: the
    clean-up of a connection to an unreachable database must not delay the answer."""
    started = time.perf_counter()
    probe = asyncio.ensure_future(_select_one(services.engine))
    probe.add_done_callback(lambda task: task.cancelled() or task.exception())
    done, _ = await asyncio.wait({probe}, timeout=services.settings.health_timeout)
    if not done:
        probe.cancel()
        return {"status": "down", "latency_ms": None}
    if probe.exception() is not None:
        return {"status": "down", "latency_ms": None}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@router.get("/health/ready")
async def readiness(services: ServicesDep) -> JSONResponse:
    """200 `ok` or `degraded` (cache down, service still answers); 503 when the database is down."""
    database, cache = await asyncio.gather(
        _database_status(services), services.cache.health_check()
    )
    body: dict[str, Any] = {
        "status": "ok",
        "database": database,
        "cache": cache,
        "auth": "enabled" if services.settings.auth_enabled else "disabled",
    }
    if body["cache"]["status"] == "down":
        body["status"] = "degraded"
    if database["status"] != "up":
        body["status"] = "unavailable"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
