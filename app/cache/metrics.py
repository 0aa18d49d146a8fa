"""Prometheus metrics: HTTP requests per route and status, database load latency, and the
cache counters (read from CacheStats by a collector, so they are counted once)."""

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

http_requests_total = Counter(
    "tales_http_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
    registry=PROCESS_REGISTRY,
)
http_request_seconds = Histogram(
    "tales_http_request_duration_seconds",
    "HTTP request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=PROCESS_REGISTRY,
)
database_load_seconds = Histogram(
    "tales_cache_database_load_seconds",
    "Database loads made on cache misses, by entity",
    ["entity"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=PROCESS_REGISTRY,
)


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead on the hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            labels = (template, method, str(status))
            http_requests_total.labels(*labels).inc()
            http_request_seconds.labels(*labels).observe(time.perf_counter() - started)


router = APIRouter(tags=["observability"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    body = generate_latest(PROCESS_REGISTRY) + generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
