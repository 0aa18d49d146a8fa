"""A Redis primary, a replica and three sentinels, each a throwaway process on a free loopback
port (`SentinelGroup`), optionally all over TLS; and `NodeServer`, a `RedisServer` with extra
arguments and TLS, which they are made of.

The sentinels judge the primary down after `DOWN_AFTER_MS` without an answer and promote the
replica (quorum 2 of 3). `kill_primary()` SIGKILLs the primary's pid; `wait_failover()`
returns once the sentinels name the replica.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import redis

from .redis_server import HOST, RedisServer
from .started import Started
from .tls import TlsFiles

MASTER_NAME = "tales"
QUORUM = 2
SENTINELS = 3
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000
#: Sentinels discover the replica (INFO every 10 s at first, sooner once they know the
#: primary) and each other (hello messages every 2 s) before they can fail over.
READY_WITHIN = 30.0
FAILOVER_WITHIN = 30.0
POLL_SECONDS = 0.05


class NodeServer(RedisServer):
    """A redis-server with `extra_args`, and a TLS-only listener when `tls` is given."""

    def __init__(
        self,
        password: str | None = None,
        *,
        tls: TlsFiles | None = None,
        extra_args: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(password, **kwargs)
        self.tls = tls
        self.extra_args = list(extra_args or [])

    @property
    def url(self) -> str:
        url = super().url
        return url.replace("redis://", "rediss://", 1) if self.tls else url

    def _command(self) -> list[str]:
        command = super()._command()
        if self.tls is not None:
            at = command.index("--port")
            command[at : at + 2] = ["--port", "0", "--tls-port", str(self.port)]
            command += [*self.tls.server_args(), "--tls-replication", "yes"]
        return command + self.extra_args

    def _tls_options(self) -> dict[str, Any]:
        return self.tls.client_options() if self.tls is not None else {}

    def client(self, **kwargs: Any) -> redis.Redis:
        return super().client(**{**self._tls_options(), **kwargs})

    def _probe_client(self, timeout: float = 0.5) -> redis.Redis:
        probe = super()._probe_client(timeout)
        if self.tls is None:
            return probe
        probe.close()
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **self._tls_options(),
        )


class SentinelServer(NodeServer):
    """`redis-server <conf> --sentinel` watching the group's primary."""

    def __init__(
        self,
        primary: NodeServer,
        *,
        password: str | None,
        data_password: str | None,
        tls: TlsFiles | None,
    ) -> None:
        super().__init__(password, tls=tls)
        self.primary = primary
        self.data_password = data_password

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "sentinel.conf"

    def _command(self) -> list[str]:
        # Written at each start: the port may have changed before the first one.
        lines = [
            f"bind {self.host}",
            "daemonize no",
            f"dir {self.data_dir}",
            f"logfile {self.log_path}",
            f"sentinel monitor {MASTER_NAME} {HOST} {self.primary.port} {QUORUM}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]
        if self.tls is not None:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {self.tls.cert}",
                f"tls-key-file {self.tls.key}",
                f"tls-ca-cert-file {self.tls.ca}",
                "tls-auth-clients no",
                "tls-replication yes",
            ]
        else:
            lines.append(f"port {self.port}")
        if self.data_password:
            lines.append(f"sentinel auth-pass {MASTER_NAME} {self.data_password}")
        if self.password:
            lines.append(f"requirepass {self.password}")
        self.conf_path.write_text("\n".join(lines) + "\n")
        return [self._executable, str(self.conf_path), "--sentinel"]


class SentinelGroup(Started):
    """A primary, a replica of it and three sentinels (see the module docstring)."""

    def __init__(
        self,
        *,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        auth = ["--masterauth", password] if password else []
        self.password = password
        self.sentinel_password = sentinel_password
        self.tls = tls
        self.primary = NodeServer(password, tls=tls, extra_args=auth)
        self.replica = NodeServer(password, tls=tls, extra_args=auth)
        self.sentinels = [
            SentinelServer(
                self.primary, password=sentinel_password, data_password=password, tls=tls
            )
            for _ in range(SENTINELS)
        ]

    @property
    def master_name(self) -> str:
        return MASTER_NAME

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS."""
        return ",".join(f"{s.host}:{s.port}" for s in self.sentinels)

    @property
    def data_nodes(self) -> list[NodeServer]:
        return [self.primary, self.replica]

    def start(self) -> None:
        self.primary.start()
        self.replica.extra_args += ["--replicaof", HOST, str(self.primary.port)]
        self.replica.start()
        self._until(self._replica_synced, "the replica to sync")
        for sentinel in self.sentinels:
            sentinel.start()
        self._until(self._sentinels_ready, "the sentinels to know the replica and each other")

    def close(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            with contextlib.suppress(Exception):
                server.close()

    def master_port(self) -> int | None:
        """The port of the primary the sentinels name (the first that answers)."""
        for sentinel in self.sentinels:
            if not sentinel.is_running:
                continue
            try:
                address = sentinel.client(socket_timeout=1.0).sentinel_get_master_addr_by_name(
                    MASTER_NAME
                )
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def kill_primary(self) -> None:
        """SIGKILL the primary's pid: no goodbye to anyone."""
        self.primary.kill()

    def wait_failover(self) -> float:
        """Wait until every sentinel names the replica; returns the seconds it took."""
        started = time.monotonic()
        self._until(self._replica_promoted, "the replica to be promoted", FAILOVER_WITHIN)
        return time.monotonic() - started

    def run_id(self, node: NodeServer) -> str:
        return str(node.client(socket_timeout=1.0).info("server")["run_id"])

    # ------------------------------------------------------------------ checks

    def _replica_synced(self) -> bool:
        info = self.replica.client(socket_timeout=1.0).info("replication")
        return info.get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            state = sentinel.client(socket_timeout=1.0).sentinel_master(MASTER_NAME)
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < SENTINELS - 1:
                return False
        return True

    def _replica_promoted(self) -> bool:
        for sentinel in self.sentinels:
            address = sentinel.client(socket_timeout=1.0).sentinel_get_master_addr_by_name(
                MASTER_NAME
            )
            if not address or int(address[1]) != self.replica.port:
                return False
        role = self.replica.client(socket_timeout=1.0).info("replication")["role"]
        return bool(role == "master")

    def _until(self, check: Any, what: str, within: float = READY_WITHIN) -> None:
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(redis.RedisError):
                if check():
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {server!r}\n{server.log_tail(15)}"
                    for server in [self.primary, self.replica, *self.sentinels]
                )
                raise RuntimeError(f"timed out waiting for {what}:\n{logs}")
            time.sleep(POLL_SECONDS)
