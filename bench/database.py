"""The bench's database: migrated with alembic, seeded with `python -m app seed`, analyzed.

Used by `python -m bench` and `python -m bench.profile` alike (the database itself is
created and dropped by `tests.support`).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncpg

from bench.config import BenchConfig
from bench.procs import Processes, app_env
from tests.support.postgres import pg_host, pg_port, pg_user


def _alembic() -> list[str]:
    script = Path(sys.executable).parent / "alembic"
    return [str(script)] if script.exists() else [sys.executable, "-m", "alembic"]


def checked(procs: Processes, name: str, cmd: list[str], env: dict[str, str]) -> str:
    """Run a command to completion, printing it first; its stdout, or RuntimeError."""
    print(f"  $ {' '.join(cmd)}", flush=True)
    code, out, err = procs.run(name, cmd, env=env, timeout=300)
    if code != 0:
        raise RuntimeError(f"{name} failed with exit code {code}:\n{err.strip()[-2000:]}")
    return out


def prepare(procs: Processes, database: str, database_url: str, cfg: BenchConfig) -> None:
    """Migrate, seed with the configured sizes, then VACUUM ANALYZE."""
    db_env = app_env(database_url=database_url, log_level="WARNING")
    checked(procs, "migrate", [*_alembic(), "upgrade", "head"], db_env)
    seed_cmd = [sys.executable, "-m", "app", "seed", "--heroes", str(cfg.heroes)]
    seed_cmd += ["--children", str(cfg.children), "--stories", str(cfg.stories)]
    seed_cmd += ["--seed", str(cfg.seed)]
    print("    " + checked(procs, "seed", seed_cmd, db_env).strip())
    vacuum_analyze(database)  # fresh statistics; no autovacuum run in the middle of a scenario


def connect(database: str) -> Any:
    return asyncpg.connect(
        host=pg_host(), port=pg_port(), user=pg_user(), database=database, timeout=5
    )


def vacuum_analyze(database: str) -> None:
    async def vacuum() -> None:
        conn = await connect(database)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    print("  VACUUM ANALYZE")
    asyncio.run(vacuum())


def postgres_version() -> str:
    async def query() -> str:
        conn = await connect("postgres")
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(query())
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"
