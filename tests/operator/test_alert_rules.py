"""The Prometheus alert rules shipped in deploy/prometheus: valid (`promtool check rules`),
firing on the series the service exports (`promtool test rules`), and naming only metrics
the service does export. promtool comes with Debian's prometheus package, installed by
scripts/ensure-test-services.sh (`make test`); without it these tests fail, not skip."""

import re
import shutil
import subprocess

from tests.conftest import ROOT
from tests.operator.conftest import OperatorApi

RULES = ROOT / "deploy" / "prometheus"
METRIC = re.compile(r"\b(tales_[a-z_]+?)(?:_bucket|_total|_count|_sum)?\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/ensure-test-services.sh"
    return subprocess.run(
        [binary, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


async def test_the_rules_name_only_exported_metrics(operator_api: OperatorApi) -> None:
    async with operator_api() as api:
        await api.http.get("/api/v1/heroes")  # a request: its histogram has samples
        exported = (await api.http.get("/metrics")).text
    names = set(METRIC.findall((RULES / "alerts.yml").read_text()))
    assert names, "no tales_ metric in the rules"
    for name in names:
        assert re.search(rf"^{name}(_total|_bucket)?[{{ ]", exported, re.M), name
