"""uvicorn's access log without personal data: the query string is cut from every line.

A list request's query string can carry a child's name (`GET /api/v1/children?name=...`), and
the README promises logs carry ids, never names. Paths themselves hold only ids. The filter
is installed by `python -m app serve` through uvicorn's log config, and on the
`uvicorn.access` logger when the app is built from the environment (`uvicorn app.main:app`
started by hand), so every way the service starts logs the same way. It runs only when an
access line is written (ACCESS_LOG=true), never on the cache-hit path otherwise.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

ACCESS_LOGGER = "uvicorn.access"
#: uvicorn's access record: (client address, method, path with query, HTTP version, status)
PATH_ARG = 2
ACCESS_ARGS = 5
#: What stands in for a removed query string: that there was one, not what it said.
QUERY_MARK = "?…"


class DropQueryString(logging.Filter):
    """Rewrite an access record's path without its query string (keeps the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == ACCESS_ARGS:
            path = args[PATH_ARG]
            if isinstance(path, str) and "?" in path:
                cut = path.split("?", 1)[0] + QUERY_MARK
                record.args = (*args[:PATH_ARG], cut, *args[PATH_ARG + 1 :])
        return True


def install() -> None:
    """Put the filter on the access logger (once), whatever configured logging before."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryString) for f in logger.filters):
        logger.addFilter(DropQueryString())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own log config with the filter on its access logger (workers rebuild their
    logging from this dict, so the filter reaches every worker process)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["drop_query_string"] = {
        "()": f"{__name__}.{DropQueryString.__name__}"
    }
    config["loggers"][ACCESS_LOGGER]["filters"] = ["drop_query_string"]
    return config
