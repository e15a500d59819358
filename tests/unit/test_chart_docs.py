"""Everything generated from the chart stays in sync with it: the chart README (from the
annotated values), values.schema.json, the kustomize base and monitoring manifests, the CRD
copies; and the deployment and monitoring docs cover what the chart and alerts use."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exocorp.testing import binaries
from tests.plugins.monitoring import CHART, CI_VALUES, REPO, Obj, helm_template

pytestmark = pytest.mark.unit

# The metric names of the contract and of exocorp/operator/metrics.py (docs/monitoring.md
# documents each).
METRICS = {
    "exocorp_operator_reconciles_total": "counter",
    "exocorp_operator_reconcile_duration_seconds": "histogram",
    "exocorp_exocorps": "gauge",
    "exocorp_operator_rollouts_in_progress": "gauge",
    "exocorp_operator_rollouts_queued": "gauge",
    "exocorp_operator_spec_to_observed_seconds": "histogram",
    "exocorp_operator_rollbacks_total": "counter",
    "exocorp_operator_revisions_failed_total": "counter",
    "exocorp_operator_last_watch_event_timestamp_seconds": "gauge",
    "exocorp_operator_cache_swept_total": "counter",
    "exocorp_gateway_http_requests_total": "counter",
    "exocorp_gateway_http_request_duration_seconds": "histogram",
    "exocorp_gateway_watch_cache_last_event_timestamp_seconds": "gauge",
    "exocorp_gateway_event_streams_open": "gauge",
    "exocorp_metering_last_run_timestamp_seconds": "gauge",
    "exocorp_metering_usage_events_total": "counter",
    "exocorp_build_info": "gauge",
}
# Both processes: prometheus_client's process collector (documented as a family).
PROCESS_METRICS = {"process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_start_time_seconds", "process_open_fds"}
METRIC_TOKEN = re.compile(r"\bexocorp_[a-z_]+\b")


def run_script(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HELM=str(binaries.ensure(build_missing=False).helm))
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True,
                          check=False, env=env)


def kustomize(directory: Path) -> list[Obj]:
    kubectl = binaries.ensure(build_missing=False).kubectl
    out = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True,
                         text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def key(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


# --- chart README ------------------------------------------------------------------------------

def test_chart_readme_is_generated_from_the_current_values() -> None:
    result = run_script("hack/chart-readme.py", "--check")
    assert result.returncode == 0, result.stderr


def test_readme_lists_every_value_with_its_default() -> None:
    readme = (CHART / "README.md").read_text()
    assert "| `gateway.replicaCount` | int | `1` |" in readme
    assert "| `database.type` | string | `\"sqlite\"` |" in readme
    assert "| `crds.enabled` | bool | `true` |" in readme
    for path in CI_VALUES:
        assert f"ci/{path.name}" in readme


def test_an_undocumented_value_is_reported(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text((CHART / "values.yaml").read_text()
                      + "\nsneaky:\n  setting: 1\n")
    result = run_script("hack/chart-readme.py", "--check", "--values", str(values),
                        "--readme", str(tmp_path / "README.md"))
    assert result.returncode == 1
    assert "undocumented value: sneaky.setting" in result.stderr


# --- values.schema.json ------------------------------------------------------------------------

def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        node = schema["definitions"][name]
    return node


# Kubernetes types the schema checks field by field (a misspelt probe field is an error), but
# whose values carry only some of those fields: each is one value.
KUBERNETES_TYPES = {"#/definitions/probe", "#/definitions/strategy"}


def _schema_paths(schema: dict[str, Any], node: dict[str, Any], prefix: tuple[str, ...]) -> set[
    tuple[str, ...]
]:
    if node.get("$ref") in KUBERNETES_TYPES:
        return {prefix}
    node = _resolve(schema, node)
    if node.get("additionalProperties") is not False:
        return {prefix}  # a free-form object (labels, resources, affinity): a leaf here
    paths: set[tuple[str, ...]] = set()
    for name, child in node.get("properties", {}).items():
        paths |= _schema_paths(schema, child, (*prefix, name))
    return paths


def _value_paths(values: Any, prefix: tuple[str, ...], leaves: set[tuple[str, ...]]) -> set[
    tuple[str, ...]
]:
    if prefix in leaves or not isinstance(values, dict) or not values:
        return {prefix}
    return {p for k, v in values.items() for p in _value_paths(v, (*prefix, k), leaves)}


def test_schema_declares_exactly_the_values_and_rejects_the_rest() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    declared = _schema_paths(schema, schema, ()) - {("global",)}
    present = _value_paths(values, (), declared)
    assert present - declared == set(), "values.yaml keys missing from the schema"
    assert declared - present == set(), "schema properties missing from values.yaml"
    assert schema["additionalProperties"] is False


# --- generated manifests -----------------------------------------------------------------------

def test_generated_manifests_and_crd_copies_are_current() -> None:
    result = run_script("hack/render-manifests.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_crd_copies_equal_the_generated_crds() -> None:
    generated = {p.name: p.read_bytes() for p in (REPO / "manifests" / "crds").glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert generated, "manifests/crds is empty"
    assert copies == generated


def test_kustomize_base_equals_the_chart_defaults_plus_a_restricted_namespace() -> None:
    base = kustomize(REPO / "manifests" / "base")
    # `helm test` hooks are not part of an installation.
    rendered = [o for o in helm_template()
                if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") != "test"]
    namespaces = [o for o in base if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["exocorp-system"]
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    by_key = {key(o): o for o in base if o["kind"] != "Namespace"}
    assert len(by_key) == len(base) - 1, "duplicate objects in the base"
    assert sorted(by_key) == sorted(key(o) for o in rendered)
    for obj in rendered:
        assert by_key[key(obj)] == obj, f"{key(obj)} differs from `helm template`"


def test_monitoring_manifests_equal_the_chart_monitoring_objects() -> None:
    monitoring = kustomize(REPO / "manifests" / "monitoring")
    rendered = helm_template(sets=["monitoring.podMonitor.enabled=true",
                                   "monitoring.prometheusRule.enabled=true",
                                   "monitoring.grafanaDashboard.enabled=true"],
                             extra=["--show-only", "templates/monitoring.yaml"])
    assert sorted(map(key, monitoring)) == sorted(map(key, rendered))
    assert {key(o): o for o in monitoring} == {key(o): o for o in rendered}


def test_rbac_manifests_are_the_base_rbac() -> None:
    rbac = kustomize(REPO / "manifests" / "rbac")
    kinds = {o["kind"] for o in rbac}
    # RBAC plus the admission policy that confines the operator's writes (issue 13, item 5).
    assert kinds == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    base = {key(o) for o in kustomize(REPO / "manifests" / "base")}
    assert {key(o) for o in rbac} <= base


# --- docs ------------------------------------------------------------------------------------

def test_monitoring_doc_documents_every_metric_and_alert() -> None:
    doc = (REPO / "docs" / "monitoring.md").read_text()
    for name, kind in METRICS.items():
        row = next((line for line in doc.splitlines() if f"`{name}`" in line), None)
        assert row is not None, f"{name} is not documented"
        assert kind in row, f"{name}: type {kind} not stated"
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    for group in alerts["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] in doc


def test_the_operator_exports_exactly_the_documented_operator_metrics() -> None:
    from prometheus_client import generate_latest

    from exocorp.operator import metrics

    types = re.findall(r"^# TYPE (\S+) (\S+)$", generate_latest(metrics.REGISTRY).decode(),
                       flags=re.MULTILINE)
    # prometheus_client's `<name>_created` companions are client metadata, not metrics of ours.
    exported = {name: kind for name, kind in types if not name.endswith("_created")}
    documented = {name: kind for name, kind in METRICS.items()
                  if name.startswith(("exocorp_operator_", "exocorp_exocorps", "exocorp_build"))}
    assert {n: k for n, k in exported.items() if not n.startswith("process_")} == documented
    assert exported.keys() >= PROCESS_METRICS
    assert _build_info(generate_latest(metrics.REGISTRY).decode()) == "operator"


def _build_info(exposition: str) -> str:
    """The component label of the one exocorp_build_info sample, checking its version."""
    from exocorp import __version__

    (labels,) = re.findall(r"^exocorp_build_info\{(.*)\} 1\.0$", exposition, flags=re.M)
    assert f'version="{__version__}"' in labels
    (component,) = re.findall(r'component="(\w+)"', labels)
    return component


def test_the_gateway_exports_the_documented_gateway_metrics() -> None:
    from exocorp.api_gateway.metrics import GatewayMetrics

    types = re.findall(r"^# TYPE (\S+) (\S+)$", GatewayMetrics().exposition().decode(),
                       flags=re.MULTILINE)
    exported = {name: kind for name, kind in types if not name.endswith("_created")}
    documented = {name: kind for name, kind in METRICS.items()
                  if name.startswith("exocorp_gateway_")}
    assert {n: k for n, k in exported.items() if n.startswith("exocorp_gateway_")} == documented
    # The gateway process also serves its metering loop's metrics (the billing registry).
    metering = {name: kind for name, kind in METRICS.items()
                if name.startswith("exocorp_metering_")}
    assert metering
    assert metering.items() <= exported.items()
    assert exported.keys() >= PROCESS_METRICS
    assert _build_info(GatewayMetrics().exposition().decode()) == "gateway"


def test_alerts_and_dashboard_use_only_documented_metrics() -> None:
    def base_name(token: str) -> str:
        for suffix in ("_bucket", "_count", "_sum"):
            if token.removesuffix(suffix) in METRICS:
                return token.removesuffix(suffix)
        return token

    alerts = (CHART / "files" / "alerts.yaml").read_text()
    dashboard = json.loads((CHART / "files" / "dashboards" / "exocorp.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {base_name(t) for text in [alerts, *exprs] for t in METRIC_TOKEN.findall(text)}
    assert used - set(METRICS) == set(), "unknown metric names (typos?)"
    assert set(METRICS) - used == set(), "metrics neither alerted on nor on the dashboard"


def test_deployment_doc_covers_builds_kind_and_every_combination() -> None:
    doc = (REPO / "docs" / "deployment.md").read_text()
    for needle in ("docker build", "podman build", "make kind", "hack/kind.sh", "helm install",
                   "kubectl apply -k manifests/base", "/healthz", "/readyz",
                   "crds.enabled", "helm.sh/resource-policy: keep"):
        assert needle in doc, f"docs/deployment.md does not mention {needle!r}"
    for path in CI_VALUES:
        assert f"ci/{path.name}" in doc
    assert "no Docker engine" in doc  # the kind path cannot be exercised by our CI
