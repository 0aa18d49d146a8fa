"""How much CPU did *other* processes use during a measurement? (Linux /proc; else None.)

Sums utime+stime over every process except the bench's own (itself, the processes it started,
its redis-server) and the PostgreSQL backends serving the bench's database (their process
title names it). Reported per run as a share of the machine: a figure well above zero means
something else competed for the CPUs and the run's absolute numbers (and ratios between runs
measured at different times) are less trustworthy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ticks(pid_dir: Path) -> int | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) `pid` used so far; None when unknown."""
    ticks = _cpu_ticks(PROC / str(pid))
    return None if ticks is None else ticks / TICKS


def _title(pid_dir: Path) -> str:
    try:
        return (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuProbe:
    def __init__(self, own_pids: Callable[[], set[int]], database: str | None = None) -> None:
        self.own_pids = own_pids
        self.database = database
        self.available = PROC.is_dir() and (PROC / "self" / "stat").exists()

    def sample(self) -> dict[int, int]:
        """pid -> CPU ticks of every process that is not ours."""
        if not self.available:
            return {}
        own = self.own_pids() | {os.getpid()}
        ticks: dict[int, int] = {}
        for pid_dir in PROC.iterdir():
            if not pid_dir.name.isdigit() or int(pid_dir.name) in own:
                continue
            if self.database and self.database in _title(pid_dir):
                continue  # a PostgreSQL backend serving the bench's database
            value = _cpu_ticks(pid_dir)
            if value is not None:
                ticks[int(pid_dir.name)] = value
        return ticks

    def other_share(self, before: dict[int, int], after: dict[int, int], seconds: float) -> float:
        """CPU used by other processes between two samples, as a share of all CPUs (0..1)."""
        if not self.available or seconds <= 0:
            return 0.0
        used = sum(ticks - before.get(pid, 0) for pid, ticks in after.items())
        return max(0.0, used / TICKS / (seconds * (os.cpu_count() or 1)))
