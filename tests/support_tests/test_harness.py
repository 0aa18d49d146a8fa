"""Tests for the real-process harnesses in ``tests.support`` (no mocks)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator

import asyncpg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support import (
    FaultProxy,
    RedisServer,
    create_database,
    drop_database,
    free_port,
    postgres_available,
    postgres_url,
)
from tests.support import postgres as pg


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _client(port: int, timeout: float = 2.0, **kwargs: object) -> redis.Redis:
    """Sync client without retries, so each failure surfaces immediately."""
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **kwargs,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------- ports


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert port != 6379
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# -------------------------------------------------------------- RedisServer


def test_redis_server_start_ping_and_cleanup() -> None:
    with RedisServer() as server:
        assert server.port != 6379
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.client().ping() is True
        assert redis.Redis.from_url(server.url).ping() is True
        pid, data_dir = server.pid, server.data_dir
        assert pid is not None and data_dir.is_dir()
    assert not _pid_alive(pid)
    assert not data_dir.exists()


def test_redis_server_requires_password() -> None:
    with RedisServer(password="s3cr/t") as server:
        assert server.url == f"redis://:s3cr%2Ft@127.0.0.1:{server.port}/0"
        with pytest.raises(redis.AuthenticationError, match=r"(?i)noauth|authenticat"):
            _client(server.port).ping()
        assert server.client().ping() is True
        assert redis.Redis.from_url(server.url).ping() is True


def test_redis_server_pause_and_resume() -> None:
    with RedisServer() as server:
        client = server.client(socket_timeout=0.2)
        assert client.ping() is True
        server.pause()
        assert server.is_paused
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        assert time.monotonic() - started < 2.0
        server.resume()
        assert client.ping() is True


def test_redis_server_cleanup_while_paused() -> None:
    with RedisServer() as server:
        server.pause()
        pid = server.pid
        assert pid is not None
    assert not _pid_alive(pid)


def test_redis_server_kill_refuses_connections() -> None:
    with RedisServer() as server:
        client = server.client()
        assert client.ping() is True
        server.kill()
        assert not server.is_running
        with pytest.raises(redis.ConnectionError) as excinfo:
            client.ping()
        assert not isinstance(excinfo.value, redis.TimeoutError)
        with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
            sock.connect(("127.0.0.1", server.port))


def test_redis_server_restart_with_appendonly_keeps_data() -> None:
    with RedisServer(appendonly=True) as server:
        port = server.port
        server.client().set("tale", "kept")
        server.kill()
        server.restart()
        assert server.port == port
        assert server.client().get("tale") == b"kept"


def test_redis_server_restart_without_appendonly_loses_data() -> None:
    with RedisServer() as server:
        port = server.port
        server.client().set("tale", "lost")
        server.kill()
        server.restart()
        assert server.port == port
        assert server.client().get("tale") is None
        # A graceful stop does not persist either (SHUTDOWN NOSAVE, no save points).
        server.client().set("tale", "lost")
        server.stop()
        assert not server.is_running
        server.restart()
        assert server.client().get("tale") is None


# --------------------------------------------------------------- FaultProxy


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", redis_server.port) as fault_proxy:
        yield fault_proxy


def test_proxy_pass_forwards(proxy: FaultProxy) -> None:
    assert proxy.url() == f"redis://127.0.0.1:{proxy.port}/0"
    assert proxy.url("p w", db=2) == f"redis://:p%20w@127.0.0.1:{proxy.port}/2"
    client = _client(proxy.port)
    assert client.ping() is True
    client.set("via-proxy", "x" * 200_000)
    assert client.get("via-proxy") == b"x" * 200_000
    assert redis.Redis.from_url(proxy.url()).ping() is True


def _ping_seconds(client: redis.Redis) -> float:
    started = time.monotonic()
    assert client.ping() is True
    return time.monotonic() - started


def test_proxy_latency_mode(proxy: FaultProxy) -> None:
    client = _client(proxy.port)
    assert client.ping() is True
    proxy.set_mode("latency", latency=0.15)
    # 0.15 s each way: every round trip takes at least 0.3 s (a lower bound, which a loaded
    # machine cannot break).
    assert _ping_seconds(client) >= 0.25
    proxy.set_mode("pass")
    # The latency is gone: were it still applied, every round trip would take 0.3 s or more.
    # The fastest of a few leaves room for a machine that stalls one of them.
    fastest = min(_ping_seconds(client) for _ in range(5))
    assert fastest < 0.15, fastest


def test_proxy_blackhole_times_out_then_recovers(proxy: FaultProxy) -> None:
    existing = _client(proxy.port, timeout=0.3)
    assert existing.ping() is True
    proxy.set_mode("blackhole")
    with pytest.raises(redis.TimeoutError):
        existing.ping()  # established connection: request swallowed
    with pytest.raises(redis.TimeoutError):
        _client(proxy.port, timeout=0.3).ping()  # new connection: accepted, silent
    proxy.set_mode("pass")
    assert existing.ping() is True
    assert _client(proxy.port, timeout=0.3).ping() is True


def test_proxy_reset_sends_rst_then_recovers(proxy: FaultProxy) -> None:
    existing = _client(proxy.port)
    assert existing.ping() is True
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as raw:
        raw.sendall(b"PING\r\n")
        assert raw.recv(64) == b"+PONG\r\n"
        proxy.set_mode("reset")
        with pytest.raises(ConnectionResetError):
            raw.recv(64)  # RST, not an orderly FIN (which would return b"")
    with pytest.raises(redis.ConnectionError):
        existing.ping()
    with pytest.raises(redis.ConnectionError):
        _client(proxy.port).ping()
    proxy.set_mode("pass")
    assert existing.ping() is True
    assert _client(proxy.port).ping() is True


def test_proxy_serves_while_callers_event_loop_is_blocked(proxy: FaultProxy) -> None:
    async def blocking_caller() -> bool:
        # A sync call inside a coroutine blocks this loop; the proxy has its own.
        proxy.set_mode("latency", latency=0.05)
        return bool(_client(proxy.port).ping())

    assert asyncio.run(blocking_caller()) is True


def test_proxy_stop_closes_everything(redis_server: RedisServer) -> None:
    fault_proxy = FaultProxy("127.0.0.1", redis_server.port)
    fault_proxy.start()
    client = _client(fault_proxy.port)
    assert client.ping() is True
    fault_proxy.stop()
    fault_proxy.stop()  # idempotent
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("127.0.0.1", fault_proxy.port))
    assert not any(t.name == f"FaultProxy:{fault_proxy.port}" for t in threading.enumerate())


def test_proxy_rejects_unknown_mode(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        proxy.set_mode("slow")  # type: ignore[arg-type]


# ----------------------------------------------------------------- Postgres


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(
        host=pg.pg_host(), port=pg.pg_port(), user=pg.pg_user(), database="postgres"
    )
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return found == 1


async def _select_one(name: str) -> int:
    conn = await asyncpg.connect(
        host=pg.pg_host(), port=pg.pg_port(), user=pg.pg_user(), database=name
    )
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not reachable")
def test_create_and_drop_database() -> None:
    name = create_database()
    try:
        assert name.startswith("tales_test_")
        assert postgres_url(name) == (
            f"postgresql+asyncpg://{pg.pg_user()}@{pg.pg_host()}:{pg.pg_port()}/{name}"
        )
        assert asyncio.run(_database_exists(name))
        assert asyncio.run(_select_one(name)) == 1
        assert name in pg.created_databases()
    finally:
        drop_database(name)
    assert not asyncio.run(_database_exists(name))
    assert name not in pg.created_databases()


def test_drop_database_refuses_foreign_names() -> None:
    for name in ("postgres", "tales_test_0123abcd", "template1"):
        with pytest.raises(ValueError, match="refusing"):
            drop_database(name)


def test_a_cluster_node_whose_port_was_taken_starts_on_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between free_port() and redis-server's bind, another socket may take the port (CI saw
    it: "node ... did not start: Address already in use"); the node moves to new ports."""
    from tests.support import redis_cluster

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        handed_out = iter([taken_port])
        real = redis_cluster._data_port
        monkeypatch.setattr(redis_cluster, "_data_port", lambda: next(handed_out, None) or real())
        with redis_cluster.RedisClusterServers() as cluster:
            assert taken_port not in cluster.ports
            assert len(set(cluster.ports)) == redis_cluster.NODES
            assert len(cluster.primaries()) == redis_cluster.NODES // (redis_cluster.REPLICAS + 1)
