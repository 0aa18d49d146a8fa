"""Prometheus metrics: HTTP requests per route template, method and status, and `/metrics`
(this process's metrics and the app's own collectors: the cache statistics)."""

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.dependencies import ServicesDep
from app.core.metrics import LATENCY_BUCKETS, PROCESS_REGISTRY

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
    buckets=LATENCY_BUCKETS,
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
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    body = generate_latest(PROCESS_REGISTRY) + generate_latest(services.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
