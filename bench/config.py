"""Sizes, durations and targets of one bench run (a few are overridable on the command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"

#: entity -> collection path
PATHS = {"hero": "/api/v1/heroes", "child": "/api/v1/children", "story": "/api/v1/stories"}
#: entity -> field a PATCH changes (mixed workload and invalidation check)
PATCH_FIELD = {"hero": "name", "child": "name", "story": "title"}
LIST_QUERY = "language=en&limit=20"


@dataclass
class BenchConfig:
    heroes: int = 500
    children: int = 300
    stories: int = 1000
    seed: int = 20240601

    # wrk (or the Python fallback): closed loop, fixed duration
    threads: int = 1
    connections: int = 16
    duration: int = 5  # seconds per run
    python_loadgen: bool = False  # force the Python load generator instead of wrk
    only: list[str] = field(default_factory=list)  # scenarios to run (empty: all)

    # mixed workload (Python asyncio + httpx, separate process)
    mixed_duration: float = 10.0
    mixed_warmup: float = 2.0
    mixed_concurrency: int = 16
    zipf_s: float = 1.1
    write_share: dict[str, float] = field(
        default_factory=lambda: {"hero": 0.02, "child": 0.05, "story": 0.10}
    )
    hit_rate_target: dict[str, float] = field(
        default_factory=lambda: {"hero": 0.80, "child": 0.70, "story": 0.60}
    )

    stampede_requests: int = 200
    stampede_bursts: int = 3  # each on another cold id
    invalidation_rounds: int = 5
