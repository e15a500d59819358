"""The chart's options for operators of the platform (issue 16): every command-line setting of
both processes (the operator's peering priority follows operator.standby), extra args, volumes,
containers and objects, common annotations, RBAC on or off with aggregated view/edit roles,
probes, strategy and history, ephemeral storage, and the `helm test` hook."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from exocorp.cli import build_parser
from tests.plugins.monitoring import HelmError, Obj, find, helm_template, one

pytestmark = pytest.mark.unit

RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# values key -> (command, flag) of the settings the chart passes explicitly
SETTINGS = {
    "gateway.sessionIdleMinutes": ("gateway", "session_idle_minutes"),
    "gateway.sessionAbsoluteHours": ("gateway", "session_absolute_hours"),
    "gateway.authCacheSeconds": ("gateway", "auth_cache_seconds"),
    "gateway.accessLog": ("gateway", "access_log"),
    "gateway.loginMaxFailures": ("gateway", "login_max_failures"),
    "gateway.minCreditHours": ("gateway", "min_credit_hours"),
    "gateway.suspensionGraceHours": ("gateway", "suspension_grace_hours"),
    "gateway.maxBodyBytes": ("gateway", "max_body_bytes"),
    "gateway.idempotencyStaleSeconds": ("gateway", "idempotency_stale_seconds"),
    "operator.secretRefreshSeconds": ("operator", "secret_refresh_seconds"),
}


def container(objects: list[Obj], component: str) -> dict[str, Any]:
    deployment = one(objects, "Deployment", f"exocorp-{component}")
    first: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def parsed(objects: list[Obj], component: str) -> argparse.Namespace:
    return build_parser().parse_args(container(objects, component)["args"])


def cli_defaults(command: str) -> argparse.Namespace:
    return build_parser().parse_args([command])


def test_each_setting_reaches_its_process_with_the_cli_default_as_the_chart_default() -> None:
    defaults = helm_template()
    for key, (command, dest) in SETTINGS.items():
        assert getattr(parsed(defaults, command), dest) \
            == getattr(cli_defaults(command), dest), key
    changed = helm_template(sets=[
        "gateway.sessionIdleMinutes=30", "gateway.sessionAbsoluteHours=12",
        "gateway.authCacheSeconds=0", "gateway.loginMaxFailures=9",
        "gateway.maxBodyBytes=1048576", "gateway.idempotencyStaleSeconds=90",
        "gateway.minCreditHours=1", "gateway.suspensionGraceHours=0",
        "gateway.accessLog=true", "operator.secretRefreshSeconds=15"])
    gw, op = parsed(changed, "gateway"), parsed(changed, "operator")
    assert (gw.session_idle_minutes, gw.session_absolute_hours, gw.auth_cache_seconds,
            gw.login_max_failures, gw.max_body_bytes, gw.idempotency_stale_seconds) == (
        30, 12, 0, 9, 1048576, 90)
    assert (gw.min_credit_hours, gw.suspension_grace_hours, gw.access_log) == (1, 0, True)
    assert op.secret_refresh_seconds == 15


def test_extra_args_come_last_so_they_override_the_charts() -> None:
    objects = helm_template(sets=["gateway.extraArgs={--log-level=debug}",
                                  "operator.extraArgs={--workers=2}"])
    assert container(objects, "gateway")["args"][-1] == "--log-level=debug"
    assert parsed(objects, "gateway").log_level == "debug"
    assert parsed(objects, "operator").workers == 2


def test_extra_args_must_be_flags() -> None:
    with pytest.raises(HelmError, match="extraArgs"):
        helm_template(sets=["gateway.extraArgs={debug}"])


def test_extra_volumes_mounts_and_sidecars_are_added_to_both_pods(tmp_path: Any) -> None:
    values = tmp_path / "extra.yaml"
    values.write_text("""
operator: &extra
  extraVolumes: [{name: ca, configMap: {name: corp-ca}}]
  extraVolumeMounts: [{name: ca, mountPath: /etc/corp-ca, readOnly: true}]
  extraContainers: [{name: proxy, image: example.org/proxy:1}]
gateway: *extra
""")
    objects = helm_template(values_files=[values])
    for component in ("operator", "gateway"):
        pod = one(objects, "Deployment", f"exocorp-{component}")["spec"]["template"]["spec"]
        assert {"name": "ca", "configMap": {"name": "corp-ca"}} in pod["volumes"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
        main = pod["containers"][0]
        assert main["name"] == component
        assert {"name": "ca", "mountPath": "/etc/corp-ca", "readOnly": True} \
            in main["volumeMounts"]
        assert [c["name"] for c in pod["containers"]] == [component, "proxy"]


def test_extra_objects_are_rendered_with_templates() -> None:
    objects = helm_template(sets=[
        'extraObjects[0]=apiVersion: v1\nkind: ConfigMap\nmetadata:\n'
        '  name: "{{ .Release.Name }}-extra"\ndata: {a: b}'])
    extra = one(objects, "ConfigMap", "exocorp-extra")
    assert extra["data"] == {"a": "b"}


def test_common_annotations_reach_every_object_and_an_objects_own_win() -> None:
    objects = helm_template(sets=["commonAnnotations.team=platform",
                                  "commonAnnotations.helm\\.sh/resource-policy=ignored",
                                  "gateway.service.annotations.svc=yes",
                                  "monitoring.podMonitor.enabled=true",
                                  "monitoring.prometheusRule.enabled=true",
                                  "monitoring.grafanaDashboard.enabled=true",
                                  "gateway.ingress.enabled=true"])
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        assert annotations.get("team") == "platform", f"{obj['kind']}/{obj['metadata']['name']}"
    service = one(objects, "Service", "exocorp-gateway")
    assert service["metadata"]["annotations"]["svc"] == "yes"
    for crd in find(objects, "CustomResourceDefinition"):  # their own keep wins
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    peering = one(objects, "ClusterKopfPeering")
    assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    defaults = helm_template()
    assert "annotations" not in one(defaults, "NetworkPolicy", "exocorp-gateway")["metadata"]


def test_rbac_off_leaves_out_every_role_and_binding_but_keeps_the_service_accounts() -> None:
    objects = helm_template(sets=["rbac.create=false"])
    assert [o for o in objects if o["kind"] in RBAC_KINDS] == []
    assert len(find(objects, "ServiceAccount")) == 2
    assert len(find(objects, "Deployment")) == 2


def test_user_roles_for_exocorps_aggregate_into_view_edit_and_admin() -> None:
    objects = helm_template()
    view = one(objects, "ClusterRole", "exocorp-exocorps-view")
    edit = one(objects, "ClusterRole", "exocorp-exocorps-edit")
    aggregate = "rbac.authorization.k8s.io/aggregate-to-{}"
    assert {k for k, v in view["metadata"]["labels"].items() if v == "true"} == {
        aggregate.format(r) for r in ("view", "edit", "admin")}
    assert {k for k, v in edit["metadata"]["labels"].items() if v == "true"} == {
        aggregate.format(r) for r in ("edit", "admin")}
    assert view["rules"] == [{"apiGroups": ["exocorp.io"],
                              "resources": ["exocorps", "exocorps/status", "exocorpreleases"],
                              "verbs": ["get", "list", "watch"]}]
    # edit changes exocorps (never their status, never releases)
    (rule,) = edit["rules"]
    assert rule["resources"] == ["exocorps"]
    assert {"create", "patch", "delete"} <= set(rule["verbs"])
    plain = helm_template(sets=["rbac.aggregateToDefaultRoles=false"])
    for name in ("exocorp-exocorps-view", "exocorp-exocorps-edit"):
        labels = one(plain, "ClusterRole", name)["metadata"]["labels"]
        assert not any(k.startswith("rbac.authorization.k8s.io/aggregate") for k in labels)


def test_the_operator_has_distinct_liveness_and_readiness_probes() -> None:
    op = container(helm_template(), "operator")
    assert op["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert op["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_probes_strategy_and_history_are_configurable() -> None:
    objects = helm_template(sets=[
        "gateway.readinessProbe.periodSeconds=2", "gateway.startupProbe.failureThreshold=120",
        "operator.livenessProbe.timeoutSeconds=9", "gateway.revisionHistoryLimit=1",
        "operator.revisionHistoryLimit=0"])
    gw, op = container(objects, "gateway"), container(objects, "operator")
    assert gw["readinessProbe"]["periodSeconds"] == 2
    assert gw["startupProbe"]["failureThreshold"] == 120
    assert op["livenessProbe"]["timeoutSeconds"] == 9
    assert one(objects, "Deployment", "exocorp-gateway")["spec"]["revisionHistoryLimit"] == 1
    assert one(objects, "Deployment", "exocorp-operator")["spec"]["revisionHistoryLimit"] == 0
    with pytest.raises(HelmError, match="periodSecond"):
        helm_template(sets=["gateway.readinessProbe.periodSecond=2"])  # misspelt


def test_gateway_strategy_follows_the_database_unless_set() -> None:
    strategy = one(helm_template(), "Deployment", "exocorp-gateway")["spec"]["strategy"]
    assert strategy == {"type": "Recreate"}
    custom = helm_template(sets=["gateway.strategy.type=RollingUpdate",
                                 "gateway.strategy.rollingUpdate.maxSurge=2"])
    assert one(custom, "Deployment", "exocorp-gateway")["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}
    with pytest.raises(HelmError, match="strategy"):
        helm_template(sets=["operator.strategy.type=BlueGreen"])


def test_every_container_requests_and_limits_ephemeral_storage() -> None:
    objects = helm_template()
    pods = [one(objects, "Deployment", f"exocorp-{c}")["spec"]["template"]["spec"]
            for c in ("operator", "gateway")] + [one(objects, "Pod")["spec"]]
    for pod in pods:
        for c in pod["containers"]:
            resources = c["resources"]
            assert "ephemeral-storage" in resources["requests"], c["name"]
            assert "ephemeral-storage" in resources["limits"], c["name"]


def test_helm_test_pod_checks_both_processes_through_their_services() -> None:
    objects = helm_template(sets=["gateway.service.port=8081", "operator.metricsPort=9090"])
    pod = one(objects, "Pod", "exocorp-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (check,) = pod["spec"]["containers"]
    assert check["image"] == one(objects, "Deployment", "exocorp-gateway")[
        "spec"]["template"]["spec"]["containers"][0]["image"]
    urls = check["args"][1:]
    assert urls == ["http://exocorp-gateway:8081/readyz",
                    "http://exocorp-gateway:8081/api/openapi.json",
                    "http://exocorp-operator-metrics:9090/readyz"]
    one(objects, "Service", "exocorp-gateway")
    one(objects, "Service", "exocorp-operator-metrics")
    assert check["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    policy = one(objects, "NetworkPolicy", "exocorp-test")
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        k: v for k, v in pod["metadata"]["labels"].items()
        if k in policy["spec"]["podSelector"]["matchLabels"]}
    assert "ingress" not in policy["spec"]  # nothing reaches it
    reachable = {(rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
                  rule["ports"][0]["port"]) for rule in policy["spec"]["egress"] if "to" in rule}
    assert reachable == {("gateway", 8000), ("operator", 9090)}
    off = helm_template(sets=["helmTest.enabled=false"])
    assert find(off, "Pod") == []
    assert not find(off, "NetworkPolicy", "exocorp-test")
