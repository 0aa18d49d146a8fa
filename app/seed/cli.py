"""`python -m app seed`: the command line. Parses the counts and the seed, runs the loader
on the configured DATABASE_URL and prints a one-line summary, or the reason it could not.

Exit codes: 0 seeded, 1 database (or vocabulary) error, 2 refused (invalid configuration,
no schema, seed already loaded). Messages carry no row data: children's names are
personal data.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.core.cli import settings_or_report, whole_number
from app.seed.loader import SeedRefused, seed_database
from app.seed.sizes import DEFAULT_SIZE, SIZES, Counts
from app.seed.vocabulary import VocabularyError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REFUSED = 2

#: A seed not given is drawn from [0, this).
RANDOM_SEED_LIMIT = 2**31
#: An error message is cut to this many characters.
MAX_ERROR_LENGTH = 300
#: The type of a count argument.
COUNT = whole_number(0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        default=DEFAULT_SIZE,
        help="preset counts: "
        + ", ".join(f"{n}={c.heroes}/{c.children}/{c.stories}" for n, c in SIZES.items())
        + f" heroes/children/stories (default: {DEFAULT_SIZE})",
    )
    parser.add_argument("--heroes", type=COUNT, help="number of heroes (overrides --size)")
    parser.add_argument("--children", type=COUNT, help="number of children (overrides --size)")
    parser.add_argument("--stories", type=COUNT, help="number of stories (overrides --size)")
    parser.add_argument(
        "--seed",
        type=int,
        help="random seed; the same seed gives the same rows (default: a random one, printed)",
    )


def counts_from_args(args: argparse.Namespace) -> Counts:
    preset = SIZES[args.size]
    return Counts(
        heroes=preset.heroes if args.heroes is None else args.heroes,
        children=preset.children if args.children is None else args.children,
        stories=preset.stories if args.stories is None else args.stories,
    )


def _describe(exc: BaseException) -> str:
    """The error without the statement parameters SQLAlchemy appends (they hold names)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"[:MAX_ERROR_LENGTH]


def run(args: argparse.Namespace) -> int:
    """Entry point of `python -m app seed`; returns the exit code."""
    settings = settings_or_report("seed")
    if settings is None:
        return EXIT_REFUSED
    counts = counts_from_args(args)
    seed = (
        args.seed if args.seed is not None else random.SystemRandom().randrange(RANDOM_SEED_LIMIT)
    )
    backend = make_url(settings.database_url).get_backend_name()
    try:
        report = asyncio.run(seed_database(settings.database_url, counts, seed=seed))
    except SeedRefused as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except VocabularyError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (SQLAlchemyError, OSError) as exc:
        print(f"seed: database error on {backend}: {_describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"seeded {report.counts.heroes} heroes, {report.counts.children} children, "
        f"{report.counts.stories} stories ({report.stories_with_child} with a child, "
        f"{report.stories_with_hero} with a hero) into {backend} "
        f"in {report.seconds:.1f}s (--seed {report.seed})"
    )
    return EXIT_OK
