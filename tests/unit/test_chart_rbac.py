"""The chart's RBAC is exactly the contract of docs/deployment.md ("RBAC"): every resource and
verb each process uses, and nothing that could grant itself more. (What the API server then
allows is checked by impersonation in tests/integration/test_chart_cluster.py.)"""

from __future__ import annotations

import itertools

import pytest

from tests.plugins.monitoring import Obj, helm_template, one

pytestmark = pytest.mark.unit

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)
CRUD = ("get", "list", "watch", "create", "patch", "delete")
READ = ("get", "list", "watch")


def grants(*groups_resources: tuple[str, tuple[str, ...]], verbs: tuple[str, ...]) -> set[Grant]:
    return {(g, r, v) for g, resources in groups_resources for r in resources for v in verbs}


OPERATOR_CLUSTER: set[Grant] = (
    grants(("exocorp.io", ("exocorps", "exocorpreleases")),
           verbs=("get", "list", "watch", "patch", "update"))
    | grants(("exocorp.io", ("exocorps/status", "exocorpreleases/status")),
             verbs=("get", "patch", "update"))
    | grants(("exocorp.io", ("exocorps/finalizers",)), verbs=("update",))
    | grants(("", ("namespaces",)), verbs=CRUD)
    | grants(("", ("serviceaccounts", "resourcequotas", "limitranges", "configmaps",
                   "services", "persistentvolumeclaims")), verbs=CRUD)
    # Secrets outside the platform namespace: write-only (credential copies).
    | grants(("", ("secrets",)), verbs=("create", "patch"))
    | grants(("cert-manager.io", ("certificates",)), verbs=("get",))
    | grants(("apps", ("deployments",)), verbs=CRUD)
    | grants(("networking.k8s.io", ("networkpolicies", "ingresses")), verbs=CRUD)
    | grants(("", ("pods",)), verbs=READ)
    | grants(("", ("events",)), ("events.k8s.io", ("events",)), verbs=("create", "patch"))
    | grants(("apiextensions.k8s.io", ("customresourcedefinitions",)), verbs=READ)
    | grants(("kopf.dev", ("clusterkopfpeerings",)), verbs=("get", "list", "watch", "patch"))
    # kopf watches every resource it handles at the cluster scope, revisions included.
    | grants(("apps", ("controllerrevisions",)), verbs=READ)
)
OPERATOR_PLATFORM_NS: set[Grant] = (
    grants(("", ("secrets",)), verbs=READ)
    | grants(("apps", ("controllerrevisions",)), verbs=("create", "update", "patch", "delete"))
    | grants(("coordination.k8s.io", ("leases",)),
             verbs=("get", "list", "watch", "create", "update", "patch"))
)
GATEWAY_CLUSTER: set[Grant] = (
    grants(("exocorp.io", ("exocorps",)), verbs=CRUD)
    | grants(("exocorp.io", ("exocorpreleases",)), verbs=READ)
    | grants(("", ("nodes", "pods", "events")), verbs=READ)
)
GATEWAY_PLATFORM_NS: set[Grant] = (
    grants(("", ("secrets",)), verbs=CRUD)
    | grants(("coordination.k8s.io", ("leases",)),
             verbs=("get", "list", "watch", "create", "update", "patch"))
    | grants(("apps", ("controllerrevisions",)), verbs=READ)
)
# Verbs and groups that let a subject grant itself (or anyone) more than its role.
ESCALATING_VERBS = {"*", "escalate", "bind", "impersonate", "approve", "sign"}
RBAC_GROUP = "rbac.authorization.k8s.io"


def expand(role: Obj) -> set[Grant]:
    out: set[Grant] = set()
    for rule in role["rules"]:
        assert "resourceNames" not in rule
        assert "nonResourceURLs" not in rule
        out |= set(itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"]))
    return out


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return helm_template()


@pytest.mark.parametrize(("kind", "name", "expected"), [
    ("ClusterRole", "exocorp-operator", OPERATOR_CLUSTER),
    ("Role", "exocorp-operator", OPERATOR_PLATFORM_NS),
    ("ClusterRole", "exocorp-gateway", GATEWAY_CLUSTER),
    ("Role", "exocorp-gateway", GATEWAY_PLATFORM_NS),
])
def test_roles_grant_exactly_the_contract(
    objects: list[Obj], kind: str, name: str, expected: set[Grant],
) -> None:
    granted = expand(one(objects, kind, name))
    assert granted - expected == set(), "granted beyond the contract"
    assert expected - granted == set(), "missing from the role"


def test_no_role_can_touch_rbac_or_escalate(objects: list[Obj]) -> None:
    for role in [o for o in objects if o["kind"] in ("ClusterRole", "Role")]:
        for group, resource, verb in expand(role):
            assert group != RBAC_GROUP, f"{role['metadata']['name']} may {verb} {resource}"
            assert verb not in ESCALATING_VERBS
            assert "*" not in (group, resource)
            assert resource not in ("serviceaccounts/token", "pods/exec", "pods/attach",
                                    "nodes/proxy", "certificatesigningrequests")


def test_gateway_reads_secrets_only_in_the_platform_namespace(objects: list[Obj]) -> None:
    cluster = expand(one(objects, "ClusterRole", "exocorp-gateway"))
    assert not {g for g in cluster if g[1] == "secrets"}
    role = one(objects, "Role", "exocorp-gateway")
    assert role["metadata"]["namespace"] == "exocorp-system"
    assert ("", "secrets", "get") in expand(role)


def test_no_role_reads_secrets_outside_the_platform_namespace(objects: list[Obj]) -> None:
    """Both processes may read Secrets in the platform namespace only: the operator writes the
    credential copies in exocorp namespaces without ever reading them."""
    for name in ("exocorp-operator", "exocorp-gateway"):
        cluster = expand(one(objects, "ClusterRole", name))
        assert not {g for g in cluster if g[1] == "secrets" and g[2] in READ}, name
        role = one(objects, "Role", name)
        assert role["metadata"]["namespace"] == "exocorp-system"
        assert {("", "secrets", verb) for verb in READ} <= expand(role)


def test_revision_writes_and_leases_are_confined_to_the_platform_namespace(
    objects: list[Obj],
) -> None:
    for name in ("exocorp-operator", "exocorp-gateway"):
        cluster = expand(one(objects, "ClusterRole", name))
        assert not {g for g in cluster if g[1] == "leases"}
        assert {g[2] for g in cluster if g[1] == "controllerrevisions"} <= set(READ)


def test_each_role_is_bound_to_its_own_service_account_only(objects: list[Obj]) -> None:
    for binding in [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]:
        name = binding["metadata"]["name"]
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                        "namespace": "exocorp-system"}]
