"""`GET /dashboard`: the operator's live page, and `GET /cache/samples`, the JSON it polls.

The page and its script and style are files of this package (`app/static/`), served by the
app: no CDN, no third-party script; the charts are SVG drawn by the page's own script. The
Content-Security-Policy lets the page load nothing from elsewhere.
"""

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.api.operator import OperationsDep

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
#: Everything from this origin only; inline script and style refused.
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=FileResponse, include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html", headers=HEADERS)


@router.get("/dashboard/dashboard.js", response_class=FileResponse, include_in_schema=False)
async def dashboard_script() -> FileResponse:
    return FileResponse(STATIC / "dashboard.js", media_type=ASSETS["dashboard.js"], headers=HEADERS)


@router.get("/dashboard/dashboard.css", response_class=FileResponse, include_in_schema=False)
async def dashboard_style() -> FileResponse:
    return FileResponse(
        STATIC / "dashboard.css", media_type=ASSETS["dashboard.css"], headers=HEADERS
    )


@router.get("/cache/samples", tags=["cache"])
async def cache_samples(operations: OperationsDep) -> dict[str, Any]:
    """This process's ring buffer of cache samples (one per second, the last five minutes):
    what `/dashboard` draws."""
    return operations.sampler.snapshot()
