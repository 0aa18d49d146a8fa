"""Free TCP port allocation on loopback."""

from __future__ import annotations

import socket

# Never hand out the port of the machine's own Redis.
_RESERVED_PORTS = frozenset({6379})


def free_port() -> int:
    """Return a currently unused TCP port on 127.0.0.1 (bind to port 0)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _RESERVED_PORTS:
            return port
