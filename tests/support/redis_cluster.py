"""A throwaway Redis Cluster: six ``redis-server --cluster-enabled yes`` processes on free
loopback ports (three primaries, one replica each), joined by ``redis-cli --cluster create``.

Each node has its own directory under one temp dir; ``kill(port)`` SIGKILLs that node's
process (by pid) so its replica gets promoted (``cluster-node-timeout`` is short unless
``node_timeout_ms`` says otherwise), ``restart(port)`` starts it again from its directory, and
``close()`` stops every process this object started, by pid, and deletes the temp dir.
The machine's own Redis on 6379 is never touched.

``RedisClusterServers(tls=..., password=...)``: every node listens on TLS only (`--port 0`,
`--tls-port`, `--tls-cluster yes` for the bus, `--tls-replication yes`), and its default
user has that password (replicas authenticate with it); ``url`` is then `rediss://` and
``client()`` speaks TLS as that default user.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .ports import free_port
from .started import Started
from .tls import TlsFiles

HOST = "127.0.0.1"
NODES = 6
REPLICAS = 1
#: Short, so that a killed primary's replica is promoted within a few seconds.
NODE_TIMEOUT_MS = 1000
START_TIMEOUT = 10.0
CLIENT_TIMEOUT = 2.0
PING_TIMEOUT = 0.5  # of the probe that waits for a starting node
CLUSTER_TIMEOUT = 30.0
POLL = 0.05


#: starts of one node on new ports when its port was taken meanwhile (see _wait_first_start)
BIND_ATTEMPTS = 3

#: redis-server refuses a port above this even when its bus port is given (`cluster-port`).
MAX_PORT = 55535


def _data_port() -> int:
    while (port := free_port()) > MAX_PORT:
        pass
    return port


class RedisClusterError(RuntimeError):
    """The cluster could not be started or did not settle."""


def _release(procs: dict[int, subprocess.Popen[bytes]], root: Path) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    shutil.rmtree(root, ignore_errors=True)


class RedisClusterServers(Started):
    """Start with ``start()`` (or ``with``); see the module docstring."""

    def __init__(
        self,
        *,
        tls: TlsFiles | None = None,
        password: str | None = None,
        node_timeout_ms: int = NODE_TIMEOUT_MS,
    ) -> None:
        self.tls = tls
        self.password = password
        self.node_timeout_ms = node_timeout_ms
        self.root = Path(tempfile.mkdtemp(prefix="tales-cluster-"))
        self.ports = [_data_port() for _ in range(NODES)]
        self.bus_ports = {port: free_port() for port in self.ports}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._finalizer = weakref.finalize(self, _release, self.procs, self.root)

    @property
    def url(self) -> str:
        """Any one node: the client discovers the others."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{HOST}:{self.ports[0]}/0"

    def client(self, port: int, timeout: float = CLIENT_TIMEOUT) -> redis.Redis:
        options: dict[str, object] = {} if self.tls is None else self.tls.client_options()
        return redis.Redis(
            HOST,
            port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0) if timeout < CLIENT_TIMEOUT else None,
            **options,
        )

    def _access_args(self) -> list[str]:
        """redis-cli's arguments to reach a node (TLS, the default user's password)."""
        args = [] if self.tls is None else ["--tls", "--cacert", str(self.tls.ca)]
        return args + ([] if self.password is None else ["-a", self.password, "--no-auth-warning"])

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        for port in self.ports:
            self._spawn(port)
        for index in range(len(self.ports)):
            self._wait_first_start(index)
        create = [
            "redis-cli",
            "--cluster",
            "create",
            *(f"{HOST}:{port}" for port in self.ports),
            "--cluster-replicas",
            str(REPLICAS),
            "--cluster-yes",
            *self._access_args(),
        ]
        done = subprocess.run(create, capture_output=True, timeout=CLUSTER_TIMEOUT, check=False)
        if done.returncode != 0:
            raise RedisClusterError(f"redis-cli --cluster create failed: {done.stdout[-2000:]!r}")
        self.wait_ok()

    def _spawn(self, port: int) -> None:
        directory = self.root / str(port)
        directory.mkdir(exist_ok=True)  # a restart keeps nodes.conf and dump.rdb
        if self.tls is None:
            listen = ["--port", str(port)]
        else:
            listen = ["--port", "0", "--tls-port", str(port), *self.tls.server_args()]
            listen += ["--tls-cluster", "yes", "--tls-replication", "yes"]
        if self.password is not None:
            listen += ["--requirepass", self.password, "--masterauth", self.password]
        command = [
            "redis-server",
            *listen,
            "--bind",
            HOST,
            "--daemonize",
            "no",
            "--dir",
            str(directory),
            "--logfile",
            str(directory / "redis.log"),
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self.bus_ports[port]),
            "--cluster-config-file",
            str(directory / "nodes.conf"),
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--cluster-require-full-coverage",
            "no",
            "--repl-diskless-sync-delay",  # replicas in sync at once: a replica that never
            "0",  # synced is never promoted
            "--appendonly",
            "no",
            "--save",
            "",
        ]
        self.procs[port] = subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )

    def _wait_first_start(self, index: int) -> None:
        """Wait for node `index` to answer; if its port (or bus port) was taken between
        `free_port()` and the bind — any outgoing connection may take a port of the ephemeral
        range meanwhile — start it again on new ports, up to `BIND_ATTEMPTS` times."""
        for attempt in range(BIND_ATTEMPTS):
            port = self.ports[index]
            try:
                self._wait_ping(port)
                return
            except RedisClusterError as exc:
                if attempt + 1 == BIND_ATTEMPTS or "Address already in use" not in str(exc):
                    raise
            self.procs.pop(port).wait()
            shutil.rmtree(self.root / str(port), ignore_errors=True)
            del self.bus_ports[port]
            new = _data_port()
            self.ports[index] = new
            self.bus_ports[new] = free_port()
            self._spawn(new)

    def _wait_ping(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        # a short timeout: a port taken by another listener must not hold the probe for long
        with contextlib.closing(self.client(port, timeout=PING_TIMEOUT)) as probe:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass
                if self.procs[port].poll() is not None or time.monotonic() > deadline:
                    log = (self.root / str(port) / "redis.log").read_text(errors="replace")
                    raise RedisClusterError(f"node {port} did not start:\n{log[-2000:]}")
                time.sleep(POLL)

    def wait_ok(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Until every live node says cluster_state:ok, three primaries serve all slots and
        every live replica is in sync with its primary (so that it can be promoted)."""
        deadline = time.monotonic() + timeout
        while True:
            if (
                self._all_ok()
                and len(self.primaries()) == NODES // (REPLICAS + 1)
                and self._replicas_in_sync()
            ):
                return
            if time.monotonic() > deadline:
                raise RedisClusterError("the cluster did not reach cluster_state:ok")
            time.sleep(POLL * 4)

    def _all_ok(self) -> bool:
        for port in self.live_ports():
            try:
                with contextlib.closing(self.client(port)) as node:
                    info = node.execute_command("CLUSTER", "INFO")
            except redis.RedisError:
                return False
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text:
                return False
        return True

    def _replicas_in_sync(self) -> bool:
        for port in self.live_ports():
            try:
                with contextlib.closing(self.client(port)) as node:
                    info = node.info("replication")
            except redis.RedisError:
                return False
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def live_ports(self) -> list[int]:
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def primaries(self) -> dict[int, list[tuple[int, int]]]:
        """Port of each live primary serving slots -> its slot ranges, as a live node sees it."""
        for port in self.live_ports():
            try:
                with contextlib.closing(self.client(port)) as node:
                    slots = node.execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            owners: dict[int, list[tuple[int, int]]] = {}
            for start, end, primary, *_ in slots:
                owner = int(primary[1])
                if owner in self.live_ports():
                    owners.setdefault(owner, []).append((int(start), int(end)))
            return owners
        return {}

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port` (a process this object started, by its pid)."""
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def restart(self, port: int) -> None:
        """Start the killed node on `port` again in its directory: its nodes.conf keeps its
        node id and slots (unless its replica was promoted meanwhile: `node_timeout_ms`),
        and it loads the dump.rdb a SAVE left (nodes do not save on their own here)."""
        self._spawn(port)
        self._wait_ping(port)

    def close(self) -> None:
        self._finalizer()
