"""`python -m app serve`: run the service with uvicorn, as configured by the settings.

`HOST`, `PORT`, `WEB_CONCURRENCY` worker processes, `ACCESS_LOG` (off by default: an access
log line per request costs about a tenth of a cache hit; when on, paths are logged without
their query string, which can carry a child's name: app.core.access_log), the proxies whose
X-Forwarded-* headers are trusted (`PROXY_HEADERS`, `FORWARDED_ALLOW_IPS`) and how long a
stopping worker waits for requests in flight (`GRACEFUL_SHUTDOWN_TIMEOUT`). The image's
entrypoint starts the service this way too.
"""

import argparse

import uvicorn

from app.core import access_log
from app.core.cli import settings_or_report

APP = "app.main:app"
EXIT_INVALID_SETTINGS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="override HOST")
    parser.add_argument("--port", type=int, help="override PORT")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_report("serve")
    if settings is None:
        return EXIT_INVALID_SETTINGS
    uvicorn.run(
        APP,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=settings.web_concurrency,
        access_log=settings.access_log,
        log_config=access_log.uvicorn_log_config(),
        log_level=settings.log_level.lower(),
        proxy_headers=settings.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout,
    )
    return 0
