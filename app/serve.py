"""`python -m app serve`: run the service with uvicorn, as configured by the settings.

`HOST`, `PORT`, `WEB_CONCURRENCY` worker processes, and `ACCESS_LOG` (off by default: an
access log line per request costs about a tenth of a cache hit, and the query string of a
list request can carry a child's name).
"""

import argparse
import sys

import uvicorn

from app.core.settings import SettingsError
from app.main import load_settings

APP = "app.main:app"
EXIT_INVALID_SETTINGS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="override HOST")
    parser.add_argument("--port", type=int, help="override PORT")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    uvicorn.run(
        APP,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=settings.web_concurrency,
        access_log=settings.access_log,
        log_level=settings.log_level.lower(),
    )
    return 0
