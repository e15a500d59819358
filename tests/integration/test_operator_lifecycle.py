"""Every lifecycle action end to end on the real control plane: the operator as a process,
kwok running the pods, actions written through the lifecycle API as the gateway writes them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Phase, RevisionOutcome
from exocorp.names import runtime_namespace
from exocorp.testing.platform import PLATFORM_NAMESPACE, OperatorProcess
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.platform import CANARY_SECRET, Driver

pytestmark = pytest.mark.integration


async def _pods(kube: Kube, name: str) -> list[dict[str, Any]]:
    items = (await kube.list(r.PODS, runtime_namespace(name)))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def test_provision_builds_a_restricted_runtime_and_reaches_running(
    driver: Driver, cluster: ClusterInfo
) -> None:
    kube = driver.kube
    name = await driver.create("prov")
    draft = await driver.wait(name, "Draft")
    assert [d.routing.value for d in draft.status.domains] == ["pending", "pending"]
    await driver.act(name, "provision")
    exo = await driver.wait(name, "Running")

    assert exo.status.history[0].outcome == RevisionOutcome.SUCCEEDED
    assert exo.status.history[0].action is not None
    assert exo.status.history[0].action.value == "provision"
    assert exo.status.history[0].requested_by == f"user:{driver.account}"
    assert exo.status.last_successful_revision == exo.status.current_revision
    conditions = {c.type.value: c.status.value for c in exo.status.conditions}
    assert conditions["Ready"] == "True"
    assert conditions["CredentialsBound"] == "True"
    assert conditions["DomainsAttached"] == "True"
    assert {c.name: (c.ready, c.desired) for c in exo.status.components} == {
        "portal": (1, 1), "app": (1, 1), "agents": (2, 2)}
    assert {d.host: d.routing.value for d in exo.status.domains} == {
        f"{name}.portal.exocorp.localhost": "attached", f"{name}.app.exocorp.localhost": "attached"}

    ns = runtime_namespace(name)
    namespace = await kube.get(r.NAMESPACES, ns)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    sa = await kube.get(r.SERVICEACCOUNTS, "exocorp-runtime", ns)
    assert sa["automountServiceAccountToken"] is False
    quota = await kube.get(r.RESOURCEQUOTAS, "exocorp-quota", ns)
    assert quota["spec"]["hard"]["services.loadbalancers"] == "0"
    policies = {p["metadata"]["name"]: p for p in (await kube.list(r.NETWORKPOLICIES, ns))["items"]}
    assert policies["default-deny"]["spec"] == {"podSelector": {},
                                                "policyTypes": ["Ingress", "Egress"]}
    secret = await kube.get(r.SECRETS, "provider-credentials", ns)
    assert base64.b64decode(secret["data"]["ANTHROPIC_API_KEY"]).decode() == CANARY_SECRET
    manifest = await kube.get(r.CONFIGMAPS, "effective-manifest", ns)
    assert json.loads(manifest["data"]["manifest.json"])["release"]["version"] == "1.0.0"
    # The PV controller writes the claim's phase in a second update after binding it, so a pod
    # can be Running a moment before the claim reads Bound.
    claim = await eventually(lambda: kube.get(r.PVCS, "state", ns),
                             lambda c: c["status"].get("phase") == "Bound", within=30,
                             what="the state claim Bound")
    assert claim["spec"]["volumeName"]
    route = await kube.get(r.INGRESSES, "routes", ns)
    assert sorted(rule["host"] for rule in route["spec"]["rules"]) == sorted(
        [f"{name}.app.exocorp.localhost", f"{name}.portal.exocorp.localhost"])
    for pod in await _pods(kube, name):
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["status"]["phase"] == "Running"

    out = await cluster.run_kubectl("get", "exocorp", name)
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "PHASE", "VERSION", "READY"]
    assert row.split()[:4] == [name, "Running", "1.0.0", "True"]
    described = await eventually(lambda: cluster.run_kubectl("describe", "exocorp", name),
                                 lambda text: "-> Running" in text,
                                 what="events in kubectl describe")
    assert "RolloutSucceeded" in described
    assert "Ready" in described


async def test_update_makes_a_new_revision_and_replaces_the_pods(driver: Driver) -> None:
    name = await driver.running("upd")
    before = {p["metadata"]["uid"] for p in await _pods(driver.kube, name)}
    await driver.act(name, "update", version="1.1.0")
    exo = await driver.settled(name)
    assert exo.status.phase == Phase.RUNNING
    assert [(h.version, h.outcome.value) for h in exo.status.history] == [
        ("1.1.0", "Succeeded"), ("1.0.0", "Succeeded")]
    assert exo.status.current_revision is not None
    assert exo.status.current_revision.number == 2

    async def pods_replaced() -> list[dict[str, Any]]:
        return await _pods(driver.kube, name)

    pods = await eventually(pods_replaced, lambda ps: len(ps) == 4 and all(
        p["spec"]["containers"][0]["image"].endswith(":1.1.0") for p in ps), what="new pods")
    assert not before & {p["metadata"]["uid"] for p in pods}
    revisions = (await driver.kube.list(r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                                        label_selector=f"{names.LABEL_EXOCORP}={name}"))["items"]
    assert sorted(int(rev["revision"]) for rev in revisions) == [1, 2]


async def test_crash_looping_release_rolls_back_automatically(driver: Driver) -> None:
    name = await driver.running("crash")
    await driver.act(name, "update", version="1.2.0", channel="canary")

    async def rolled_back() -> Any:
        return await driver.get(name)

    exo = await eventually(rolled_back, lambda e: len(e.status.history) >= 3
                           and e.status.history[0].outcome == RevisionOutcome.SUCCEEDED
                           and e.status.phase == Phase.RUNNING, within=120, what="rollback")
    history = [(h.version, h.action.value if h.action else None, h.outcome.value,
                h.requested_by) for h in exo.status.history]
    assert history[:3] == [
        ("1.0.0", "rollback", "Succeeded", "system:exocorp-operator"),
        ("1.2.0", "update", "Failed", f"user:{driver.account}"),
        ("1.0.0", "provision", "Succeeded", f"user:{driver.account}"),
    ]
    assert "crash-looping" in (exo.status.history[1].reason or "")
    degraded = next(c for c in exo.status.conditions if c.type.value == "Degraded")
    assert (degraded.status.value, degraded.reason) == ("True", "RolledBack")
    assert exo.spec.release is not None
    assert exo.spec.release.version == "1.0.0"
    assert exo.status.rollbacks_since_success == 1
    events = (await driver.kube.list(r.EVENTS, "default",
                                     field_selector=f"involvedObject.name={name}"))["items"]
    reasons = {e["reason"] for e in events}
    assert {"RolloutFailed", "RollingBack"} <= reasons


async def test_failing_first_provision_ends_failed(driver: Driver) -> None:
    driver.draft = {**driver.draft, "version": "0.9.0", "channel": "beta"}
    name = await driver.create("fail")
    await driver.wait(name, "Draft")
    await driver.act(name, "provision")
    exo = await driver.wait(name, "Failed")
    stalled = next(c for c in exo.status.conditions if c.type.value == "Stalled")
    assert (stalled.status.value, stalled.reason) == ("True", "NoSuccessfulRevision")
    assert exo.status.last_successful_revision is None
    assert exo.status.history[0].outcome == RevisionOutcome.FAILED


async def test_pause_stops_agents_and_keeps_the_portal_then_resume(driver: Driver) -> None:
    name = await driver.running("pause")
    ns = runtime_namespace(name)
    await driver.act(name, "pause", reason="budget review")
    exo = await driver.wait(name, "Paused")
    replicas = {c.name: c.desired for c in exo.status.components}
    assert replicas == {"portal": 1, "app": 1, "agents": 0}

    async def agent_pods() -> int:
        pods = await _pods(driver.kube, name)
        return sum(1 for p in pods
                   if p["metadata"]["labels"][names.LABEL_COMPONENT] == "agents")

    await eventually(agent_pods, lambda n: n == 0, what="agents scaled to zero")
    assert await driver.kube.get_or_none(r.INGRESSES, "routes", ns) is not None
    portal = await driver.kube.get(r.DEPLOYMENTS, "portal", ns)
    assert portal["status"].get("readyReplicas") == 1
    assert next(c for c in exo.status.conditions if c.type.value == "Paused").message \
        == "budget review"

    await driver.act(name, "resume")
    await driver.wait(name, "Running")
    await eventually(agent_pods, lambda n: n == 2, what="agents back")


async def test_stop_removes_pods_and_routes_keeps_data_then_start(driver: Driver) -> None:
    name = await driver.running("stop")
    ns = runtime_namespace(name)
    claim_uid = (await driver.kube.get(r.PVCS, "state", ns))["metadata"]["uid"]
    await driver.act(name, "stop")
    exo = await driver.wait(name, "Stopped")

    async def pods() -> list[dict[str, Any]]:
        return await _pods(driver.kube, name)

    await eventually(pods, lambda ps: ps == [], what="no pods")
    assert await driver.kube.get_or_none(r.INGRESSES, "routes", ns) is None
    assert (await driver.kube.get(r.PVCS, "state", ns))["metadata"]["uid"] == claim_uid
    assert {d.routing.value for d in exo.status.domains} == {"detached"}

    await driver.act(name, "provision")
    exo = await driver.wait(name, "Running")
    assert exo.status.history[0].action is not None
    assert exo.status.history[0].action.value == "provision"
    assert (await driver.kube.get(r.PVCS, "state", ns))["metadata"]["uid"] == claim_uid


async def test_restart_replaces_every_pod(driver: Driver) -> None:
    name = await driver.running("rst")
    before = {p["metadata"]["uid"] for p in await _pods(driver.kube, name)}
    assert len(before) == 4
    await driver.act(name, "restart")
    exo = await driver.settled(name)
    assert exo.status.history[0].action is not None
    assert exo.status.history[0].action.value == "restart"

    async def pods() -> list[dict[str, Any]]:
        return await _pods(driver.kube, name)

    after = await eventually(pods, lambda ps: len(ps) == 4 and not before & {
        p["metadata"]["uid"] for p in ps}, what="every pod replaced")
    for pod in after:
        assert pod["metadata"]["annotations"][names.ANNOTATION_RESTART_AT] == exo.spec.restart_at


async def test_rollback_to_a_named_revision(driver: Driver) -> None:
    name = await driver.running("rb")
    await driver.act(name, "update", version="1.1.0")
    exo = await driver.settled(name)
    assert exo.status.phase == Phase.RUNNING
    await driver.act(name, "rollback", revision=1)
    exo = await driver.settled(name)
    assert exo.status.phase == Phase.RUNNING
    assert exo.spec.release is not None
    assert exo.spec.release.version == "1.0.0"
    first = exo.status.history[0]
    assert (first.version, first.action.value if first.action else None, first.number) == (
        "1.0.0", "rollback", 3)
    assert exo.spec.last_action is not None
    assert exo.spec.last_action.target_revision == exo.status.history[-1].name


async def test_destroy_removes_everything(driver: Driver) -> None:
    name = await driver.running("dst")
    ns = runtime_namespace(name)
    await driver.act(name, "destroy", confirm=name)

    async def gone() -> bool:
        return await driver.kube.get_or_none(r.EXOCORPS, name) is None \
            and await driver.kube.get_or_none(r.NAMESPACES, ns) is None

    await eventually(gone, within=180, what="exocorp and namespace gone")
    revisions = (await driver.kube.list(r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                                        label_selector=f"{names.LABEL_EXOCORP}={name}"))["items"]
    assert revisions == []


async def test_hand_edits_and_deletions_are_repaired(driver: Driver) -> None:
    name = await driver.running("drift")
    ns = runtime_namespace(name)
    kube = driver.kube
    await kube.delete(r.DEPLOYMENTS, "app", ns)
    await kube.delete(r.NETWORKPOLICIES, "default-deny", ns)
    await kube.patch(r.DEPLOYMENTS, "agents", {"spec": {"replicas": 7}}, namespace=ns,
                     field_manager="kubectl-edit")
    await kube.patch(r.SERVICES, "portal", {"spec": {"ports": [
        {"name": "http", "port": 9999, "targetPort": "http", "protocol": "TCP"}]}},
        namespace=ns, patch_type="merge", field_manager="kubectl-edit")
    # The credential copy is written, never read back: restored by its periodic re-apply.
    await kube.delete(r.SECRETS, "provider-credentials", ns)

    async def repaired() -> bool:
        app = await kube.get_or_none(r.DEPLOYMENTS, "app", ns)
        deny = await kube.get_or_none(r.NETWORKPOLICIES, "default-deny", ns)
        agents = await kube.get(r.DEPLOYMENTS, "agents", ns)
        portal = await kube.get(r.SERVICES, "portal", ns)
        credentials = await kube.get_or_none(r.SECRETS, "provider-credentials", ns)
        return app is not None and deny is not None and agents["spec"]["replicas"] == 2 \
            and [p["port"] for p in portal["spec"]["ports"]] == [8080] \
            and credentials is not None \
            and base64.b64decode(credentials["data"]["ANTHROPIC_API_KEY"]).decode() \
            == CANARY_SECRET

    await eventually(repaired, what="drift repaired")
    await driver.wait(name, "Running")


async def test_rotated_credential_reaches_the_runtime_and_rolls_pods(driver: Driver) -> None:
    name = await driver.running("rot")
    ns = runtime_namespace(name)
    before = {p["metadata"]["uid"] for p in await _pods(driver.kube, name)}
    await driver.bind_secret(value="sk-rotated-value-7")

    async def copied() -> str:
        secret = await driver.kube.get(r.SECRETS, "provider-credentials", ns)
        return base64.b64decode(secret["data"]["ANTHROPIC_API_KEY"]).decode()

    await eventually(copied, lambda v: v == "sk-rotated-value-7", what="rotated value copied")

    async def pods() -> list[dict[str, Any]]:
        return await _pods(driver.kube, name)

    await eventually(pods, lambda ps: len(ps) == 4 and not before & {
        p["metadata"]["uid"] for p in ps}, what="pods rolled after rotation")


async def test_operator_killed_mid_rollout_converges_without_duplicates(
    driver: Driver, operator: OperatorProcess
) -> None:
    name = await driver.running("kill")
    await driver.act(name, "update", version="1.1.0")

    async def rolling() -> Any:
        return await driver.get(name)

    await eventually(rolling, lambda e: e.status.rollout is not None
                     and e.status.rollout.number == 2, within=60, what="rollout started")
    operator.kill()
    try:
        # While the operator is down, the desired state changes again.
        await driver.act(name, "pause", reason="maintenance")
    finally:
        operator.start()
    exo = await driver.wait(name, "Paused")
    exo = await driver.settled(name)
    numbers = [h.number for h in exo.status.history]
    assert numbers == sorted(set(numbers), reverse=True), "duplicate history entries"
    revisions = (await driver.kube.list(r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                                        label_selector=f"{names.LABEL_EXOCORP}={name}"))["items"]
    assert sorted(int(rev["revision"]) for rev in revisions) == [1, 2]
    deployments = (await driver.kube.list(r.DEPLOYMENTS, runtime_namespace(name)))["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == ["agents", "app", "portal"]
    assert exo.status.history[0].outcome == RevisionOutcome.SUCCEEDED
