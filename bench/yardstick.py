"""The yardstick: the smallest FastAPI app serving the same bytes as one hero's JSON.

Run by the bench with the same uvicorn settings as the service
(`uvicorn bench.yardstick:app`); `BENCH_YARDSTICK_BODY` names the file holding the body.
Every throughput figure is also reported relative to `GET /const` on this app, measured in
the same run on the same machine, which makes numbers comparable across machines.
"""

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

_body_file = os.environ.get("BENCH_YARDSTICK_BODY")
BODY = Path(_body_file).read_bytes() if _body_file else b'{"yardstick":true}'

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/const")
async def const() -> Response:
    return Response(BODY, media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
