"""The API contract under a third-party fuzzer: schemathesis, every check (`--checks all`) and
every phase (examples, coverage, fuzzing, stateful), against the service as `make run` starts
it (`python -m app serve`, a real process), with the cache on (PostgreSQL + Redis) and off
(SQLite). It must find nothing.

The seed is fixed here (`FUZZ_SEED` overrides it, `FUZZ_MAX_EXAMPLES` the examples per
operation): `make fuzz` runs longer with a random seed and prints it. The only departures
from the defaults are in `schemathesis.toml` (412 / 422 where they are the right answer to a
schema-valid request) and `schemathesis_hooks.py` (a generator limitation), each explained
there."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import migrate
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))
RUN_TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "540"))
ADMIN_TOKEN = "contract-admin-token"  # the admin routes are fuzzed too
PHASES = "examples,coverage,fuzzing,stateful"


@pytest.fixture(params=["cache", "nocache"])
def service(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> Iterator[ServiceProcess]:
    if request.param == "cache":
        database_url = request.getfixturevalue("postgresql_database_url")
        request.getfixturevalue("clean_database")
        redis_server.client().flushdb()
        settings = {"REDIS_ENABLED": "true"}
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'tales.db'}"
        migrate(database_url)
        settings = {"REDIS_ENABLED": "false"}
    process = ServiceProcess(
        database_url,
        redis_server.url,
        tmp_path / "service.log",
        ADMIN_TOKEN=ADMIN_TOKEN,
        **settings,
    )
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def schemathesis_command(url: str, seed: int, max_examples: int, report_dir: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_schemathesis_finds_nothing(service: ServiceProcess, tmp_path: Path) -> None:
    print(f"schemathesis seed: {SEED} (FUZZ_SEED={SEED} reproduces it)")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks",
    }
    run = subprocess.run(
        schemathesis_command(service.url, SEED, MAX_EXAMPLES, tmp_path / "report"),
        cwd=tmp_path,  # its .schemathesis/ working files stay out of the tree
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = run.stdout + run.stderr
    print(output[-4000:])
    assert run.returncode == 0, f"schemathesis (seed {SEED}) found problems:\n{output[-20000:]}"
    # every operation of the document was tested, in every phase
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-4000:]
    assert selected[1] == selected[2] == tested[1], output[-4000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-4000:]
