"""Two real service processes on one Redis: a cold key is loaded from the database once in
total, however many requests both receive at the same moment (the Redis load lease)."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stampede.helpers import HERO, HEROES
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
REQUESTS_PER_PROCESS = 100


class ServiceProcess:
    def __init__(self, database_url: str, redis_url: str, log_path: Path) -> None:
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
        }
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning"]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        output = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"service on port {self.port} did not become healthy:\n{output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def two_processes(
    postgresql_database_url: str, own_redis: RedisServer, tmp_path: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    services: list[ServiceProcess] = []
    try:
        for name in ("a", "b"):
            services.append(
                ServiceProcess(postgresql_database_url, own_redis.url, tmp_path / f"{name}.log")
            )
        for service in services:
            service.wait_healthy()
        yield services[0], services[1]
    finally:
        for service in services:
            service.stop()


async def hero_loads(client: httpx.AsyncClient) -> int:
    response = await client.get("/cache/stats")
    assert response.status_code == 200
    return response.json()["entities"]["hero"]["database_loads"]


async def test_cold_key_is_loaded_once_across_two_processes(two_processes) -> None:
    limits = httpx.Limits(max_connections=REQUESTS_PER_PROCESS)
    clients = [
        httpx.AsyncClient(base_url=service.url, limits=limits, timeout=10.0)
        for service in two_processes
    ]
    async with clients[0], clients[1]:
        created = await clients[0].post(HEROES, json=HERO)
        assert created.status_code == 201, created.text
        url = f"{HEROES}/{created.json()['id']}"
        before = [await hero_loads(client) for client in clients]

        async def burst(client: httpx.AsyncClient) -> list[httpx.Response]:
            return await asyncio.gather(*(client.get(url) for _ in range(REQUESTS_PER_PROCESS)))

        answers = await asyncio.gather(*(burst(client) for client in clients))

        after = [await hero_loads(client) for client in clients]
    responses = answers[0] + answers[1]
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert len({r.content for r in responses}) == 1
    loads = [a - b for a, b in zip(after, before, strict=True)]
    assert all(count <= 1 for count in loads), loads
    assert sum(loads) == 1, loads
