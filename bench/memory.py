"""Resident memory of a process (Linux /proc; None elsewhere or when it has exited)."""

from __future__ import annotations

from pathlib import Path

KIB = 1024


def rss_bytes(pid: int) -> int | None:
    """VmRSS of `pid` in bytes."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB  # "VmRSS:   123456 kB"
    return None
