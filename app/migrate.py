"""`python -m app migrate`: upgrade the database (DATABASE_URL) to the newest revision.

The one-shot step of a deployment (compose's `migrate` service, the image's `migrate`
command), run before the app starts, never by each replica: the app's role needs no DDL
rights. On PostgreSQL the run holds an advisory lock (alembic/env.py), so two runs started
together upgrade one after the other and both succeed.
"""

import argparse
import sys
from pathlib import Path

from alembic.config import Config

from alembic import command
from app.core.cli import settings_or_report

EXIT_INVALID_SETTINGS = 2
EXIT_NO_CONFIG = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default="alembic.ini",
        type=Path,
        help="alembic.ini of the migrations (default: ./alembic.ini)",
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_report("migrate")
    if settings is None:
        return EXIT_INVALID_SETTINGS
    if not args.config.is_file():
        print(f"migrate: {args.config} not found (run from the project directory)", file=sys.stderr)
        return EXIT_NO_CONFIG
    config = Config(str(args.config))
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, args.revision)
    print(f"migrate: database at {args.revision}", file=sys.stderr)
    return 0
