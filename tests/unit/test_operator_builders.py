"""The runtime objects the operator builds for an exocorp (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from exocorp import names
from exocorp.model import Exocorp, ExocorpReleaseSpec
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders
from exocorp.testing import samples

pytestmark = pytest.mark.unit
SETTINGS = OperatorSettings(tls_issuer="letsencrypt")


def _exo(**spec: Any) -> Exocorp:
    body = samples.exocorp("acme", "alice")
    draft = samples.draft("1.0.0")
    body["metadata"].update(uid="u-1", generation=2)
    body["spec"].update(provisioned=True, release={"channel": "stable", "version": "1.0.0"},
                        config=draft["config"],
                        providerBindings=[{"provider": "anthropic", "secretName": "a-anth"}])
    body["spec"].update(spec)
    return Exocorp.model_validate(body)


def _release(**overrides: Any) -> ExocorpReleaseSpec:
    spec = samples.release("1.0.0")["spec"]
    spec.update(overrides)
    return ExocorpReleaseSpec.model_validate(spec)


def _inputs(release: ExocorpReleaseSpec | None = None) -> builders.RuntimeInputs:
    return builders.RuntimeInputs(release=release or _release(), revision="acme-abc",
                                  credentials={"ANTHROPIC_API_KEY": "c2stMQ=="},
                                  settings=SETTINGS)


def test_namespace_enforces_restricted_pod_security_and_is_owned() -> None:
    ns = builders.namespace(_exo())
    assert ns["metadata"]["name"] == "exo-acme"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (owner,) = ns["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Exocorp", "acme", "u-1")


def test_deployment_is_restricted_and_carries_restart_and_credentials_stamps() -> None:
    exo = _exo(restartAt="2026-01-01T00:00:00Z")
    release = _release()
    dep = builders.deployment(exo, release.components[0], _inputs(release))
    pod = dep["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "runAsNonRoot": True, "runAsUser": 65532, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["annotations"][names.ANNOTATION_RESTART_AT] == "2026-01-01T00:00:00Z"
    assert "exocorp.io/credentials-hash" in pod["metadata"]["annotations"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert pod["metadata"]["labels"][names.LABEL_REVISION] == "acme-abc"
    # The portal mounts the state volume.
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "state"}} in \
        pod["spec"]["volumes"]


def test_credential_rotation_changes_the_pod_template() -> None:
    exo = _exo()
    release = _release()
    one = builders.deployment(exo, release.components[0], _inputs(release))
    rotated = builders.RuntimeInputs(release=release, revision="acme-abc",
                                     credentials={"ANTHROPIC_API_KEY": "c2stMg=="},
                                     settings=SETTINGS)
    two = builders.deployment(exo, release.components[0], rotated)
    assert one["spec"]["template"] != two["spec"]["template"]


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, {"portal": 1, "app": 1, "agents": 2}),
    ({"paused": True, "pauseReason": "r"}, {"portal": 1, "app": 1, "agents": 0}),
    ({"stopped": True}, {"portal": 0, "app": 0, "agents": 0}),
])
def test_replicas_follow_pause_and_stop(spec: dict[str, Any], expected: dict[str, int]) -> None:
    exo = _exo(**spec)
    assert {c.name: builders.desired_replicas(exo, c) for c in _release().components} == expected


def test_component_size_from_config_wins_over_release_resources() -> None:
    exo = _exo()
    agents = _release().components[2]
    assert builders.container_resources(exo, agents)["requests"] == {
        "cpu": "500m", "memory": "1Gi"}


def test_quota_leaves_room_for_a_rolling_update() -> None:
    quota = builders.resource_quota(_exo(), _release())["spec"]["hard"]
    # portal + app small (100m), agents medium (500m) x2 -> 1.2 CPU, doubled for the surge.
    assert quota["requests.cpu"] == "2400m"
    assert quota["pods"] == str(4 * 2 + 2)
    assert quota["persistentvolumeclaims"] == "2"  # a killed create stays charged for a while


@pytest.mark.parametrize(("resources", "hard"), [
    # Agents x2 at 250m CPU requested, nothing else written: the LimitRange gives each 256Mi
    # requested and 500m / 512Mi of limits. Portal and app are small (100m/256Mi, 500m/512Mi).
    ({"requests": {"cpu": "250m"}},
     {"requests.cpu": "1400m", "requests.memory": "2048Mi",
      "limits.cpu": "4000m", "limits.memory": "4096Mi"}),
    # Agents x2 with a 1Gi memory limit only: the memory request is the limit (1Gi), the CPU
    # request and limit the LimitRange's defaults (100m, 500m).
    ({"limits": {"memory": "1Gi"}},
     {"requests.cpu": "800m", "requests.memory": "5120Mi",
      "limits.cpu": "4000m", "limits.memory": "6144Mi"}),
])
def test_quota_counts_what_the_limit_range_fills_in(resources: dict[str, Any],
                                                    hard: dict[str, str]) -> None:
    """A release that leaves a request or limit out gets the LimitRange's default at
    admission; the quota must have room for it, or the pods are refused (exceeded quota)."""
    spec = samples.release("1.0.0")["spec"]
    spec["components"][2]["resources"] = resources
    exo = _exo(config={"componentSizes": {}})
    agents = ExocorpReleaseSpec.model_validate(spec)
    quota = builders.resource_quota(exo, agents)["spec"]["hard"]
    assert {key: quota[key] for key in hard} == hard  # doubled for the surge
    # The Deployment still carries only what the release wrote; admission adds the rest.
    assert builders.container_resources(exo, agents.components[2]) == resources


def test_ingress_routes_both_domains_with_tls_and_none_while_stopped() -> None:
    route = builders.ingress(_exo(), _release(), SETTINGS)
    assert route is not None
    assert route["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert [r["host"] for r in route["spec"]["rules"]] == [
        "acme.portal.exocorp.localhost", "acme.app.exocorp.localhost"]
    assert route["spec"]["tls"][0]["secretName"] == "acme-tls"
    assert builders.ingress(_exo(stopped=True), _release(), SETTINGS) is None


def test_network_policies_deny_by_default_and_admit_the_ingress_controller() -> None:
    policies = {p["metadata"]["name"]: p for p in
                builders.network_policies(_exo(), _release(), SETTINGS)}
    assert policies["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ingress = policies["allow-ingress-controller"]["spec"]
    assert ingress["podSelector"]["matchExpressions"][0]["values"] == ["app", "portal"]
    assert [p["port"] for p in ingress["ingress"][0]["ports"]] == [8000, 8080]


def test_credentials_secret_holds_copied_values_under_provider_keys() -> None:
    secret = builders.credentials_secret(_exo(), {"ANTHROPIC_API_KEY": "c2stMQ=="})
    assert secret["data"] == {"ANTHROPIC_API_KEY": "c2stMQ=="}
    assert builders.credential_key("open-ai") == "OPEN_AI_API_KEY"


def test_builders_are_deterministic() -> None:
    exo, release = _exo(), _release()
    first = [builders.deployment(exo, c, _inputs(release)) for c in release.components]
    second = [builders.deployment(exo, c, _inputs(release)) for c in release.components]
    assert builders.stable_hash(first) == builders.stable_hash(second)


def test_pausing_changes_only_the_agent_workloads() -> None:
    release = _release()
    running, paused = _exo(), _exo(paused=True, pauseReason="review")
    for component in release.components:
        before = builders.deployment(running, component, _inputs(release))
        after = builders.deployment(paused, component, _inputs(release))
        # The portal and app keep their pods: same template, same replicas.
        assert before["spec"]["template"] == after["spec"]["template"]
        assert (before["spec"]["replicas"] == after["spec"]["replicas"]) is not component.agent
