"""A real Prometheus (Debian's package, started by exocorp.testing.prometheus) scrapes a metrics
endpoint and answers PromQL; it loads the platform's alerts and runs every dashboard query.

The endpoint here is a prometheus_client registry exposing the operator's metric names; pointing
the same harness at the real operator and gateway is a matter of their addresses."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge

from exocorp.testing.prometheus import (
    PrometheusUnavailableError,
    ScrapeTarget,
    find_binary,
    running_prometheus,
    write_config,
)
from tests.plugins.monitoring import CHART, REPO, MetricsEndpoint, PrometheusFactory

pytestmark = pytest.mark.integration

ALERTS = REPO / "manifests" / "monitoring" / "alerts.yaml"
PHASES = ("Draft", "Provisioning", "Starting", "Running", "Paused", "Stopped", "Failed",
          "Destroying")


def by_phase(result: list[dict[str, Any]]) -> dict[str, float]:
    return {s["metric"]["phase"]: float(s["value"][1]) for s in result}


def exocorps_gauge(endpoint: MetricsEndpoint, counts: dict[str, int]) -> Gauge:
    gauge = Gauge("exocorp_exocorps", "Exocorps per display phase.", ["phase"],
                  registry=endpoint.registry)
    for phase in PHASES:
        gauge.labels(phase=phase).set(counts.get(phase, 0))
    return gauge


def test_prometheus_scrapes_exocorps_by_phase_and_follows_changes(
    metrics_endpoint: MetricsEndpoint, prometheus: PrometheusFactory,
) -> None:
    gauge = exocorps_gauge(metrics_endpoint, {"Running": 3, "Failed": 1, "Paused": 2})
    prom = prometheus([ScrapeTarget("exocorp-operator", metrics_endpoint.address)])

    result = prom.wait_until('exocorp_exocorps{job="exocorp-operator"}',
                             lambda r: len(r) == len(PHASES))
    assert by_phase(result) == {p: {"Running": 3.0, "Failed": 1.0, "Paused": 2.0}.get(p, 0.0)
                                for p in PHASES}
    assert {s["metric"]["instance"] for s in result} == {metrics_endpoint.address}

    gauge.labels(phase="Failed").set(0)
    gauge.labels(phase="Running").set(4)
    result = prom.wait_until('sum by (phase) (exocorp_exocorps{phase=~"Running|Failed"})',
                             lambda r: by_phase(r) == {"Running": 4.0, "Failed": 0.0})
    total = prom.query('sum(exocorp_exocorps{job="exocorp-operator"})')
    assert float(total[0]["value"][1]) == 6.0
    (target,) = prom.targets()
    assert target["labels"]["job"] == "exocorp-operator"
    assert target["health"] == "up"


def test_alerts_load_and_evaluate_on_live_data(
    metrics_endpoint: MetricsEndpoint, prometheus: PrometheusFactory,
) -> None:
    exocorps_gauge(metrics_endpoint, {"Running": 2, "Failed": 1})
    Counter("exocorp_operator_reconciles", "Reconciles.", ["result"],
            registry=metrics_endpoint.registry).labels(result="success").inc(5)
    prom = prometheus([ScrapeTarget("exocorp-operator", metrics_endpoint.address)],
                      rule_files=[ALERTS])

    groups = prom.rules()
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    source = yaml.safe_load(ALERTS.read_text())
    assert set(rules) == {r["alert"] for g in source["groups"] for r in g["rules"]}

    # A Failed exocorp makes ExocorpsFailed pending (it fires after `for: 10m`); with no gateway
    # target at all, ExocorpGatewayDown is pending too; the operator target is up, so
    # ExocorpOperatorDown is not.
    pending = prom.wait_until(
        'ALERTS{alertstate="pending"}',
        lambda r: {"ExocorpsFailed", "ExocorpGatewayDown"} <= {s["metric"]["alertname"]
                                                               for s in r})
    names = {s["metric"]["alertname"] for s in pending}
    assert "ExocorpOperatorDown" not in names
    failed = next(s for s in pending if s["metric"]["alertname"] == "ExocorpsFailed")
    assert failed["metric"]["severity"] == "warning"
    assert failed["metric"]["job"] == "exocorp-operator"
    rules = {r["name"]: r for g in prom.rules() for r in g["rules"]}
    for name, rule in rules.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"


def test_every_dashboard_query_is_valid_promql(
    metrics_endpoint: MetricsEndpoint, prometheus: PrometheusFactory,
) -> None:
    exocorps_gauge(metrics_endpoint, {"Running": 1})
    prom = prometheus([ScrapeTarget("exocorp-operator", metrics_endpoint.address)])
    prom.wait_until('up{job="exocorp-operator"} == 1')
    dashboard = json.loads((CHART / "files" / "dashboards" / "exocorp.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        prom.query(expr.replace("$__rate_interval", "1m"))  # raises on a PromQL error
    phases = prom.query(exprs[0])
    assert float(phases[0]["value"][1]) == 1.0


def test_the_harness_stops_its_prometheus_and_cleans_up(
    metrics_endpoint: MetricsEndpoint, tmp_path: Path,
) -> None:
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        with running_prometheus([ScrapeTarget("exocorp-gateway", metrics_endpoint.address)]) as p:
            workdir, process = p.workdir, p.process
            assert process.alive()
            assert (workdir / "prometheus.yml").is_file()
        assert not process.alive()
        assert not workdir.exists()
        assert bystander.poll() is None, "an unrelated process was stopped"
    finally:
        bystander.kill()
        bystander.wait()


def test_config_groups_replicas_under_one_job(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    write_config(config, [ScrapeTarget("exocorp-gateway", "127.0.0.1:1"),
                          ScrapeTarget("exocorp-gateway", "127.0.0.1:2"),
                          ScrapeTarget("exocorp-operator", "127.0.0.1:3")],
                 rule_files=[ALERTS])
    loaded = yaml.safe_load(config.read_text())
    jobs = {j["job_name"]: [t for s in j["static_configs"] for t in s["targets"]]
            for j in loaded["scrape_configs"]}
    assert jobs == {"exocorp-gateway": ["127.0.0.1:1", "127.0.0.1:2"],
                    "exocorp-operator": ["127.0.0.1:3"]}
    assert loaded["rule_files"] == [str(ALERTS)]
    check = subprocess.run([str(find_binary("promtool")), "check", "config", str(config)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_missing_prometheus_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOCORP_PROMETHEUS", "/nonexistent/prometheus")
    with pytest.raises(PrometheusUnavailableError, match="/nonexistent/prometheus"):
        find_binary("prometheus")
    monkeypatch.delenv("EXOCORP_PROMETHEUS")
    monkeypatch.setenv("PATH", os.devnull)
    with pytest.raises(PrometheusUnavailableError, match="apt-get install -y prometheus"):
        find_binary("prometheus")
