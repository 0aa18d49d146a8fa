import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def liveness() -> dict[str, str]:
    """The process is up; touches nothing."""
    return {"status": "ok"}


async def _database_status(request: Request) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(request.app.state.settings.database_connect_timeout):
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - whatever the failure, the database is not ready
        return {"status": "down", "latency_ms": None}
    return {
        "status": "up",
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


@router.get("/health/ready")
async def readiness(request: Request) -> JSONResponse:
    """200 `ok` or `degraded` (cache down, service still answers); 503 when the database is down."""
    database = await _database_status(request)
    body: dict[str, Any] = {"status": "ok", "database": database}
    body["cache"] = await request.app.state.cache.health_check()
    if body["cache"]["status"] == "down":
        body["status"] = "degraded"
    if database["status"] != "up":
        body["status"] = "unavailable"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
