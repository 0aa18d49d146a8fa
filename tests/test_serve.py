"""`python -m app serve` (what `make run` runs): settings checked before anything starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WEB_CONCURRENCY", "0"), ("ACCESS_LOG", "sometimes"), ("CACHE_NEAR_LEASE_MS", "1")],
)
def test_serve_refuses_an_invalid_setting_naming_it(variable: str, value: str) -> None:
    env = {**os.environ, variable: value, "DATABASE_URL": "sqlite+aiosqlite:///unused.db"}
    run = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert variable in run.stderr
    assert "Traceback" not in run.stderr
