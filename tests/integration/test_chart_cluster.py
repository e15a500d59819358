"""The chart against a real API server (the session's local control plane, pods on kwok nodes):

- every object of every documented combination passes a server-side dry run, in a namespace that
  enforces the `restricted` Pod Security Standard;
- `helm install` creates everything and the pods run; upgrading to PostgreSQL and uninstalling
  behave as documented (CRDs and the SQLite claim stay);
- RBAC, by impersonating the chart's ServiceAccounts: what each may and may not do, and the
  operator's writes in an exocorp namespace performed with its own permissions.

prometheus-operator's CRDs are not part of the control plane: the dry run installs minimal
stand-ins for PodMonitor, ServiceMonitor and PrometheusRule (group, version, kind, scope, with
an open schema), so the API server checks those objects' kind, scope and metadata but not their
spec; their content is checked in tests/unit/test_chart_render.py.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.lifecycle import perform
from exocorp.model import ActionRequest, Exocorp
from exocorp.names import runtime_namespace
from exocorp.testing import samples
from exocorp.testing.controlplane import free_port
from exocorp.testing.platform import OperatorProcess
from exocorp.testing.processes import ManagedProcess, spawn
from exocorp.testing.prometheus import ScrapeTarget
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.monitoring import (
    CHART,
    CI_VALUES,
    REPO,
    Obj,
    PrometheusFactory,
    helm,
    helm_template,
    service_account_kubeconfig,
    template_args,
)

pytestmark = pytest.mark.integration

MONITORING_KINDS = (("PodMonitor", "podmonitors"), ("ServiceMonitor", "servicemonitors"),
                    ("PrometheusRule", "prometheusrules"))
PSA_WARNING = "would violate PodSecurity"
PG_VALUES = CHART / "ci" / "postgresql-values.yaml"


class Kubectl:
    """kubectl against the test cluster, as admin or as someone else (``as_``)."""

    def __init__(self, cluster: ClusterInfo) -> None:
        self.cluster = cluster

    def run(self, *args: str, stdin: str | None = None, as_: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.cluster.kubectl), f"--kubeconfig={self.cluster.kubeconfig}"]
        if as_:
            argv.append(f"--as={as_}")
        result = subprocess.run([*argv, *args], input=stdin, capture_output=True, text=True,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)

    def apply(self, objects: list[Obj], *extra: str, as_: str | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("apply", *extra, "-f", "-", stdin=yaml.safe_dump_all(objects),
                        as_=as_, check=check)

    def can_i(self, who: str, verb: str, resource: str, namespace: str | None = None) -> bool:
        """``resource`` may name a subresource (``pods/exec``); kubectl would read the part
        after the slash as an object name."""
        resource, _, subresource = resource.partition("/")
        args = ["auth", "can-i", verb, resource]
        if subresource:
            args.append(f"--subresource={subresource}")
        if namespace:
            args += ["-n", namespace]
        result = self.run(*args, as_=who, check=False)
        assert result.stdout.strip() in ("yes", "no"), result.stderr
        return result.stdout.strip() == "yes"

    def wait_for(self, what: str, probe: Any, within: float = 120.0) -> Any:
        deadline = time.monotonic() + within
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {within:.0f}s")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def kubectl(cluster: ClusterInfo) -> Kubectl:
    return Kubectl(cluster)


def new_namespace(kubectl: Kubectl, prefix: str, *, restricted: bool = True) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    labels = {"exocorp.io/test": "1"}
    if restricted:
        labels |= {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
    kubectl.apply([{"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels}}])
    return name


def delete_namespace(kubectl: Kubectl, name: str) -> None:
    kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def restricted_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = new_namespace(kubectl, "chart")
    try:
        yield name
    finally:
        delete_namespace(kubectl, name)


def chart_crds() -> list[Obj]:
    return [o for o in helm_template() if o["kind"] == "CustomResourceDefinition"]


def stand_in_crd(kind: str, plural: str) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com",
                     "labels": {"exocorp.io/test": "stand-in"}},
        "spec": {
            "group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                      "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }


@pytest.fixture(scope="module")
def dry_run_crds(kubectl: Kubectl) -> Iterator[None]:
    """The CRDs a dry run needs to exist: the chart's own (the ClusterKopfPeering is an object
    of one of them) and stand-ins for prometheus-operator's."""
    stand_ins = [stand_in_crd(kind, plural) for kind, plural in MONITORING_KINDS]
    existing = {o["metadata"]["name"] for o in kubectl.get("crd")["items"]}
    created = [c for c in stand_ins if c["metadata"]["name"] not in existing]
    kubectl.apply([*chart_crds(), *created], "--server-side", "--force-conflicts",
                  "--field-manager=exocorp-chart-tests")
    names = [f"crd/{c['metadata']['name']}" for c in [*chart_crds(), *stand_ins]]
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", *names)
    try:
        yield
    finally:
        for crd in created:
            kubectl.run("delete", "crd", crd["metadata"]["name"], "--ignore-not-found",
                        check=False)


# --- server-side dry run -------------------------------------------------------------------

@pytest.mark.parametrize("values", [None, *CI_VALUES],
                         ids=["defaults", *[p.name.removesuffix("-values.yaml")
                                            for p in CI_VALUES]])
def test_every_rendered_object_passes_a_server_side_dry_run(
    kubectl: Kubectl, dry_run_crds: None, restricted_namespace: str, values: Path | None,
) -> None:
    objects = helm_template(values_files=[values] if values else [],
                            namespace=restricted_namespace)
    result = kubectl.apply(objects, "--dry-run=server", check=False)
    assert result.returncode == 0, result.stderr
    assert PSA_WARNING not in result.stderr, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(objects), result.stdout
    assert all("(server dry run)" in line for line in lines)


def test_kustomize_base_under_a_namespace_overlay_passes_a_server_side_dry_run(
    kubectl: Kubectl, dry_run_crds: None, restricted_namespace: str, tmp_path: Path,
) -> None:
    """The kubectl-only path of docs/deployment.md: an overlay that only sets `namespace:`."""
    base = REPO / "manifests" / "base"
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(base, overlay)], "namespace": restricted_namespace}))
    rendered = kubectl.run("kustomize", str(overlay)).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    namespaced = [o for o in objects if "namespace" in o["metadata"]]
    assert {o["metadata"]["namespace"] for o in namespaced} == {restricted_namespace}
    for binding in [o for o in objects if o["kind"].endswith("RoleBinding")]:
        assert binding["subjects"][0]["namespace"] == restricted_namespace
    result = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=rendered, check=False)
    assert result.returncode == 0, result.stderr
    assert PSA_WARNING not in result.stderr, result.stderr


def test_the_dry_run_reports_pods_that_break_the_restricted_standard(
    kubectl: Kubectl, dry_run_crds: None, restricted_namespace: str,
) -> None:
    """The PSA check above can fail: a privilege escalation is reported."""
    objects = helm_template(namespace=restricted_namespace,
                            sets=["containerSecurityContext.allowPrivilegeEscalation=true"])
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    result = kubectl.apply(deployments, "--dry-run=server", check=False)
    assert PSA_WARNING in result.stderr
    assert "allowPrivilegeEscalation" in result.stderr


# --- helm install --------------------------------------------------------------------------

@dataclass
class Release:
    name: str
    namespace: str
    kubectl: Kubectl

    @property
    def fullname(self) -> str:
        return f"{self.name}-exocorp"

    def sa(self, component: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}-{component}"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(*args, "--namespace", self.namespace,
                    f"--kubeconfig={self.kubectl.cluster.kubeconfig}", check=check)


def adopt_existing_crds(kubectl: Kubectl, release: str, namespace: str) -> None:
    """What docs/deployment.md tells users: CRDs installed before (here by other tests) are
    marked as the release's, so Helm takes them over instead of refusing."""
    existing = {o["metadata"]["name"] for o in kubectl.get("crd")["items"]}
    for crd in chart_crds():
        name = crd["metadata"]["name"]
        if name in existing:
            kubectl.run("label", "crd", name, "app.kubernetes.io/managed-by=Helm", "--overwrite")
            kubectl.run("annotate", "crd", name, f"meta.helm.sh/release-name={release}",
                        f"meta.helm.sh/release-namespace={namespace}", "--overwrite")


def default_storage_class(kubectl: Kubectl) -> str:
    for sc in kubectl.get("storageclass")["items"]:
        annotations = sc["metadata"].get("annotations") or {}
        if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
            return str(sc["metadata"]["name"])
    return ""


def sqlite_volume(kubectl: Kubectl, release: Release) -> str:
    """A static volume pre-bound to the chart's SQLite claim (the control plane has no storage
    provisioner), in the class the claim gets (the default one): the claim binds to it and
    leaves the harness's shared volume pool to the other tests."""
    name = f"pv-{release.namespace}"
    kubectl.apply([{
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"exocorp.io/test": "1"}},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": default_storage_class(kubectl),
            "hostPath": {"path": f"/tmp/{name}"},
            "claimRef": {"namespace": release.namespace,
                         "name": f"{release.fullname}-gateway-data"},
        },
    }])
    return name


def install(kubectl: Kubectl, release: Release, *values: Path) -> None:
    adopt_existing_crds(kubectl, release.name, release.namespace)
    release.helm("install", release.name, str(CHART), *template_args(values),
                 "--wait", "--timeout", "4m")


@pytest.fixture(scope="module")
def release(kubectl: Kubectl) -> Iterator[Release]:
    """The chart with its defaults, installed into a namespace enforcing `restricted`."""
    namespace = new_namespace(kubectl, "exo-install")
    rel = Release(f"exo-{uuid.uuid4().hex[:6]}", namespace, kubectl)
    volume = sqlite_volume(kubectl, rel)
    try:
        install(kubectl, rel)
        yield rel
    finally:
        rel.helm("uninstall", rel.name, "--wait", "--timeout", "2m", check=False)
        delete_namespace(kubectl, namespace)
        kubectl.run("delete", "pv", volume, "--wait=false", "--ignore-not-found", check=False)


def test_helm_install_creates_every_object(kubectl: Kubectl, release: Release) -> None:
    manifest = release.helm("get", "manifest", release.name).stdout
    objects = [d for d in yaml.safe_load_all(manifest) if d]
    assert len(objects) >= 20
    found = kubectl.run("get", "-f", "-", "-o", "name", stdin=manifest).stdout.split()
    assert len(found) == len(objects)
    hooks = release.helm("get", "hooks", release.name).stdout
    assert "kind: ClusterKopfPeering" in hooks
    peering = kubectl.get("clusterkopfpeerings.kopf.dev", "exocorp")
    assert peering["metadata"]["name"] == "exocorp"
    for crd in chart_crds():
        live = kubectl.get("crd", crd["metadata"]["name"])
        assert live["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert any(c["type"] == "Established" and c["status"] == "True"
                   for c in live["status"]["conditions"])


def test_install_notes_tell_the_user_how_to_reach_and_check_the_platform(
    kubectl: Kubectl, release: Release,
) -> None:
    notes = release.helm("get", "notes", release.name).stdout
    service = f"svc/{release.fullname}-gateway"
    assert f"-n {release.namespace} port-forward {service} 8000:80" in notes
    kubectl.get(service, "-n", release.namespace)  # the service the notes name exists
    assert f"logs deploy/{release.fullname}-operator" in notes
    assert f"SQLite on the PersistentVolumeClaim {release.fullname}-gateway-data" in notes
    assert "kubectl get exocorps" in notes
    assert "monitoring.podMonitor.enabled=true" in notes


def test_installed_pods_run_on_the_nodes_under_the_restricted_standard(
    kubectl: Kubectl, release: Release,
) -> None:
    nodes = {n["metadata"]["name"] for n in kubectl.get("nodes")["items"]}
    for component in ("operator", "gateway"):
        dep = kubectl.get("deployment", f"{release.fullname}-{component}", "-n",
                          release.namespace)
        assert dep["status"]["availableReplicas"] == dep["spec"]["replicas"] == 1
        pods = kubectl.get("pods", "-n", release.namespace, "-l",
                           f"app.kubernetes.io/instance={release.name},"
                           f"app.kubernetes.io/component={component}")["items"]
        assert len(pods) == 1
        pod = pods[0]
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"] in nodes
        assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    pvc = kubectl.get("pvc", f"{release.fullname}-gateway-data", "-n", release.namespace)
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["volumeName"] == f"pv-{release.namespace}"
    ns = kubectl.get("namespace", release.namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_upgrade_to_postgresql_then_uninstall_keeps_crds_and_data(kubectl: Kubectl) -> None:
    namespace = new_namespace(kubectl, "exo-upgrade")
    rel = Release(f"exo-{uuid.uuid4().hex[:6]}", namespace, kubectl)
    volume = sqlite_volume(kubectl, rel)
    try:
        install(kubectl, rel)
        kubectl.run("create", "secret", "generic", "exocorp-db", "-n", namespace,
                    "--from-literal=url=postgresql+asyncpg://exocorp:x@db.invalid:5432/exocorp")
        kubectl.run("create", "secret", "generic", "exocorp-owner", "-n", namespace,
                    "--from-literal=password=not-used-by-kwok")
        rel.helm("upgrade", rel.name, str(CHART), "--values", str(PG_VALUES), "--wait",
                 "--timeout", "4m")
        gateway = kubectl.get("deployment", f"{rel.fullname}-gateway", "-n", namespace)
        assert gateway["status"]["availableReplicas"] == 2
        env = {e["name"]: e for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "exocorp-db"
        pdb = kubectl.wait_for(
            "the PDB to observe two healthy gateways",
            lambda: (p := kubectl.get("pdb", f"{rel.fullname}-gateway", "-n", namespace))
            ["status"].get("currentHealthy") == 2 and p)
        assert pdb["status"]["disruptionsAllowed"] == 1
        # The SQLite claim is no longer in the release, but `keep` left it in place.
        kubectl.get("pvc", f"{rel.fullname}-gateway-data", "-n", namespace)

        rel.helm("uninstall", rel.name, "--wait", "--timeout", "2m")
        left = kubectl.run("get", "deploy,svc,sa,role,rolebinding,networkpolicy,pdb", "-n",
                           namespace, "-l", f"app.kubernetes.io/instance={rel.name}",
                           "-o", "name").stdout.split()
        assert left == []
        gone = kubectl.run("get", "clusterrole", f"{rel.fullname}-operator",
                           "--ignore-not-found", "-o", "name").stdout.strip()
        assert gone == ""
        for crd in chart_crds():
            kubectl.get("crd", crd["metadata"]["name"])  # still there: every exocorp survives
        kubectl.get("pvc", f"{rel.fullname}-gateway-data", "-n", namespace)
    finally:
        rel.helm("uninstall", rel.name, "--timeout", "2m", check=False)
        delete_namespace(kubectl, namespace)
        kubectl.run("delete", "pv", volume, "--wait=false", "--ignore-not-found", check=False)


# --- RBAC by impersonation -------------------------------------------------------------------

# Creating, changing, binding or escalating any RBAC object, cluster-wide or in a namespace
# (its own included): none of these may either process do.
RBAC_WRITES = [
    (verb, resource, ns)
    for resource, namespaces in (("clusterroles", (None,)), ("clusterrolebindings", (None,)),
                                 ("roles", ("PLATFORM", "any-exocorp-ns")),
                                 ("rolebindings", ("PLATFORM", "any-exocorp-ns")))
    for ns in namespaces
    for verb in ("create", "update", "patch", "delete", "bind", "escalate")
]
# Reading Secrets anywhere but the platform namespace (cluster-wide lists included).
SECRET_READS_OUTSIDE = [
    (verb, "secrets", ns) for ns in (None, "kube-system", "default", "any-exocorp-ns")
    for verb in ("get", "list", "watch")
]
OPERATOR_MAY = [
    ("get", "exocorps.exocorp.io", None), ("watch", "exocorps.exocorp.io", None),
    ("patch", "exocorps.exocorp.io/status", None), ("update", "exocorps.exocorp.io", None),
    ("update", "exocorps.exocorp.io/finalizers", None),
    ("patch", "exocorpreleases.exocorp.io", None),
    ("create", "namespaces", None), ("delete", "namespaces", None),
    ("create", "deployments.apps", "any-exocorp-ns"), ("delete", "ingresses", "any-exocorp-ns"),
    ("create", "networkpolicies", "any-exocorp-ns"), ("create", "secrets", "any-exocorp-ns"),
    ("patch", "secrets", "any-exocorp-ns"), ("get", "secrets", "PLATFORM"),
    ("list", "secrets", "PLATFORM"), ("watch", "secrets", "PLATFORM"),
    ("create", "resourcequotas", "any-exocorp-ns"), ("list", "pods", "any-exocorp-ns"),
    ("create", "events", "any-exocorp-ns"), ("create", "events.events.k8s.io", "any-exocorp-ns"),
    ("list", "customresourcedefinitions", None), ("patch", "clusterkopfpeerings.kopf.dev", None),
    ("create", "controllerrevisions.apps", "PLATFORM"),
    ("update", "controllerrevisions.apps", "PLATFORM"),
    ("list", "controllerrevisions.apps", None), ("update", "leases", "PLATFORM"),
]
OPERATOR_MAY_NOT = [
    ("create", "clusterroles", None), ("create", "clusterrolebindings", None),
    ("create", "roles", "any-exocorp-ns"), ("create", "rolebindings", "any-exocorp-ns"),
    ("escalate", "clusterroles", None), ("bind", "clusterroles", None),
    ("impersonate", "serviceaccounts", "kube-system"), ("delete", "nodes", None),
    ("create", "pods", "any-exocorp-ns"), ("create", "pods/exec", "any-exocorp-ns"),
    ("create", "serviceaccounts/token", "kube-system"),
    ("create", "exocorps.exocorp.io", None), ("delete", "exocorps.exocorp.io", None),
    ("create", "exocorpreleases.exocorp.io", None), ("create", "customresourcedefinitions", None),
    ("create", "controllerrevisions.apps", "any-exocorp-ns"), ("create", "leases", "kube-system"),
    ("create", "statefulsets.apps", "any-exocorp-ns"), ("delete", "pods", "any-exocorp-ns"),
    # RBAC: no verb on any RBAC object, anywhere
    *RBAC_WRITES,
    # Secrets: written into exocorp namespaces, read nowhere but the platform namespace
    *SECRET_READS_OUTSIDE,
    ("update", "secrets", "kube-system"), ("delete", "secrets", "kube-system"),
]
GATEWAY_MAY = [
    ("create", "exocorps.exocorp.io", None), ("patch", "exocorps.exocorp.io", None),
    ("delete", "exocorps.exocorp.io", None), ("watch", "exocorpreleases.exocorp.io", None),
    ("list", "nodes", None), ("list", "pods", None),
    ("create", "secrets", "PLATFORM"), ("get", "secrets", "PLATFORM"),
    ("delete", "secrets", "PLATFORM"), ("update", "leases", "PLATFORM"),
    ("list", "controllerrevisions.apps", "PLATFORM"),
]
GATEWAY_MAY_NOT = [
    ("get", "secrets", "kube-system"), ("list", "secrets", "default"),
    ("get", "secrets", "any-exocorp-ns"), ("patch", "exocorps.exocorp.io/status", None),
    ("create", "exocorpreleases.exocorp.io", None), ("create", "namespaces", None),
    ("create", "deployments.apps", "PLATFORM"), ("create", "controllerrevisions.apps", "PLATFORM"),
    ("create", "clusterroles", None), ("create", "rolebindings", "PLATFORM"),
    ("delete", "nodes", None), ("delete", "pods", "PLATFORM"), ("update", "leases", "kube-system"),
    *RBAC_WRITES,
    *SECRET_READS_OUTSIDE,
    ("create", "secrets", "any-exocorp-ns"), ("patch", "secrets", "kube-system"),
]


def _ns(release: Release, namespace: str | None) -> str | None:
    return release.namespace if namespace == "PLATFORM" else namespace


@pytest.mark.parametrize(("component", "allowed", "checks"), [
    ("operator", True, OPERATOR_MAY), ("operator", False, OPERATOR_MAY_NOT),
    ("gateway", True, GATEWAY_MAY), ("gateway", False, GATEWAY_MAY_NOT),
], ids=["operator-may", "operator-may-not", "gateway-may", "gateway-may-not"])
def test_service_account_permissions(
    kubectl: Kubectl, release: Release, component: str, allowed: bool,
    checks: list[tuple[str, str, str | None]],
) -> None:
    who = release.sa(component)
    wrong = [(verb, resource, ns) for verb, resource, ns in checks
             if kubectl.can_i(who, verb, resource, _ns(release, ns)) != allowed]
    assert wrong == [], f"{component} {'denied' if allowed else 'allowed'}: {wrong}"


def test_neither_service_account_reads_secrets_outside_the_platform_namespace(
    kubectl: Kubectl, release: Release,
) -> None:
    """docs/deployment.md ("RBAC"): the operator writes credential copies into exocorp
    namespaces but reads Secrets only in the platform namespace, like the gateway. Asked of the
    API server with SubjectAccessReviews (what the authorizer itself answers for the
    ServiceAccount, no impersonation)."""
    for component in ("operator", "gateway"):
        user = release.sa(component)
        for verb in ("get", "list", "watch"):
            for ns in ("kube-system", "default", "exo-anything", ""):
                review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                          "spec": {"user": user,
                                   "groups": ["system:serviceaccounts",
                                              f"system:serviceaccounts:{release.namespace}",
                                              "system:authenticated"],
                                   "resourceAttributes": {"verb": verb, "resource": "secrets",
                                                          "namespace": ns}}}
                answer = json.loads(kubectl.run("create", "-o", "json", "-f", "-",
                                                stdin=json.dumps(review)).stdout)
                assert answer["status"].get("allowed") is not True, (component, verb, ns)
            platform = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                        "spec": {"user": user, "groups": ["system:serviceaccounts",
                                                          "system:authenticated"],
                                 "resourceAttributes": {"verb": verb, "resource": "secrets",
                                                        "namespace": release.namespace}}}
            answer = json.loads(kubectl.run("create", "-o", "json", "-f", "-",
                                            stdin=json.dumps(platform)).stdout)
            assert answer["status"].get("allowed") is True, (component, verb)


def _runtime_objects(ns: str) -> list[Obj]:
    labels = {"app.kubernetes.io/managed-by": "exocorp-operator"}
    meta = {"namespace": ns, "labels": labels}
    pod_labels = {"app": "agent"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runtime", **meta}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota", **meta},
         "spec": {"hard": {"pods": "20"}}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", **meta},
         "spec": {"limits": [{"type": "Container", "default": {"memory": "256Mi"}}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "providers", **meta},
         "stringData": {"anthropic": "copied-credential"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "manifest", **meta},
         "data": {"manifest.json": "{}"}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "state", **meta},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "portal", **meta},
         "spec": {"selector": pod_labels, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "agent", **meta},
         "spec": {"replicas": 1, "selector": {"matchLabels": pod_labels},
                  "template": {"metadata": {"labels": pod_labels}, "spec": {
                      "serviceAccountName": "runtime",
                      "containers": [{"name": "agent", "image": "example.invalid/agent:1"}]}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "default-deny", **meta},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "domains", **meta},
         "spec": {"rules": [{"host": "acme.portal.exocorp.localhost", "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": "portal", "port": {"number": 80}}}}]}}]}},
    ]


def test_operator_does_its_runtime_writes_with_its_own_permissions(
    kubectl: Kubectl, release: Release,
) -> None:
    """The writes of a provision → update → destroy pass, made as the operator's ServiceAccount:
    a namespace for an exocorp, its runtime objects, patches, an event, a revision in the
    platform namespace, a peering keep-alive, then the namespace's deletion."""
    op = release.sa("operator")
    ns = f"exo-runtime-{uuid.uuid4().hex[:8]}"
    kubectl.apply([_managed_namespace(ns)], "--server-side", "--field-manager=exocorp", as_=op)
    try:
        # server-side apply, as the operator writes: no read first (Secrets are write-only)
        created = kubectl.apply(_runtime_objects(ns), "--server-side",
                                "--field-manager=exocorp", as_=op).stdout
        assert created.count("serverside-applied") == len(_runtime_objects(ns))
        unreadable = kubectl.run("get", "secret", "providers", "-n", ns, as_=op, check=False)
        assert unreadable.returncode != 0
        assert "forbidden" in unreadable.stderr.lower()
        # update: patch the workload, re-apply the copied credential (kubectl patch would read
        # it first, which the operator may not)
        kubectl.run("patch", "deployment", "agent", "-n", ns, "--type=merge", "-p",
                    '{"spec":{"replicas":2}}', as_=op)
        rotated = {"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "providers", "namespace": ns, "labels": MANAGED_BY},
                   "stringData": {"anthropic": "rotated"}}
        kubectl.apply([rotated], "--server-side", "--field-manager=exocorp", as_=op)
        kubectl.run("get", "pods", "-n", ns, as_=op)
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": "agent.rollout", "namespace": ns},
                 "involvedObject": {"kind": "Deployment", "name": "agent", "namespace": ns,
                                    "apiVersion": "apps/v1"},
                 "reason": "Progressing", "message": "revision 2 rolling out", "type": "Normal"}
        # kopf posts events: create only (no get, so not `kubectl apply`)
        kubectl.run("create", "-f", "-", stdin=yaml.safe_dump(event), as_=op)
        revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": f"{ns}-2", "namespace": release.namespace},
                    "revision": 2, "data": {"release": "1.2.0"}}
        kubectl.apply([revision], as_=op)
        kubectl.run("patch", "clusterkopfpeering", "exocorp", "--type=merge", "-p",
                    '{"status":{"test-peer":null}}', as_=op)
        # refused: anything that would widen its own rights or bypass the workloads
        refused = kubectl.apply([{
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "grab", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "runtime", "namespace": ns}],
        }], as_=op, check=False)
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower()
        nodes = kubectl.run("delete", "node", "kwok-node-0", "--dry-run=server", as_=op,
                            check=False)
        assert nodes.returncode != 0
        assert "forbidden" in nodes.stderr.lower()
        # destroy
        kubectl.run("delete", "controllerrevision", f"{ns}-2", "-n", release.namespace, as_=op)
        kubectl.run("delete", "namespace", ns, "--wait=false", as_=op)
    finally:
        delete_namespace(kubectl, ns)


MANAGED_BY = {"app.kubernetes.io/managed-by": "exocorp-operator"}


def _managed_namespace(name: str) -> Obj:
    """A runtime namespace as the operator creates it (its managed-by label)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**MANAGED_BY, "exocorp.io/test": "1"}}}


def _token_secret(name: str, namespace: str, labels: dict[str, str]) -> Obj:
    """Creating this makes the token controller mint a token for the ``default`` account."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": {"kubernetes.io/service-account.name": "default"}}}


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and "forbidden" in result.stderr.lower()


def test_the_operator_cannot_write_outside_the_namespaces_it_manages(
    kubectl: Kubectl, release: Release,
) -> None:
    """Issue 13, item 5: the ClusterRole lets the operator create and patch Secrets,
    Deployments and Namespaces anywhere; the chart's ValidatingAdmissionPolicy confines those
    writes. Each attack is a real write as the operator's ServiceAccount (impersonated) against
    the real API server; writes go by server-side apply or create, which need no read first
    (the operator may not read Secrets there)."""
    op = release.sa("operator")
    suffix = uuid.uuid4().hex[:8]
    victim = f"victim-{suffix}"
    value = "kube-system-secret-value"
    kubectl.run("create", "secret", "generic", victim, "-n", "kube-system",
                f"--from-literal=password={value}")
    foreign = new_namespace(kubectl, f"team-{suffix}", restricted=False)
    managed = f"exo-confined-{suffix}"
    kubectl.apply([_managed_namespace(managed)], "--server-side", "--field-manager=exocorp",
                  as_=op)
    kubectl.run("create", "secret", "generic", "tls-like", "-n", managed,
                "--from-literal=tls.key=k")  # someone else's Secret in a managed namespace

    def secret(name: str, namespace: str) -> Obj:
        return {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": MANAGED_BY}}

    ssa = ("--server-side", "--field-manager=exocorp")
    attacks: dict[str, subprocess.CompletedProcess[str]] = {
        # an empty patch of any Secret answered with its content
        "empty patch of a kube-system Secret": kubectl.apply(
            [secret(victim, "kube-system")], *ssa, "-o", "json", as_=op, check=False),
        # a service-account-token Secret makes the token controller mint a token
        "token Secret in kube-system": kubectl.apply(
            [_token_secret(f"grab-{suffix}", "kube-system", MANAGED_BY)], *ssa, as_=op,
            check=False),
        "token Secret in a managed namespace": kubectl.apply(
            [_token_secret(f"grab-{suffix}", managed, MANAGED_BY)], *ssa, as_=op, check=False),
        "Deployment in a foreign namespace": kubectl.run(
            "create", "deployment", "grab", "--image=example.invalid/x:1", "-n", foreign,
            as_=op, check=False),
        "ConfigMap in a foreign namespace": kubectl.run(
            "create", "configmap", "grab", "--from-literal=a=b", "-n", foreign, as_=op,
            check=False),
        "labelling a foreign namespace into reach": kubectl.apply(
            [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": foreign, "labels": MANAGED_BY}}], *ssa, as_=op, check=False),
        "deleting a foreign namespace": kubectl.run(
            "delete", "namespace", foreign, "--wait=false", as_=op, check=False),
        "patching an unlabelled Secret in a managed namespace": kubectl.apply(
            [secret("tls-like", managed)], *ssa, "-o", "json", as_=op, check=False),
    }
    try:
        admitted = [what for what, result in attacks.items() if not _refused(result)]
        leaked = [what for what, result in attacks.items()
                  if value in result.stdout
                  or base64.b64encode(value.encode()).decode() in result.stdout]
        assert (admitted, leaked) == ([], []), f"{len(admitted)} of {len(attacks)} admitted"
        assert "deletionTimestamp" not in kubectl.get("namespace", foreign)["metadata"]
        # its normal work in a namespace it manages still goes through
        kubectl.apply(_runtime_objects(managed), *ssa, as_=op)
        kubectl.run("delete", "deployment", "agent", "-n", managed, as_=op)
        kubectl.run("delete", "namespace", managed, "--wait=false", as_=op)
    finally:
        kubectl.run("delete", "secret", f"grab-{suffix}", "-n", "kube-system",
                    "--ignore-not-found", check=False)
        kubectl.run("delete", "secret", victim, "-n", "kube-system", check=False)
        delete_namespace(kubectl, foreign)
        delete_namespace(kubectl, managed)


def test_gateway_keeps_credentials_in_the_platform_namespace_only(
    kubectl: Kubectl, release: Release,
) -> None:
    gw = release.sa("gateway")
    kubectl.run("create", "secret", "generic", "provider-anthropic", "-n", release.namespace,
                "--from-literal=value=sk-test", as_=gw)
    kubectl.run("get", "secret", "provider-anthropic", "-n", release.namespace, as_=gw)
    kubectl.run("get", "nodes", as_=gw)
    denied = kubectl.run("get", "secrets", "-n", "kube-system", as_=gw, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    kubectl.run("delete", "secret", "provider-anthropic", "-n", release.namespace, as_=gw)


def test_a_token_kubeconfig_for_the_operator_carries_exactly_its_rights(
    kubectl: Kubectl, release: Release, tmp_path: Path,
) -> None:
    """How the real operator runs with the chart's RBAC outside the cluster: a kubeconfig with
    its ServiceAccount's token (no impersonation involved)."""
    config = service_account_kubeconfig(
        kubectl.cluster.kubectl, kubectl.cluster.kubeconfig, release.namespace,
        f"{release.fullname}-operator", tmp_path / "operator.kubeconfig")

    def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(kubectl.cluster.kubectl), f"--kubeconfig={config}", *args],
                              capture_output=True, text=True, check=False)

    whoami = as_operator("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == release.sa("operator")
    assert as_operator("get", "exocorps").returncode == 0
    assert as_operator("get", "clusterkopfpeering", "exocorp").returncode == 0
    refused = as_operator("create", "clusterrole", "grab", "--verb=*", "--resource=*")
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()


# --- the real operator with the chart's flags and RBAC ------------------------------------------

@pytest.fixture
def chart_operator(kubectl: Kubectl, release: Release, tmp_path: Path) -> Iterator[OperatorProcess]:
    """`exocorp operator` as the chart runs it: the Deployment's arguments, the release namespace
    as platform namespace, and its ServiceAccount's token (so exactly the chart's RBAC). A high
    peering priority makes any other peered operator on this cluster pause meanwhile."""
    deployment = kubectl.get("deployment", f"{release.fullname}-operator", "-n",
                             release.namespace)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "operator"
    chart_args = [a for a in args[1:]
                  if not a.startswith(("--metrics-port=", "--metrics-host="))]
    config = service_account_kubeconfig(
        kubectl.cluster.kubectl, kubectl.cluster.kubeconfig, release.namespace,
        f"{release.fullname}-operator", tmp_path / "operator.kubeconfig")
    proc = OperatorProcess(config, tmp_path / "operator", resync_seconds=1.0, extra_args=(
        *chart_args, "--namespace", release.namespace, "--priority", "100"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_the_operator_with_the_chart_rbac_provisions_updates_rolls_back_and_destroys(
    kube: Kube, release: Release, chart_operator: OperatorProcess, prometheus: PrometheusFactory,
) -> None:
    """The issue's acceptance test for the RBAC: a whole provision → update → rollback →
    destroy cycle by the real operator holding only the chart's permissions; nothing it
    asked for was forbidden. On the way, a real Prometheus scrapes that operator and its
    exocorps-by-phase series agrees with the API. (Another operator reconciling exocorps at the
    same time, e.g. a standalone one started by other tests, would blur this; none runs before
    this module in a normal session.)"""
    for version in ("1.0.0", "1.1.0"):
        await kube.apply(r.RELEASES, samples.release(version))
    account = f"acct{uuid.uuid4().hex[:6]}"
    await kube.apply(r.SECRETS, samples.provider_secret(
        f"{account}-anthropic", release.namespace, account, "anthropic", "sk-chart-test"))
    name = f"chart-{uuid.uuid4().hex[:6]}"
    caller = perform.Caller(actor=f"user:{account}", draft=samples.draft("1.0.0"))

    async def current() -> Exocorp:
        return Exocorp.model_validate(await kube.get(r.EXOCORPS, name))

    async def act(action: str, **fields: Any) -> None:
        request = ActionRequest.model_validate({"action": action, **fields})
        await perform.perform(kube, release.namespace, name, request, caller)

    def settled_at(version: str) -> Any:
        def accept(exo: Exocorp) -> bool:
            rollout = exo.status.rollout
            return (exo.status.phase == "Running" and exo.spec.release is not None
                    and exo.spec.release.version == version
                    and (exo.status.observed_generation or 0) >= (exo.metadata.generation or 0)
                    and rollout is not None and rollout.outcome.value != "Progressing")
        return accept

    await kube.create(r.EXOCORPS, samples.exocorp(name, account))
    try:
        await eventually(current, lambda e: e.status.phase == "Draft", within=60,
                         what=f"{name} Draft")
        await act("provision")
        exo = await eventually(current, settled_at("1.0.0"), what=f"{name} provisioned")
        first = exo.status.current_revision
        runtime = await kube.get(r.NAMESPACES, runtime_namespace(name))
        assert runtime["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        revisions = (await kube.list(r.CONTROLLERREVISIONS, release.namespace))["items"]
        assert any(rev["metadata"]["name"].startswith(name) for rev in revisions)
        await _prometheus_sees_the_fleet(kube, chart_operator, prometheus)

        await act("update")
        exo = await eventually(current, settled_at("1.1.0"), what=f"{name} updated")
        assert exo.status.current_revision != first

        await act("rollback")
        exo = await eventually(current, settled_at("1.0.0"), what=f"{name} rolled back")

        await act("destroy", confirm=name)
        await eventually(lambda: kube.get_or_none(r.EXOCORPS, name), lambda e: e is None,
                         what=f"{name} destroyed")
        await eventually(lambda: kube.get_or_none(r.NAMESPACES, runtime_namespace(name)),
                         lambda ns: ns is None, what="its runtime namespace deleted")
    finally:
        if await kube.get_or_none(r.EXOCORPS, name) is not None:  # a failed run: clean up
            await kube.patch(r.EXOCORPS, name, {"metadata": {"finalizers": None}})
            await kube.delete(r.EXOCORPS, name)
        if await kube.get_or_none(r.NAMESPACES, runtime_namespace(name)) is not None:
            await kube.delete(r.NAMESPACES, runtime_namespace(name))
    log = chart_operator.log.read_text()
    assert "Forbidden" not in log, "the operator was refused something it needs"
    assert 'exocorp_operator_reconciles_total{result="success"}' in chart_operator.metrics()


async def _prometheus_sees_the_fleet(
    kube: Kube, operator: OperatorProcess, prometheus: PrometheusFactory,
) -> None:
    """Prometheus scrapes the operator (job `exocorp-operator`, as the chart's monitors name
    it) with the platform's alerts loaded; `exocorp_exocorps` by phase equals what the API
    says, and the operator-down alert stays quiet."""
    prom = prometheus([ScrapeTarget("exocorp-operator", f"127.0.0.1:{operator.metrics_port}")],
                      rule_files=[REPO / "manifests" / "monitoring" / "alerts.yaml"])

    async def api_phases() -> dict[str, float]:
        counts: dict[str, float] = {}
        for item in (await kube.list(r.EXOCORPS))["items"]:
            phase = (item.get("status") or {}).get("phase")
            if phase:
                counts[phase] = counts.get(phase, 0) + 1
        return counts

    async def agree() -> bool:
        series = prom.query('exocorp_exocorps{job="exocorp-operator"} > 0')
        scraped = {s["metric"]["phase"]: float(s["value"][1]) for s in series}
        return bool(scraped) and scraped == await api_phases()

    await eventually(agree, what="Prometheus's exocorps by phase equal to the API's")
    phases = {s["metric"]["phase"] for s in prom.query('exocorp_exocorps{job="exocorp-operator"}')}
    assert {"Running", "Failed", "Draft"} <= phases, "every phase is exported, zeros included"
    assert prom.query('up{job="exocorp-operator"}')[0]["value"][1] == "1"


    async def operator_down_rule() -> dict[str, Any]:
        return next(rule for g in prom.rules() for rule in g["rules"]
                    if rule["name"] == "ExocorpOperatorDown")

    # Evaluated (health ok) and not pending: an evaluation saw the operator's target up.
    await eventually(operator_down_rule,
                     lambda rule: rule["health"] == "ok" and rule["state"] == "inactive",
                     within=60, what="ExocorpOperatorDown evaluated and quiet")


# --- the real gateway with the chart's arguments, environment and RBAC ---------------------------

OWNER_EMAIL = "owner@chart-test.example"
OWNER_PASSWORD = "chart-owner-password-1"  # a test value, bootstrapped from a file as in the pod


@dataclass
class GatewayRun:
    url: str
    port: int
    process: ManagedProcess
    metrics_port: int


def http(method: str, url: str, body: object = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def chart_gateway(kubectl: Kubectl, release: Release, tmp_path: Path) -> Iterator[GatewayRun]:
    """`exocorp gateway` as the chart runs it: the Deployment's arguments and environment (the
    SQLite file and the owner's password file moved under tmp_path, loopback instead of
    0.0.0.0) and its ServiceAccount's token, so exactly the chart's RBAC."""
    owner = template_args(sets=[f"platformOwner.email={OWNER_EMAIL}",
                                "platformOwner.existingSecret=owner"])
    rendered = [o for o in yaml.safe_load_all(release.helm(
        "template", release.name, str(CHART), *owner).stdout) if o]
    (dep,) = [o for o in rendered if o["kind"] == "Deployment"
              and o["metadata"]["name"] == f"{release.fullname}-gateway"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    password_file = tmp_path / "owner-password"
    password_file.write_text(OWNER_PASSWORD)
    env = dict(os.environ)
    for var in container["env"]:
        if var["name"] == "EXOCORP_NAMESPACE":
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[var["name"]] = release.namespace
        elif var["name"] == "DATABASE_URL":
            assert var["value"].startswith("sqlite+aiosqlite:////var/lib/exocorp/")
            env[var["name"]] = f"sqlite+aiosqlite:///{tmp_path / 'exocorp.db'}"
        elif var["name"] == "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE":
            env[var["name"]] = str(password_file)
        elif var["name"] == "EXOCORP_MEMORY_LIMIT_BYTES":  # the kubelet gives the limit in bytes
            assert var["valueFrom"]["resourceFieldRef"]["resource"] == "limits.memory"
            limit = container["resources"]["limits"]["memory"]
            assert limit.endswith("Mi"), limit
            env[var["name"]] = str(int(limit.removesuffix("Mi")) * 2**20)
        else:
            env[var["name"]] = var["value"]
    env.pop("KUBECONFIG", None)
    config = service_account_kubeconfig(
        kubectl.cluster.kubectl, kubectl.cluster.kubeconfig, release.namespace,
        f"{release.fullname}-gateway", tmp_path / "gateway.kubeconfig")
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "exocorp.cli", *container["args"], "--kubeconfig", str(config),
            "--host", "127.0.0.1", f"--port={port}", f"--metrics-port={metrics_port}"]
    process = spawn("gateway", argv, tmp_path / "gateway.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http("GET", f"{url}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if not process.alive() or time.monotonic() > deadline:
                raise AssertionError(f"gateway not ready; its log:\n{process.log_tail()}")
            time.sleep(0.25)
        yield GatewayRun(url, port, process, metrics_port)
    finally:
        process.stop()


def test_the_gateway_with_the_chart_rbac_serves_and_is_scraped(
    chart_gateway: GatewayRun, prometheus: PrometheusFactory,
) -> None:
    """Ready means its watch cache listed and watches Exocorps, releases and the credential
    Secrets of the platform namespace with the chart's RBAC; the first platform owner came from
    the password file; a real Prometheus scrapes it under the chart's job name."""
    assert http("GET", f"{chart_gateway.url}/healthz")[0] == 200
    status, body = http("GET", f"{chart_gateway.url}/readyz")
    assert status == 200, body
    status, body = http("POST", f"{chart_gateway.url}/api/auth/login",
                        {"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    assert status == 200, body
    assert body["user"]["platformOwner"] is True

    # /metrics is on its own port, which the chart's Ingress does not route; never the public one.
    with pytest.raises(urllib.error.HTTPError) as public:
        urllib.request.urlopen(f"{chart_gateway.url}/metrics", timeout=10)
    assert public.value.code == 404
    prom = prometheus([ScrapeTarget("exocorp-gateway",
                                    f"127.0.0.1:{chart_gateway.metrics_port}")])
    series = prom.wait_until(
        'exocorp_gateway_http_requests_total{job="exocorp-gateway", route="/api/auth/login"}')
    assert series[0]["metric"]["status"] == "200"
    assert series[0]["metric"]["method"] == "POST"
    cache = prom.wait_until('exocorp_gateway_watch_cache_last_event_timestamp_seconds > 0')
    assert float(cache[0]["value"][1]) > 0
    assert prom.query('up{job="exocorp-gateway"}')[0]["value"][1] == "1"
    log = chart_gateway.process.log.read_text()
    assert "Forbidden" not in log, "the gateway was refused something it needs"
    assert OWNER_PASSWORD not in log
