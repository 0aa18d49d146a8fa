"""A throwaway ``redis-server`` process on a private loopback port.

The server owns a temp directory (data + log) and a port chosen once at
construction, so ``kill()`` + ``restart()`` brings it back on the same port
with the same data dir (AOF persistence survives when ``appendonly=True``).
The machine's own Redis on 6379 is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .ports import free_port
from .started import Started

HOST = "127.0.0.1"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
_BIND_RETRIES = 3


class RedisServerError(RuntimeError):
    """The redis-server process could not be started or controlled."""


class _State:
    """Resources that must be released even if the owner is never closed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False


def _release(state: _State) -> None:
    """Kill the process (even if SIGSTOPped) and delete the temp dir."""
    proc = state.proc
    if proc is not None and proc.poll() is None:
        if state.paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()
    state.paused = False
    shutil.rmtree(state.data_dir, ignore_errors=True)


class RedisServer(Started):
    """Spawn and control a private ``redis-server`` (see module docstring)."""

    def __init__(
        self,
        password: str | None = None,
        appendonly: bool = False,
        *,
        executable: str = "redis-server",
    ) -> None:
        self.password = password
        self.appendonly = appendonly
        self.host = HOST
        self._executable = executable
        self._port = free_port()
        self._ever_started = False
        self._closed = False
        self._clients: list[redis.Redis] = []
        self._state = _State(Path(tempfile.mkdtemp(prefix="tales-redis-")))
        # Safety net: reap the process / temp dir if the owner forgets close().
        self._finalizer = weakref.finalize(self, _release, self._state)

    # ------------------------------------------------------------------ info

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self._port}/0"

    @property
    def data_dir(self) -> Path:
        return self._state.data_dir

    @property
    def log_path(self) -> Path:
        return self._state.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        proc = self._state.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    @property
    def is_paused(self) -> bool:
        return self._state.paused and self.is_running

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of the server log plus anything it wrote to stdout/stderr."""
        chunks: list[str] = []
        for path in (self.log_path, self._console_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                chunks.append("\n".join(text.splitlines()[-lines:]))
        return "\n".join(chunks) or "<no output>"

    @property
    def _console_path(self) -> Path:
        return self._state.data_dir / "console.log"

    # ------------------------------------------------------------- lifecycle

    def _command(self) -> list[str]:
        cmd = [
            self._executable,
            "--port",
            str(self._port),
            "--bind",
            self.host,
            "--daemonize",
            "no",
            "--dir",
            str(self.data_dir),
            "--logfile",
            str(self.log_path),
            "--loglevel",
            "notice",
        ]
        if self.appendonly:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no", "--save", ""]
        if self.password:
            cmd += ["--requirepass", self.password]
        return cmd

    def start(self) -> None:
        """Start the server and wait (≤5 s) until PING answers. No-op if running."""
        if self._closed:
            raise RedisServerError("RedisServer is closed")
        if self.is_running:
            return
        attempts = 1 if self._ever_started else _BIND_RETRIES
        for attempt in range(attempts):
            try:
                self._spawn_and_wait()
                break
            except RedisServerError:
                # Before the first successful start the port may have been
                # grabbed by someone else; pick another one. After that the
                # port is part of the contract and must stay fixed.
                if attempt + 1 < attempts and "Address already in use" in self.log_tail():
                    self._port = free_port()
                    continue
                raise
        self._ever_started = True

    def _spawn_and_wait(self) -> None:
        with open(self._console_path, "ab") as console:
            proc = subprocess.Popen(
                self._command(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
            )
        self._state.proc = proc
        self._state.paused = False
        deadline = time.monotonic() + START_TIMEOUT
        probe = self._probe_client()
        try:
            while True:
                if proc.poll() is not None:
                    raise RedisServerError(
                        f"redis-server exited with code {proc.returncode} on port "
                        f"{self._port}; log tail:\n{self.log_tail()}"
                    )
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass  # not listening yet, or still loading the AOF
                if time.monotonic() > deadline:
                    self.kill()
                    raise RedisServerError(
                        f"redis-server on port {self._port} did not answer PING within "
                        f"{START_TIMEOUT}s; log tail:\n{self.log_tail()}"
                    )
                time.sleep(0.02)
        finally:
            probe.close()

    def stop(self) -> None:
        """Graceful stop: ``SHUTDOWN NOSAVE``, falling back to SIGTERM, then SIGKILL."""
        proc = self._state.proc
        if proc is None or proc.poll() is not None:
            return
        if self._state.paused:
            self.resume()
        probe = self._probe_client(timeout=1.0)
        try:
            probe.shutdown(nosave=True)
        except redis.RedisError:
            pass  # connection dropped by the shutdown itself, or not reachable
        finally:
            probe.close()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the server (works while paused too) and reap it."""
        proc = self._state.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._state.paused = False

    def pause(self) -> None:
        """SIGSTOP the server: connections are accepted by the kernel, nothing answers."""
        pid = self._require_pid()
        os.kill(pid, signal.SIGSTOP)
        self._state.paused = True
        self._wait_proc_state(pid, stopped=True)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        pid = self._require_pid()
        os.kill(pid, signal.SIGCONT)
        self._state.paused = False
        self._wait_proc_state(pid, stopped=False)

    def restart(self) -> None:
        """Start again on the same port and data dir (stopping first if running)."""
        if self.is_running:
            self.stop()
        self.start()

    def close(self) -> None:
        """Kill the server, close handed-out clients and delete the temp dir."""
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            with contextlib.suppress(Exception):  # best-effort cleanup
                client.close()
        self._clients.clear()
        self._finalizer()  # runs _release exactly once

    def __repr__(self) -> str:
        state = "paused" if self.is_paused else "running" if self.is_running else "stopped"
        return f"<RedisServer port={self._port} {state} dir={self.data_dir}>"

    # --------------------------------------------------------------- clients

    def client(self, **kwargs: Any) -> redis.Redis:
        """A sync client for assertions; no retries by default so failures are immediate.

        Keyword arguments override the defaults (e.g. ``socket_timeout=0.2``).
        """
        options: dict[str, Any] = {
            "host": self.host,
            "port": self._port,
            "password": self.password,
            "db": 0,
            "socket_timeout": 5.0,
            "socket_connect_timeout": 5.0,
            "retry": Retry(NoBackoff(), 0),
        }
        options.update(kwargs)
        client = redis.Redis(**options)
        self._clients.append(client)
        return client

    def _probe_client(self, timeout: float = 0.5) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self._port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    # --------------------------------------------------------------- helpers

    def _require_pid(self) -> int:
        pid = self.pid
        if pid is None:
            raise RedisServerError("redis-server is not running")
        return pid

    @staticmethod
    def _wait_proc_state(pid: int, *, stopped: bool, timeout: float = 1.0) -> None:
        """Wait until /proc reports the process as (not) stopped; best effort."""
        stat = Path(f"/proc/{pid}/stat")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # Field 3 is the state; split after the ")" closing the comm name.
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return
            if (state in ("T", "t")) == stopped:
                return
            time.sleep(0.005)
