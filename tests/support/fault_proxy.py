"""A fault-injecting TCP proxy (our stand-in for ``tc netem``).

``FaultProxy`` listens on a free 127.0.0.1 port and forwards to a target. It
runs its own event loop in a background thread, so it keeps working while the
test's loop is blocked; the public methods are sync and thread-safe.

Modes (switchable at runtime with :meth:`FaultProxy.set_mode`):

* ``"pass"``      forward bytes unchanged.
* ``"latency"``   delay every chunk, in both directions, by ``latency`` seconds
  (measured from when the proxy read it; order preserved).
* ``"blackhole"`` keep accepting and reading, never forward or answer: bytes
  are swallowed on new and existing connections. Connections accepted while
  in blackhole mode have no upstream and stay black-holed until closed.
* ``"reset"``     abort every existing connection with a TCP RST
  (``SO_LINGER`` 1/0) and RST new ones right after accepting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal, Self, get_args
from urllib.parse import quote

ProxyMode = Literal["pass", "latency", "blackhole", "reset"]
_MODES: frozenset[str] = frozenset(get_args(ProxyMode))

HOST = "127.0.0.1"
CHUNK_SIZE = 65536
CONNECT_TIMEOUT = 5.0
CONTROL_TIMEOUT = 5.0
_QUEUE_DEPTH = 1024  # chunks buffered per direction before backpressure applies


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close abruptly so the peer gets RST instead of FIN."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Conn:
    """One proxied client connection (and its upstream, once connected)."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.closed = False

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]

    def reset(self) -> None:
        self.closed = True
        for writer in self.writers():
            _rst(writer)

    def abort(self) -> None:
        self.closed = True
        for writer in self.writers():
            writer.transport.abort()

    def close(self) -> None:
        self.closed = True
        for writer in self.writers():
            writer.close()


class FaultProxy:
    """TCP proxy to ``target_host:target_port`` with injectable faults (see module doc)."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        mode: ProxyMode = "pass",
        latency: float = 0.0,
    ) -> None:
        self._check_mode(mode, latency)
        self.target_host = target_host
        self.target_port = target_port
        self.host = HOST
        self._mode: ProxyMode = mode
        self._latency = latency
        # Bind now so the port is known before start(); listen() happens in start().
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, 0))
        self._port: int = self._sock.getsockname()[1]
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopped = False

    # ------------------------------------------------------------------ info

    @property
    def port(self) -> int:
        return self._port

    @property
    def mode(self) -> ProxyMode:
        return self._mode

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def active_connections(self) -> int:
        return len(self._conns)

    def url(self, password: str | None = None, db: int = 0) -> str:
        """Redis URL pointing at the proxy."""
        auth = f":{quote(password, safe='')}@" if password else ""
        return f"redis://{auth}{self.host}:{self._port}/{db}"

    def __repr__(self) -> str:
        return (
            f"<FaultProxy 127.0.0.1:{self._port} -> {self.target_host}:{self.target_port} "
            f"mode={self._mode}>"
        )

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the background loop thread and begin accepting. Idempotent."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("FaultProxy was stopped; create a new one")
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._thread_main,
                args=(loop,),
                name=f"FaultProxy:{self._port}",
                daemon=True,
            )
            self._loop, self._thread = loop, thread
            thread.start()
            asyncio.run_coroutine_threadsafe(self._start_server(), loop).result(CONTROL_TIMEOUT)

    def stop(self) -> None:
        """Stop accepting, close every connection and join the thread. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                self._sock.close()
                return
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(CONTROL_TIMEOUT)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(CONTROL_TIMEOUT)
                self._sock.close()

    def set_mode(self, mode: ProxyMode, latency: float = 0.0) -> None:
        """Switch fault mode; returns once the switch (incl. any resets) is applied."""
        self._check_mode(mode, latency)
        with self._lock:
            loop = self._loop
            if loop is None or self._stopped or threading.current_thread() is self._thread:
                self._apply_mode(mode, latency)
                return
            future = asyncio.run_coroutine_threadsafe(self._apply_mode_async(mode, latency), loop)
            future.result(CONTROL_TIMEOUT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------ loop-thread side

    @staticmethod
    def _check_mode(mode: str, latency: float) -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(_MODES)}")
        if latency < 0:
            raise ValueError("latency must be >= 0")

    @staticmethod
    def _thread_main(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _start_server(self) -> None:
        self._server = await asyncio.start_server(self._handle, sock=self._sock)

    def _apply_mode(self, mode: ProxyMode, latency: float) -> None:
        self._mode, self._latency = mode, latency
        if mode == "reset":
            for conn in list(self._conns):
                conn.reset()

    async def _apply_mode_async(self, mode: ProxyMode, latency: float) -> None:
        self._apply_mode(mode, latency)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
        handlers = list(self._handlers)
        if handlers:
            _, still_running = await asyncio.wait(handlers, timeout=1.0)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn = _Conn(writer)
        self._conns.add(conn)
        try:
            if self._mode == "reset":
                conn.reset()
                return
            if self._mode == "blackhole":
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.target_host, self.target_port),
                    CONNECT_TIMEOUT,
                )
            except (TimeoutError, OSError):
                conn.reset()  # upstream unreachable: the client sees a reset
                return
            conn.upstream = up_writer
            if conn.closed:  # reset/stop happened while we were connecting
                conn.reset()
                return
            await asyncio.gather(
                self._pipe(reader, up_writer, conn, to_client=False),
                self._pipe(up_reader, writer, conn, to_client=True),
            )
        finally:
            if not conn.closed:
                conn.close()
            self._conns.discard(conn)
            self._handlers.discard(task)

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(CHUNK_SIZE):
                pass

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        conn: _Conn,
        *,
        to_client: bool,
    ) -> None:
        """Forward one direction: reader queues (due_time, chunk), sender delivers in order.

        In blackhole mode an upstream EOF is swallowed too (the client must see
        nothing), while a client EOF is still passed on so upstream is released.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(_QUEUE_DEPTH)
        sender = asyncio.create_task(self._send(queue, dst, conn))
        try:
            while True:
                try:
                    data = await src.read(CHUNK_SIZE)
                except OSError:
                    conn.reset()  # propagate an abrupt close to the other side
                    return
                if not data:
                    if to_client and self._mode == "blackhole":
                        return
                    await queue.put((loop.time(), None))
                    break
                if self._mode == "blackhole":
                    continue
                delay = self._latency if self._mode == "latency" else 0.0
                await queue.put((loop.time() + delay, data))
            await sender
        finally:
            sender.cancel()

    async def _send(
        self,
        queue: asyncio.Queue[tuple[float, bytes | None]],
        dst: asyncio.StreamWriter,
        conn: _Conn,
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if data is None:  # EOF from the source: half-close towards dst
                    if dst.can_write_eof() and not dst.is_closing():
                        dst.write_eof()
                    return
                if self._mode == "blackhole" or conn.closed:
                    continue  # swallowed
                dst.write(data)
                await dst.drain()
            except OSError:
                conn.reset()
                return
