"""The service as a real process (`python -m app serve`, uvicorn), on a free port."""

import os
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
#: a service process on a loaded 2-core machine (other tests, CI beside a session) took
#: 14-17 s just to import app.main; a start-up slower than this is a failure, not a measurement
START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
POLL_SECONDS = 0.05


def became_healthy(
    url: str, process: subprocess.Popen[bytes], timeout: float, poll_seconds: float
) -> bool:
    """Poll `url`/health until it answers 200 (True); False once `process` has exited or
    `timeout` seconds have passed without that answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(poll_seconds)
    return False


class ServiceProcess:
    def __init__(
        self,
        database_url: str,
        redis_url: str,
        log_path: Path,
        *,
        module: str = "app",
        **settings: str,
    ) -> None:
        """`settings`: more environment variables of the service (e.g. WEB_CONCURRENCY);
        `module`: run `python -m <module>` instead (a test server such as
        `tests.support.paused_writer`; `app` gets the `serve` command)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_ENABLED": "true",
            "CACHE_LEASE_WAIT_MS": "2000",
            "LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **settings,
        }
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *(["serve"] if module == "app" else [])],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self) -> None:
        if became_healthy(self.url, self.process, START_TIMEOUT, POLL_SECONDS):
            return
        output = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"service on port {self.port} did not become healthy:\n{output}")

    def stop(self) -> None:
        """SIGTERM (uvicorn stops its workers), SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_services(
    database_url: str, redis_url: str, log_dir: Path, count: int
) -> Iterator[list[ServiceProcess]]:
    """`count` service processes on one database and one Redis (logs `a.log`, `b.log`... in
    `log_dir`), each healthy before the block runs; all stopped at the end."""
    services: list[ServiceProcess] = []
    try:
        for name in string.ascii_lowercase[:count]:
            services.append(ServiceProcess(database_url, redis_url, log_dir / f"{name}.log"))
        for service in services:
            service.wait_healthy()
        yield services
    finally:
        for service in services:
            service.stop()
