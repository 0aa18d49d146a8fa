"""Throwaway databases on the machine's PostgreSQL (trust auth, no password).

These helpers are synchronous (for session-scoped sync fixtures); each call
runs asyncpg in a fresh event loop. Only databases this process created, and
whose names start with ``tales_test_``, can ever be dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

DB_PREFIX = "tales_test_"
MAINTENANCE_DB = "postgres"
CONNECT_TIMEOUT = 5.0

_NAME_RE = re.compile(rf"^{DB_PREFIX}[0-9a-f]+$")
_created: set[str] = set()
_created_lock = threading.Lock()

T = TypeVar("T")


def pg_host() -> str:
    return os.environ.get("TEST_PG_HOST", "127.0.0.1")


def pg_port() -> int:
    return int(os.environ.get("TEST_PG_PORT", "5432"))


def pg_user() -> str:
    return os.environ.get("TEST_PG_USER", "postgres")


def postgres_url(name: str) -> str:
    """SQLAlchemy async URL for database ``name``."""
    return f"postgresql+asyncpg://{pg_user()}@{pg_host()}:{pg_port()}/{name}"


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion in a fresh event loop.

    If the calling thread already runs a loop (e.g. called from an async test),
    the fresh loop is run in a helper thread instead of failing.
    """

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def _connect(timeout: float = CONNECT_TIMEOUT) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=pg_host(),
        port=pg_port(),
        user=pg_user(),
        database=MAINTENANCE_DB,
        timeout=timeout,
    )


def postgres_available(timeout: float = 2.0) -> bool:
    """True if the maintenance database accepts a connection and ``SELECT 1``."""

    async def probe() -> bool:
        conn = await _connect(timeout)
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    try:
        return _run(probe)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def _execute(statement: str) -> None:
    """Run one statement on the maintenance database."""

    async def execute() -> None:
        conn = await _connect()
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    _run(execute)


def create_database() -> str:
    """Create a fresh, uniquely named ``tales_test_<hex>`` database; return its name."""
    name = f"{DB_PREFIX}{secrets.token_hex(8)}"
    # template0: template1 may be in use by a concurrent session, which
    # makes CREATE DATABASE ... TEMPLATE template1 fail.
    _execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    with _created_lock:
        _created.add(name)
    return name


def drop_database(name: str) -> None:
    """Drop (``WITH (FORCE)``) a database previously made by :func:`create_database`."""
    with _created_lock:
        owned = name in _created
    if not owned or not _NAME_RE.fullmatch(name):
        raise ValueError(f"refusing to drop {name!r}: not a {DB_PREFIX}* database created here")
    _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with _created_lock:
        _created.discard(name)


def created_databases() -> frozenset[str]:
    """Names created by this process and not dropped yet."""
    with _created_lock:
        return frozenset(_created)


def drop_all_created() -> None:
    """Drop every database this process created (e.g. at session teardown)."""
    for name in sorted(created_databases()):
        drop_database(name)
