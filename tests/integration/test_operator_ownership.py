"""What the operator refuses to touch, on the real control plane (issue 13, items 6 and 12):

- a namespace it did not create: a tenant's exocorp whose runtime namespace name
  (``exo-<slug>``) is already taken by someone else neither adopts it, nor writes into it, nor
  deletes it on destroy; the exocorp reports Stalled with a clear event instead;
- a provider credential of another account: a spec edited with kubectl to bind another
  account's Secret is refused and the Secret's value is not copied into the runtime.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import ConditionType, Exocorp, get_condition
from exocorp.names import runtime_namespace
from exocorp.runtime.builders import CREDENTIALS_SECRET, credential_key
from exocorp.testing import samples
from exocorp.testing.platform import PLATFORM_NAMESPACE
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.platform import Driver

pytestmark = pytest.mark.integration

FOREIGN_LABELS = {"team": "payments", "exocorp.io/test": "1"}


async def _foreign_namespace(kube: Kube, name: str) -> None:
    """Another team's namespace, with something of theirs in it."""
    await kube.create(r.NAMESPACES, {"metadata": {"name": name, "labels": FOREIGN_LABELS}})
    await kube.create(r.CONFIGMAPS, {"metadata": {"name": "ledger", "namespace": name},
                                     "data": {"balance": "42"}}, name)


@contextlib.asynccontextmanager
async def _draft_named_like_a_foreign_namespace(
    driver: Driver,
) -> AsyncIterator[tuple[str, str]]:
    """A Draft exocorp (name, runtime namespace name) whose runtime namespace name another
    team's namespace already has; that namespace is deleted afterwards."""
    name = f"prod-{uuid.uuid4().hex[:6]}"
    ns = runtime_namespace(name)
    await _foreign_namespace(driver.kube, ns)
    try:
        await driver.kube.create(r.EXOCORPS, samples.exocorp(name, driver.account))
        await driver.wait(name, "Draft")
        yield name, ns
    finally:
        await driver.kube.delete(r.NAMESPACES, ns)


async def _assert_untouched(kube: Kube, name: str) -> None:
    ns = await kube.get(r.NAMESPACES, name)
    meta = ns["metadata"]
    assert meta.get("deletionTimestamp") is None, "the foreign namespace is being deleted"
    assert meta.get("ownerReferences") is None, meta.get("ownerReferences")
    assert {k: v for k, v in meta["labels"].items()
            if not k.startswith("kubernetes.io/")} == FOREIGN_LABELS
    ledger = await kube.get(r.CONFIGMAPS, "ledger", name)
    assert ledger["data"] == {"balance": "42"}
    for resource in (r.DEPLOYMENTS, r.SECRETS, r.SERVICEACCOUNTS, r.RESOURCEQUOTAS):
        managed = (await kube.list(resource, name, label_selector=(
            f"{names.LABEL_MANAGED_BY}={names.MANAGER}")))["items"]
        assert managed == [], f"the operator wrote {resource.kind}s into {name}"


async def _events(kube: Kube, exocorp: str) -> list[dict[str, Any]]:
    items = (await kube.list(r.EVENTS, "default"))["items"]
    return [e for e in items if e.get("involvedObject", {}).get("name") == exocorp]


async def _destroy_and_wait(driver: Driver, name: str) -> None:
    await driver.act(name, "destroy", confirm=name)

    async def gone() -> bool:
        return await driver.kube.get_or_none(r.EXOCORPS, name) is None

    await eventually(gone, within=120, what=f"{name} destroyed")


async def test_destroying_a_draft_leaves_a_foreign_namespace_of_the_same_name(
    driver: Driver,
) -> None:
    """The reported attack: a tenant creates a Draft ``prod`` (free) and destroys it; another
    team's ``exo-prod`` must survive."""
    async with _draft_named_like_a_foreign_namespace(driver) as (name, ns):
        await _destroy_and_wait(driver, name)
        await _assert_untouched(driver.kube, ns)
        reasons = {e["reason"]: e["message"] for e in await _events(driver.kube, name)}
        assert "NamespaceNotOwned" in reasons, reasons
        assert ns in reasons["NamespaceNotOwned"]


async def test_provisioning_into_a_foreign_namespace_stalls_and_never_adopts_it(
    driver: Driver, cluster: ClusterInfo,
) -> None:
    async with _draft_named_like_a_foreign_namespace(driver) as (name, ns):
        await driver.act(name, "provision")

        def stalled(exo: Exocorp) -> bool:
            condition = get_condition(exo.status.conditions, ConditionType.STALLED)
            return condition is not None and condition.reason == "NamespaceNotOwned"

        async def probe() -> Exocorp:
            return await driver.get(name)

        exo = await eventually(probe, stalled, within=60, what=f"{name} Stalled")
        condition = get_condition(exo.status.conditions, ConditionType.STALLED)
        assert condition is not None
        assert condition.status.value == "True"
        assert ns in condition.message
        assert "not created by this exocorp" in condition.message
        ready = get_condition(exo.status.conditions, ConditionType.READY)
        assert ready is not None
        assert ready.status.value == "False"
        described = await cluster.run_kubectl("describe", "exocorp", name)
        assert "NamespaceNotOwned" in described
        await _assert_untouched(driver.kube, ns)

        await _destroy_and_wait(driver, name)
        await _assert_untouched(driver.kube, ns)


async def test_a_kubectl_edited_binding_to_another_accounts_credential_is_refused(
    driver: Driver, cluster: ClusterInfo,
) -> None:
    """Only the gateway checked that a bound Secret belongs to the owner; someone editing the
    spec with kubectl bound another account's credential and the operator copied it."""
    kube = driver.kube
    victim = f"acct{uuid.uuid4().hex[:6]}"
    stolen_value = f"sk-victim-{uuid.uuid4().hex[:12]}"
    stolen = f"{victim}-anthropic"
    await kube.apply(r.SECRETS, samples.provider_secret(
        stolen, PLATFORM_NAMESPACE, victim, "anthropic", stolen_value))
    name = await driver.running("bind")

    await cluster.run_kubectl("patch", "exocorp", name, "--type=merge", "-p", json.dumps(
        {"spec": {"providerBindings": [{"provider": "anthropic", "secretName": stolen}]}}))

    def refused(exo: Exocorp) -> bool:
        condition = get_condition(exo.status.conditions, ConditionType.CREDENTIALS_BOUND)
        return condition is not None and condition.reason == "CredentialNotOwned" \
            and (exo.status.observed_generation or 0) >= (exo.metadata.generation or 0)

    async def probe() -> Exocorp:
        return await driver.get(name)

    exo = await eventually(probe, refused, within=60, what="the binding refused")
    condition = get_condition(exo.status.conditions, ConditionType.CREDENTIALS_BOUND)
    assert condition is not None
    assert condition.status.value == "False"
    assert stolen in condition.message
    assert stolen_value not in condition.message
    copy = await kube.get(r.SECRETS, CREDENTIALS_SECRET, runtime_namespace(name))
    copied = {base64.b64decode(v).decode() for v in (copy.get("data") or {}).values()}
    assert stolen_value not in copied
    assert credential_key("anthropic") not in (copy.get("data") or {})
    reasons = {e["reason"]: e["message"] for e in await _events(kube, name)}
    assert "CredentialNotOwned" in reasons
    assert stolen_value not in reasons["CredentialNotOwned"]
