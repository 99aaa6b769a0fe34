"""Rules and dashboard queries under the real promtool: they parse, and each alert fires and stays quiet."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmop_dev.observability import alerts, dashboard
from llmop_dev.observability.files import RULES_PATH

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL_TESTS = ROOT / "tests" / "promtool"
TEST_FILES = sorted(PROMTOOL_TESTS.glob("*.yaml"))
ALERT_NAMES = [
    rule["alert"] for group in alerts.prometheus_rules()["groups"] for rule in group["rules"] if "alert" in rule
]


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("REQUIRE_K8S") == "1":
            pytest.fail("REQUIRE_K8S=1 but promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_rules_file_passes_promtool_check(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(ROOT / RULES_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts.expressions())} rules found" in result.stdout
    assert "WARNING" not in (result.stdout + result.stderr).upper()


@pytest.mark.parametrize("test_file", TEST_FILES, ids=[p.stem for p in TEST_FILES])
def test_promtool_unit_tests(promtool: str, test_file: Path) -> None:
    result = _run(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_cases() -> dict[str, dict[str, int]]:
    """alertname -> {"fires": n, "quiet": n} over every alert_rule_test in tests/promtool."""
    cases: dict[str, dict[str, int]] = {}
    for path in TEST_FILES:
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                counts = cases.setdefault(case["alertname"], {"fires": 0, "quiet": 0})
                counts["fires" if case.get("exp_alerts") else "quiet"] += 1
    return cases


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_every_alert_has_a_firing_and_a_quiet_case(alert: str) -> None:
    cases = _alert_cases().get(alert, {"fires": 0, "quiet": 0})
    assert cases["fires"] >= 1, f"{alert}: no promtool case where it fires"
    assert cases["quiet"] >= 1, f"{alert}: no promtool case where it stays quiet"


def test_promtool_files_use_the_chart_rules() -> None:
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        assert [(path.parent / f).resolve() for f in doc["rule_files"]] == [(ROOT / RULES_PATH).resolve()], path


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    """Every panel and annotation query, with Grafana's variables filled in, as a recording rule promtool parses."""
    rules = []
    for index, (_, expr) in enumerate(dashboard.expressions(dashboard.GRAFANA_DEFAULTS)):
        assert "$" not in expr, expr
        rules.append({"record": f"llmop:dashboard_query:{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_burn_alerts_follow_the_workbook() -> None:
    """Fast: 1h and 5m at 14.4x; slow: 6h and 30m at 6x."""
    rules = {
        rule["alert"]: rule
        for group in alerts.prometheus_rules()["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fast = rules["LLMDeploymentDecodeLatencyBudgetBurnFast"]["expr"]
    slow = rules["LLMDeploymentDecodeLatencyBudgetBurnSlow"]["expr"]
    assert "burn_rate1h > 14.4" in fast and "burn_rate5m > 14.4" in fast
    assert "burn_rate6h > 6" in slow and "burn_rate30m > 6" in slow
    assert rules["LLMDeploymentReplicasBelowDesired"]["for"] == "15m"
