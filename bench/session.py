"""The setup of a one-off bench (`make bench-operator`, `make profile`) and its teardown.

A fresh PostgreSQL database, migrated and seeded (`bench.database.prepare`), a throwaway
redis-server, and a directory for the logs of the processes started. At the end, on success,
error and Ctrl-C alike: the processes stopped by pid, redis-server stopped, the database
dropped, the logs copied to `bench/results/logs-<name>/`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.config import RESULTS_DIR, BenchConfig
from bench.database import prepare
from bench.procs import Processes
from tests.support import RedisServer, create_database, drop_all_created, postgres_url


@dataclass
class Session:
    procs: Processes
    work_dir: Path
    redis: RedisServer
    database_url: str


@contextmanager
def seeded_session(name: str, cfg: BenchConfig) -> Iterator[Session]:
    """The database seeded with `cfg`'s sizes and redis-server started; logs kept in
    `bench/results/logs-<name>/`."""
    log_dir = RESULTS_DIR / f"logs-{name}"
    work_dir = Path(tempfile.mkdtemp(prefix=f"tales-{name}-"))
    procs = Processes(work_dir)
    redis = RedisServer()
    try:
        database = create_database()
        database_url = postgres_url(database)
        print(f"== setup: database {database}", flush=True)
        prepare(procs, database, database_url, cfg)
        redis.start()
        yield Session(procs, work_dir, redis, database_url)
    finally:
        procs.close()
        redis.close()
        drop_all_created()
        shutil.rmtree(log_dir, ignore_errors=True)
        shutil.copytree(work_dir, log_dir, ignore=shutil.ignore_patterns("*.lua"))
        shutil.rmtree(work_dir, ignore_errors=True)
