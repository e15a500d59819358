"""The platform alerts: valid rules, unit-tested with promtool (every alert fires when it should
and stays quiet when it should not), and each links a runbook that exists and helps."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.plugins.monitoring import CHART, REPO

pytestmark = pytest.mark.unit

MONITORING = REPO / "manifests" / "monitoring"
RULES = MONITORING / "alerts.yaml"
RULE_TESTS = MONITORING / "alerts.test.yaml"
RUNBOOK_PREFIX = "https://github.com/exocorp/exocorp/blob/main/docs/runbooks/"
EXPECTED_ALERTS = {
    "ExocorpOperatorDown", "ExocorpOperatorReconcileErrors", "ExocorpsFailed",
    "ExocorpRolloutsStuck", "ExocorpWatchStale", "ExocorpGatewayDown",
    "ExocorpGatewayHighErrorRate", "ExocorpMeteringStalled",
}


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def run(promtool: Path, *args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True,
                          check=False)


def test_the_rules_file_is_the_chart_source() -> None:
    copy = yaml.safe_load(RULES.read_text())
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert copy == source


def test_every_alert_of_the_issue_exists() -> None:
    assert {a["alert"] for a in alerts()} == EXPECTED_ALERTS


def test_promtool_accepts_the_rules(promtool: Path) -> None:
    result = run(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_alert_unit_tests_pass(promtool: Path) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested quiet"


def test_a_wrong_expectation_makes_promtool_fail(promtool: Path, tmp_path: Path) -> None:
    """The rule tests can fail: expecting ExocorpsFailed to stay quiet while two exocorps are
    Failed is reported."""
    shutil.copy(RULES, tmp_path / RULES.name)
    suite = yaml.safe_load(RULE_TESTS.read_text())
    case = next(c for c in suite["tests"] if c["name"].startswith("two exocorps Failed"))
    for check in case["alert_rule_test"]:
        check["exp_alerts"] = []
    suite["tests"] = [case]
    (tmp_path / "wrong.test.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = run(promtool, "test", "rules", "wrong.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "ExocorpsFailed" in result.stdout + result.stderr


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_alert_has_severity_summary_and_a_runbook_that_helps(alert: str) -> None:
    rule = next(a for a in alerts() if a["alert"] == alert)
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
    assert re.fullmatch(r"\d+m", rule["for"])
    url = rule["annotations"]["runbook_url"]
    assert url == f"{RUNBOOK_PREFIX}{alert}.md"
    runbook = (REPO / "docs" / "runbooks" / f"{alert}.md").read_text()
    assert runbook.startswith(f"# {alert}\n")
    headings = re.findall(r"^## (.+)$", runbook, flags=re.MULTILINE)
    assert headings == ["Meaning", "Impact", "Diagnosis", "Mitigation"]
    diagnosis = runbook.split("## Diagnosis", 1)[1].split("## Mitigation", 1)[0]
    assert "kubectl " in diagnosis
    index = (REPO / "docs" / "runbooks" / "README.md").read_text()
    assert f"({alert}.md)" in index


def test_alerts_select_the_scrape_jobs_the_chart_creates() -> None:
    jobs = set()
    for rule in alerts():
        jobs |= set(re.findall(r'job="([^"]+)"', rule["expr"]))
    assert jobs == {"exocorp-operator", "exocorp-gateway"}
    monitoring = (CHART / "templates" / "monitoring.yaml").read_text()
    assert "replacement: exocorp-{{ $c.name }}" in monitoring
