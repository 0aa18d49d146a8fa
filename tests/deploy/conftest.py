"""The service started the ways a deployment starts it, as real processes whose output the
tests read: `make run`, the image's entrypoint script, uvicorn by hand."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.postgres import create_database, drop_database, postgres_url
from tests.support.service import became_healthy

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
POLL_SECONDS = 0.1


class Started:
    """A command run in its own process group (make, sh and uv start children), its output
    (stdout and stderr) in one file; stopped with SIGTERM to that group, as a container
    runtime would stop it."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path = ROOT
    ) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        if became_healthy(self.url, self.process, START_TIMEOUT, POLL_SECONDS):
            return
        raise AssertionError(f"not healthy on port {self.port}:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM to the group this test started; its exit code (SIGKILL after a timeout)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def base_env(**settings: str) -> dict[str, str]:
    """The machine's environment (PATH, HOME...) without any of the service's settings
    (the session's `clean_environment` removed them), on a free port, plus `settings`."""
    return {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


@pytest.fixture
def fresh_database_url() -> Iterator[str]:
    """A PostgreSQL database no migration has touched."""
    name = create_database()
    try:
        yield postgres_url(name)
    finally:
        drop_database(name)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Started]]:
    """Processes a test starts; each is stopped at the end."""
    processes: list[Started] = []
    yield processes
    for process in processes:
        process.stop()
