"""Command line of the service: `python -m app <command> [options]`.

Each command is a module exposing `add_arguments(parser)` and `run(args) -> int` (the exit
code); register it in `COMMANDS`. Run `python -m app --help` for the list.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("app.serve", "serve the API with uvicorn (HOST, PORT, WEB_CONCURRENCY, ACCESS_LOG)"),
    "migrate": (
        "app.migrate",
        "upgrade the database (DATABASE_URL) to the newest migration, under an advisory lock",
    ),
    "seed": (
        "app.seed.cli",
        "fill the database (DATABASE_URL) with sample heroes, children, stories",
    ),
    "token": ("app.token", "print a bearer token signed with AUTH_JWT_SECRET, for local use"),
    "warm": ("app.cache.warm_cli", "warm the cache: the most recent rows and first list pages"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="tales-api commands")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level on stderr (default: WARNING)",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subcommands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
