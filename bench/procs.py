"""Child processes of the bench: uvicorn servers, one-shot commands, load generators.

Every process is started in its own session (a Ctrl-C in the terminal reaches only the bench,
which then stops them in order) and tracked until it has exited; `close()` terminates what is
left, by pid: SIGTERM, then SIGKILL after a grace period. The tracking is thread-safe (`make
profile` runs wrk in a thread while py-spy records).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.core.settings import settings_class
from app.entities import ENTITIES
from bench.config import ROOT
from tests.support import free_port

STOP_TIMEOUT = 5.0
READY_TIMEOUT = 30.0

# Settings fields are read from the environment: never inherit the caller's values.
_SETTING_VARS = {name.upper() for name in settings_class(ENTITIES).model_fields}


def app_env(**settings: object) -> dict[str, str]:
    """Environment for an app process: the caller's, minus any app setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTING_VARS}
    env.update({key.upper(): str(value) for key, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._live: list[tuple[str, subprocess.Popen]] = []  # type: ignore[type-arg]
        self._lock = threading.Lock()

    # -- generic ------------------------------------------------------------------------
    def _track(self, name: str, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        with self._lock:
            self._live.append((name, proc))

    def _untrack(self, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        with self._lock:
            self._live = [(n, p) for n, p in self._live if p is not proc]

    def run(
        self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, timeout: float
    ) -> tuple[int, str, str]:
        """Run a command to completion (killed on timeout/interrupt); (code, stdout, stderr)."""
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._track(name, proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            self.stop(proc)
            raise
        finally:
            self._untrack(proc)
        (self.log_dir / f"{name}.log").write_text(f"$ {' '.join(cmd)}\n{out}\n{err}")
        return proc.returncode, out, err

    def stop(self, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._untrack(proc)

    def pids(self) -> set[int]:
        with self._lock:
            live = list(self._live)
        return {proc.pid for _name, proc in live if proc.poll() is None}

    def close(self) -> None:
        with self._lock:
            live = list(self._live)
        for _name, proc in reversed(live):
            self.stop(proc)

    def spawn(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None, port: int = 0
    ) -> Server:
        """Start a long-running process in the background, output to `<log_dir>/<name>.log`;
        `port` is where it will listen (0: nowhere)."""
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._track(name, proc)
        return Server(name, port, proc, log_path, cmd)

    # -- the product ----------------------------------------------------------------------
    def serve_app(
        self,
        name: str,
        database_url: str,
        redis_url: str,
        *,
        announce: bool = False,
        **settings: object,
    ) -> Server:
        """The product started as `make run` starts it (`python -m app serve`, one worker,
        no access log), plus `settings`; ready when it returns. `announce`: print the command."""
        port = free_port()
        env = app_env(
            host="127.0.0.1",
            port=port,
            web_concurrency=1,
            access_log="false",
            log_level="WARNING",
            database_url=database_url,
            redis_url=redis_url,
            **settings,
        )
        cmd = [sys.executable, "-m", "app", "serve"]
        if announce:
            print(
                f"  $ {' '.join(cmd)}   # HOST=127.0.0.1 PORT={port} WEB_CONCURRENCY=1", flush=True
            )
        server = self.spawn(name, cmd, env, port)
        self.wait_ready(server)
        return server

    # -- uvicorn --------------------------------------------------------------------------
    def start_uvicorn(self, name: str, app: str, env: dict[str, str]) -> Server:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        return self.spawn(name, cmd, env, port)

    def wait_ready(self, server: Server, path: str = "/health") -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=1.0) as client:
            while True:
                if server.proc.poll() is not None:
                    raise RuntimeError(
                        f"{server.name} exited with code {server.proc.returncode} before it was "
                        f"ready; log tail:\n{tail(server.log_path)}"
                    )
                try:
                    if client.get(server.url + path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{server.name} not ready after {READY_TIMEOUT}s; log tail:\n"
                        f"{tail(server.log_path)}"
                    )
                time.sleep(0.1)
