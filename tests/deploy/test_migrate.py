"""Migrations are a one-shot step (`python -m app migrate`, the image's `migrate` command),
and two runs cannot race: on PostgreSQL each holds an advisory lock for its transaction
(alembic/env.py), so the second waits, then finds the schema at head."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.core.database import MIGRATION_LOCK_KEY
from tests.conftest import TABLES
from tests.deploy.conftest import ENTRYPOINT, ROOT

RUN_TIMEOUT = 90.0
WAIT_TIMEOUT = 60.0
POLL_SECONDS = 0.1


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()


def start_migrate(database_url: str, log: Path, via_entrypoint: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "APP_HOME": str(ROOT),
    }
    command = (
        ["sh", str(ENTRYPOINT), "migrate"]
        if via_entrypoint
        else [sys.executable, "-m", "app", "migrate"]
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def connect(database_url: str) -> asyncpg.Connection:
    url = make_url(database_url)
    return await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )


async def schema(database_url: str) -> tuple[set[str], list[str]]:
    conn = await connect(database_url)
    try:
        tables = {
            row["tablename"]
            for row in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        versions = (
            [
                row["version_num"]
                for row in await conn.fetch("SELECT version_num FROM alembic_version")
            ]
            if "alembic_version" in tables
            else []
        )
        return tables, versions
    finally:
        await conn.close()


async def waiting_for_the_lock(conn: asyncpg.Connection, database: str) -> int:
    """Sessions of `database` waiting for an advisory lock (the migration runs)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1",
            database,
        )
    )


def finish(process: subprocess.Popen[bytes], log: Path) -> str:
    try:
        process.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output = log.read_text(errors="replace")
    assert process.returncode == 0, output
    return output


async def test_a_migration_waits_for_the_lock_before_reading_the_schema(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """While another session holds the lock, two runs (one through the image's entrypoint)
    wait without touching the database; released, both succeed and the schema is at head."""
    database = make_url(fresh_database_url).database
    assert database
    holder = await connect(fresh_database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        runs = [
            (
                start_migrate(fresh_database_url, tmp_path / f"m{i}.log", via_entrypoint=i == 1),
                tmp_path / f"m{i}.log",
            )
            for i in range(2)
        ]
        deadline = time.monotonic() + WAIT_TIMEOUT
        while await waiting_for_the_lock(holder, database) < len(runs):
            exited = [p.returncode for p, _ in runs if p.poll() is not None]
            assert not exited, [log.read_text() for _, log in runs]
            assert time.monotonic() < deadline, "the migration runs never waited for the lock"
            await asyncio.sleep(POLL_SECONDS)
        tables, _ = await schema(fresh_database_url)
        assert tables == set(), f"a run touched the schema before it had the lock: {tables}"
    finally:
        await holder.execute("SELECT pg_advisory_unlock_all()")
        await holder.close()

    for process, log in runs:
        await asyncio.to_thread(finish, process, log)
    tables, versions = await schema(fresh_database_url)
    assert tables >= {*TABLES, "alembic_version"}
    assert versions == [head_revision()]


async def test_two_migrations_started_together_both_succeed(
    fresh_database_url: str, tmp_path: Path
) -> None:
    runs = [
        (
            start_migrate(fresh_database_url, tmp_path / f"m{i}.log", via_entrypoint=False),
            tmp_path / f"m{i}.log",
        )
        for i in range(2)
    ]
    for process, log in runs:
        await asyncio.to_thread(finish, process, log)
    tables, versions = await schema(fresh_database_url)
    assert tables >= {*TABLES, "alembic_version"}
    assert versions == [head_revision()]
