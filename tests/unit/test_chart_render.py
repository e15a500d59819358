"""The Helm chart renders what an installer expects, for the defaults and every documented
combination (charts/exocorp/ci/*-values.yaml), and refuses combinations that cannot work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from exocorp import __version__
from exocorp.cli import build_parser
from tests.plugins.monitoring import (
    CHART,
    CI_VALUES,
    REPO,
    HelmError,
    Obj,
    find,
    helm,
    helm_template,
    one,
)

pytestmark = pytest.mark.unit

CI = {p.name.removesuffix("-values.yaml"): p for p in CI_VALUES}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def deployment(objects: list[Obj], component: str) -> Obj:
    found = [o for o in find(objects, "Deployment")
             if o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    assert len(found) == 1
    return found[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.fixture(scope="module")
def defaults() -> list[Obj]:
    return helm_template()


# --- lint ----------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI])
def test_helm_lint_strict_passes(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["--values", str(values)] if values else [])
    result = helm(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_chart_targets_kubernetes_1_30_and_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"].startswith(">=1.30")
    assert chart["appVersion"] == __version__, "appVersion != package version"


# --- what the defaults create ----------------------------------------------------------------

def test_defaults_create_the_platform(defaults: list[Obj]) -> None:
    kinds = sorted(o["kind"] for o in defaults)
    assert kinds == sorted([
        "ClusterKopfPeering", "ClusterRole", "ClusterRole", "ClusterRoleBinding",
        "ClusterRoleBinding", "CustomResourceDefinition", "CustomResourceDefinition",
        "CustomResourceDefinition", "CustomResourceDefinition", "Deployment", "Deployment",
        "NetworkPolicy", "NetworkPolicy", "PersistentVolumeClaim", "Role", "Role",
        "RoleBinding", "RoleBinding", "Service", "Service", "ServiceAccount", "ServiceAccount",
        # the user-facing view/edit roles for Exocorps, and the `helm test` Pod and its
        # NetworkPolicy (hooks)
        "ClusterRole", "ClusterRole", "Pod", "NetworkPolicy",
        # the operator's write confinement (issue 13, item 5)
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        # the gateway's metrics port, apart from its public Service (item 11)
        "Service",
    ])
    names = {o["metadata"]["name"] for o in defaults if o["kind"] == "Deployment"}
    assert names == {"exocorp-operator", "exocorp-gateway"}
    for obj in defaults:
        if obj["kind"] not in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                               "ClusterKopfPeering", "ValidatingAdmissionPolicy",
                               "ValidatingAdmissionPolicyBinding"):
            assert obj["metadata"]["namespace"] == "exocorp-system", obj["metadata"]["name"]


def test_every_pod_meets_the_restricted_standard_with_a_writable_tmp() -> None:
    rendered = [o for values in [None, *CI_VALUES]
                for o in helm_template(values_files=[values] if values else [])]
    pods = [o["spec"] if o["kind"] == "Pod" else o["spec"]["template"]["spec"]
            for o in rendered if o["kind"] in WORKLOAD_KINDS]
    assert len(pods) >= 3 * (1 + len(CI_VALUES))  # operator, gateway, `helm test` Pod
    for pod in pods:
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True
        assert isinstance(psc["runAsUser"], int)
        assert psc["runAsUser"] > 0
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "hostNetwork" not in pod
        assert "hostPID" not in pod
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for c in containers(pod):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["runAsUser"] == 65532
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, "no writable emptyDir at /tmp"


def test_operator_runs_one_peered_instance_with_the_contract_flags(defaults: list[Obj]) -> None:
    dep = deployment(defaults, "operator")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "ghcr.io/exocorp/exocorp:0.1.0"
    assert c["args"][0] == "operator"
    args = dict(a.removeprefix("--").split("=", 1) for a in c["args"][1:])
    assert args == {
        "metrics-host": "0.0.0.0",  # noqa: S104 (scraped in-cluster)
        "metrics-port": "8080", "peering": "exocorp", "max-concurrent-rollouts": "10",
        "workers": "8", "resync-seconds": "300", "log-level": "info",
        "portal-base-domain": "portal.exocorp.localhost",
        "app-base-domain": "app.exocorp.localhost",
        "ingress-class": "nginx", "ingress-namespace": "ingress-nginx",
        "priority": "0", "secret-refresh-seconds": "60",
    }
    env = env_of(c)
    assert env["EXOCORP_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert c["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert pod["serviceAccountName"] == "exocorp-operator"
    peering = one(defaults, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == args["peering"]
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI])
def test_the_operator_command_accepts_the_chart_arguments(values: Path | None) -> None:
    """The chart's arguments, parsed by the real `exocorp` command line."""
    objects = helm_template(values_files=[values] if values else [])
    args = deployment(objects, "operator")["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = build_parser().parse_args(args)
    assert parsed.command == "operator"
    assert parsed.peering == "exocorp"
    assert parsed.metrics_port == 8080
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert parsed.max_concurrent_rollouts == chart_values["operator"]["maxConcurrentRollouts"]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI])
def test_the_gateway_command_accepts_the_chart_arguments(
    values: Path | None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chart's arguments and environment, parsed by the real `exocorp` command line; the
    gateway and the operator agree on the exocorps' domains."""
    objects = helm_template(values_files=[values] if values else [])
    gateway = deployment(objects, "gateway")["spec"]["template"]["spec"]["containers"][0]
    operator = deployment(objects, "operator")["spec"]["template"]["spec"]["containers"][0]
    for name, value in env_of(gateway).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    parsed = build_parser().parse_args(gateway["args"])
    assert parsed.command == "gateway"
    assert (parsed.host, parsed.port) == ("0.0.0.0", 8000)  # noqa: S104 (the pod listens on all)
    assert parsed.cookie_secure is True
    op = build_parser().parse_args(operator["args"])
    assert (parsed.portal_base_domain, parsed.app_base_domain) == (
        op.portal_base_domain, op.app_base_domain)


def test_operator_shards_each_run_their_own_peered_deployments_with_a_standby() -> None:
    objects = helm_template(sets=["operator.shards={blue,green}", "operator.standby=true"])
    operators = [o for o in find(objects, "Deployment")
                 if o["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"]
    seen = {}
    for dep in operators:
        parsed = build_parser().parse_args(dep["spec"]["template"]["spec"]["containers"][0]["args"])
        seen[dep["metadata"]["name"]] = (parsed.shard, parsed.peering, parsed.priority)
        assert dep["spec"]["replicas"] == 1
        others = [o for o in operators if o is not dep]
        # Each Deployment's selector picks its own pods and no other operator Deployment's
        # (the default active one keeps the selector charts before shards had).
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selects(dep["spec"]["selector"]["matchLabels"], labels)
        if dep["metadata"]["name"] != "exocorp-operator":
            assert not any(selects(dep["spec"]["selector"]["matchLabels"],
                                   o["spec"]["template"]["metadata"]["labels"]) for o in others)
    assert seen == {
        "exocorp-operator": ("", "exocorp", 1),
        "exocorp-operator-standby": ("", "exocorp", 0),
        "exocorp-operator-blue": ("blue", "exocorp-blue", 1),
        "exocorp-operator-blue-standby": ("blue", "exocorp-blue", 0),
        "exocorp-operator-green": ("green", "exocorp-green", 1),
        "exocorp-operator-green-standby": ("green", "exocorp-green", 0),
    }
    peerings = sorted(o["metadata"]["name"] for o in find(objects, "ClusterKopfPeering"))
    assert peerings == ["exocorp", "exocorp-blue", "exocorp-green"]
    gateway = deployment(objects, "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert build_parser().parse_args(gateway["args"]).shards == ("default", "blue", "green")


def test_operator_gets_ingress_class_tls_issuer_and_storage_class_when_set() -> None:
    dep = deployment(helm_template(values_files=[CI["ingress"]],
                                   sets=["platform.storageClass=fast-ssd",
                                         "platform.ingressClass=traefik",
                                         "platform.ingressNamespace=traefik"]), "operator")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--ingress-class=traefik" in args
    assert "--ingress-namespace=traefik" in args
    assert "--tls-issuer=letsencrypt" in args
    assert "--storage-class=fast-ssd" in args
    assert "--portal-base-domain=portal.example.com" in args
    assert "--app-base-domain=apps.example.com" in args


def test_gateway_defaults_to_one_replica_on_sqlite_on_a_volume(defaults: list[Obj]) -> None:
    dep = deployment(defaults, "gateway")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["gateway", "--host=0.0.0.0", "--port=8000", "--metrics-port=9090",
                         "--processes=1",
                         "--portal-base-domain=portal.exocorp.localhost",
                         "--app-base-domain=app.exocorp.localhost", "--signup-credit=1000",
                         "--signup-requires-owner", "--signup-max-per-client=5",
                         "--min-credit-hours=0.05", "--suspension-grace-hours=72",
                         "--login-max-failures=5", "--login-max-failures-per-client=50",
                         "--hash-concurrency=0", "--log-level=info", "--agent-token-days=30",
                         "--session-idle-minutes=720",
                         "--session-absolute-hours=168", "--auth-cache-seconds=5",
                         "--no-access-log", "--max-body-bytes=65536",
                         "--idempotency-stale-seconds=30"]
    env = env_of(c)
    assert env["DATABASE_URL"] == "sqlite+aiosqlite:////var/lib/exocorp/exocorp.db"
    assert env["EXOCORP_COOKIE_SECURE"] == "true"
    assert env["EXOCORP_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "EXOCORP_PLATFORM_OWNER_EMAIL" not in env
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts["/var/lib/exocorp"]]["persistentVolumeClaim"]["claimName"]
    pvc = one(defaults, "PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert not find(defaults, "PodDisruptionBudget"), "a PDB over one replica blocks nothing"
    assert not find(defaults, "Ingress")


def test_postgresql_runs_two_replicas_with_a_pdb_and_the_url_from_a_secret() -> None:
    objects = helm_template(values_files=[CI["postgresql"]])
    dep = deployment(objects, "gateway")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = env_of(c)
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "exocorp-db", "key": "url"}}
    assert not find(objects, "PersistentVolumeClaim")
    assert "/var/lib/exocorp" not in {m["mountPath"] for m in c["volumeMounts"]}
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], dep["spec"]["template"]["metadata"]
                   ["labels"])
    spread = pod["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"


def test_platform_owner_password_comes_from_a_mounted_secret_file() -> None:
    objects = helm_template(values_files=[CI["postgresql"]])
    pod = deployment(objects, "gateway")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = env_of(c)
    assert env["EXOCORP_PLATFORM_OWNER_EMAIL"] == "admin@example.com"
    path = Path(env["EXOCORP_PLATFORM_OWNER_PASSWORD_FILE"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "exocorp-owner"
    assert {"key": "password", "path": path.name} in volume["secret"]["items"]
    assert not any("password" in str(e.get("value", "")).lower() for e in c["env"]
                   if e["name"] != "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE")


def test_ingress_routes_the_gateway_service_with_a_cert_manager_certificate() -> None:
    objects = helm_template(values_files=[CI["ingress"]])
    ing = one(objects, "Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ing["spec"]["tls"] == [{"hosts": ["exocorp.example.com"],
                                   "secretName": "exocorp-gateway-tls"}]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "exocorp.example.com"
    args = deployment(objects, "gateway")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--public-base-url=https://exocorp.example.com" in args, "CSRF origin of the Ingress"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    svc = one(objects, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=["defaults", *CI])
def test_services_and_policies_select_the_pods_and_name_served_ports(values: Path | None) -> None:
    objects = helm_template(values_files=[values] if values else [])
    pods = {o["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["template"]
            for o in find(objects, "Deployment")}

    def pod_for(selector: dict[str, str]) -> dict[str, Any]:
        matched = [p for p in pods.values() if selects(selector, p["metadata"]["labels"])]
        assert len(matched) == 1, f"{selector} selects {len(matched)} pod templates"
        return matched[0]

    def port_names(template: dict[str, Any]) -> set[str]:
        return {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}

    for svc in find(objects, "Service"):
        template = pod_for(svc["spec"]["selector"])
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names(template)
    # The platform's policies (the `helm test` Pod's own is checked in test_chart_options.py).
    policies = [p for p in find(objects, "NetworkPolicy")
                if (p["metadata"].get("annotations") or {}).get("helm.sh/hook") != "test"]
    for policy in policies:
        template = pod_for(policy["spec"]["podSelector"]["matchLabels"])
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        allowed_in = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert allowed_in == port_names(template), "every served port, and nothing else"
        egress = {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"]
                  for p in rule["ports"]}
        assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")} <= egress
    assert len(policies) == 2


def test_gateway_may_reach_postgresql_only_when_it_uses_it(defaults: list[Obj]) -> None:
    def egress_ports(objects: list[Obj]) -> set[int]:
        policy = one(objects, "NetworkPolicy", "exocorp-gateway")
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}

    assert 5432 not in egress_ports(defaults)
    assert 5432 in egress_ports(helm_template(values_files=[CI["postgresql"]]))


def test_metrics_can_be_restricted_to_a_monitoring_namespace() -> None:
    objects = helm_template(values_files=[CI["servicemonitor"]])
    monitoring = [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}]
    policy = one(objects, "NetworkPolicy", "exocorp-operator")
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == monitoring
    gateway = one(objects, "NetworkPolicy", "exocorp-gateway")
    (metrics,) = [r for r in gateway["spec"]["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert metrics["from"] == monitoring


def test_the_gateway_metrics_port_is_never_public() -> None:
    # Issue 13, item 11: the Ingress routes every path of the public Service to the gateway.
    objects = helm_template(values_files=[CI["ingress"]])
    container = deployment(objects, "gateway")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "metrics": 9090}
    public = one(objects, "Service", "exocorp-gateway")
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
    internal = one(objects, "Service", "exocorp-gateway-metrics")
    assert internal["spec"]["type"] == "ClusterIP"
    assert [p["targetPort"] for p in internal["spec"]["ports"]] == ["metrics"]
    ingress = one(objects, "Ingress")
    backends = {(path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == {("exocorp-gateway", "http")}


def test_several_gateway_processes_each_get_a_metrics_port_that_is_scraped_and_allowed() -> None:
    objects = helm_template(sets=["gateway.processes=3", "monitoring.podMonitor.enabled=true"])
    container = deployment(objects, "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert build_parser().parse_args(container["args"]).processes == 3
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "metrics": 9090, "metrics-1": 9091, "metrics-2": 9092}
    metrics = ["metrics", "metrics-1", "metrics-2"]
    internal = one(objects, "Service", "exocorp-gateway-metrics")
    assert [p["targetPort"] for p in internal["spec"]["ports"]] == metrics
    public = one(objects, "Service", "exocorp-gateway")
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"]
    policy = one(objects, "NetworkPolicy", "exocorp-gateway")
    allowed = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert allowed == ["http", *metrics]
    monitor = one(objects, "PodMonitor", "exocorp-gateway")
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in endpoints] == metrics
    assert {e["relabelings"][0]["replacement"] for e in endpoints} == {"exocorp-gateway"}
    scraped = helm_template(sets=["gateway.processes=2", "monitoring.serviceMonitor.enabled=true"])
    service_monitor = one(scraped, "ServiceMonitor", "exocorp-gateway")
    assert [e["port"] for e in service_monitor["spec"]["endpoints"]] == ["metrics", "metrics-1"]


def test_network_policies_can_be_turned_off() -> None:
    assert not find(helm_template(sets=["networkPolicy.enabled=false"]), "NetworkPolicy")


# --- CRDs ------------------------------------------------------------------------------------

def test_crds_are_the_generated_ones_and_survive_uninstall(defaults: list[Obj]) -> None:
    crds = {o["metadata"]["name"]: o for o in find(defaults, "CustomResourceDefinition")}
    assert set(crds) == {"exocorps.exocorp.io", "exocorpreleases.exocorp.io",
                         "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for crd in crds.values():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for path in sorted((REPO / "manifests" / "crds").glob("*.yaml")):
        generated = yaml.safe_load(path.read_text())
        rendered = crds[generated["metadata"]["name"]]
        assert rendered["spec"] == generated["spec"], f"{path.name} differs from the chart's copy"
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert crds["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"


def test_crds_off_leaves_out_every_crd_but_keeps_the_peering_object() -> None:
    objects = helm_template(values_files=[CI["crds-off"]])
    assert not find(objects, "CustomResourceDefinition")
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "exocorp"


# --- monitoring -----------------------------------------------------------------------------

def test_monitoring_objects_exist_only_when_enabled(defaults: list[Obj]) -> None:
    for kind in ("PodMonitor", "ServiceMonitor", "PrometheusRule"):
        assert not find(defaults, kind)
    assert not find(defaults, "ConfigMap")


def test_pod_monitors_scrape_both_processes_under_the_alerts_job_names() -> None:
    objects = helm_template(values_files=[CI["monitoring"]])
    monitors = find(objects, "PodMonitor")
    assert len(monitors) == 2
    jobs = {}
    for monitor in monitors:
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        dep = deployment(objects, component)
        template = dep["spec"]["template"]
        assert selects(monitor["spec"]["selector"]["matchLabels"], template["metadata"]["labels"])
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["exocorp-system"]}
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
        assert endpoint["port"] in ports
        assert endpoint["path"] == "/metrics"
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "job"
        jobs[component] = relabel["replacement"]
    assert jobs == {"operator": "exocorp-operator", "gateway": "exocorp-gateway"}


def test_service_monitors_scrape_through_the_services_under_the_same_jobs() -> None:
    objects = helm_template(values_files=[CI["servicemonitor"]])
    assert not find(objects, "PodMonitor")
    monitors = find(objects, "ServiceMonitor")
    assert len(monitors) == 2
    for monitor in monitors:
        (svc,) = [s for s in find(objects, "Service")
                  if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        assert endpoint["relabelings"][0]["replacement"] == f"exocorp-{component}"


def test_prometheus_rule_carries_the_alerts_file_with_runbook_links() -> None:
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    rule = one(helm_template(values_files=[CI["monitoring"]]), "PrometheusRule")
    assert rule["spec"]["groups"] == source["groups"]
    custom = one(helm_template(sets=[
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.runbookBaseURL=https://wiki.example.com/runbooks/",
    ]), "PrometheusRule")
    alerts = [r for g in custom["spec"]["groups"] for r in g["rules"]]
    assert alerts
    for alert in alerts:
        assert alert["annotations"]["runbook_url"] == (
            f"https://wiki.example.com/runbooks/{alert['alert']}.md")


def test_grafana_dashboard_configmap_holds_the_dashboard_for_the_sidecar() -> None:
    objects = helm_template(values_files=[CI["monitoring"]])
    cm = one(objects, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["exocorp.json"])
    assert dashboard["uid"] == "exocorp-platform"
    assert dashboard == json.loads((CHART / "files" / "dashboards" / "exocorp.json").read_text())
    other_ns = one(helm_template(sets=["monitoring.grafanaDashboard.enabled=true",
                                       "monitoring.grafanaDashboard.namespace=grafana"]),
                   "ConfigMap")
    assert other_ns["metadata"]["namespace"] == "grafana"


# --- names follow the release ------------------------------------------------------------------

def test_another_release_name_and_namespace_rename_everything_consistently() -> None:
    objects = helm_template(release="acme", namespace="platform")
    assert {o["metadata"]["name"] for o in find(objects, "Deployment")} == {
        "acme-exocorp-operator", "acme-exocorp-gateway"}
    accounts = {o["metadata"]["name"] for o in find(objects, "ServiceAccount")}
    for dep in find(objects, "Deployment"):
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] in accounts
    for binding in [*find(objects, "ClusterRoleBinding"), *find(objects, "RoleBinding")]:
        (subject,) = binding["subjects"]
        assert subject == {"kind": "ServiceAccount", "name": subject["name"],
                           "namespace": "platform"}
        assert subject["name"] in accounts
        kind = binding["roleRef"]["kind"]
        assert one(objects, kind, binding["roleRef"]["name"])


def test_an_existing_service_account_can_be_used() -> None:
    objects = helm_template(sets=["operator.serviceAccount.create=false",
                                  "operator.serviceAccount.name=platform-operator"])
    assert "platform-operator" not in {o["metadata"]["name"]
                                       for o in find(objects, "ServiceAccount")}
    assert deployment(objects, "operator")["spec"]["template"]["spec"][
        "serviceAccountName"] == "platform-operator"
    assert one(objects, "ClusterRoleBinding", "exocorp-operator")["subjects"][0]["name"] == (
        "platform-operator")


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "a" * 64
    objects = helm_template(sets=[f"image.digest={digest}"])
    for dep in find(objects, "Deployment"):
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == (
            f"ghcr.io/exocorp/exocorp@{digest}")


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize(("sets", "message"), [
    (["gateway.replicaCount=2"], "gateway.replicaCount=2 needs database.type=postgresql"),
    (["database.type=postgresql"], "needs database.postgresql.existingSecret"),
    (["platformOwner.email=admin@example.com"], "needs platformOwner.existingSecret"),
    (["monitoring.podMonitor.enabled=true", "monitoring.serviceMonitor.enabled=true"],
     "at most one of monitoring.podMonitor and monitoring.serviceMonitor"),
    (["gateway.replicas=2"], "additional properties 'replicas' not allowed"),
    (["database.type=mysql"], "/database/type"),
    (["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["gateway.replicaCount=0"], "/gateway/replicaCount"),
    (["operator.metricsPort=http"], "/operator/metricsPort"),
    (["gateway.processes=0"], "/gateway/processes"),
    (["gateway.processes=3", "gateway.metricsPort=7998"],
     "gateway.port=8000 is among the metrics ports of the 3 gateway processes"),
    (["gateway.processes=2", "gateway.metricsPort=65535"],
     "leaves no room for the metrics ports of 2 gateway processes"),
    (["platform.portalBaseDomain=Not A Domain"], "/platform/portalBaseDomain"),
], ids=["sqlite-2-replicas", "pg-no-secret", "owner-no-secret", "two-monitors", "unknown-key",
        "bad-db-type", "bad-pull-policy", "zero-replicas", "port-not-int", "zero-processes",
        "port-among-metrics-ports", "metrics-ports-past-65535", "bad-domain"])
def test_impossible_values_are_refused_with_a_clear_message(sets: list[str], message: str) -> None:
    with pytest.raises(HelmError) as refused:
        helm_template(sets=sets)
    assert message in str(refused.value)
