"""Revision numbering on a real API server, where rollouts of the same content share a key.

A rollout's key is its content plus the second its action was accepted. An automatic rollback in
the same second as the provision it returns to has the provision's key (CI met it when a
crash-looping update failed within a second of its provision): it must still be a new revision
number, not the provision's revision handed back as if an earlier pass had made it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Exocorp, RevisionContent
from exocorp.operator import revisions
from exocorp.testing import samples

pytestmark = pytest.mark.integration

AT = "2026-12-05T12:44:19Z"


@pytest.fixture
async def owner(kube: Kube, crds: None) -> AsyncIterator[dict[str, Any]]:
    """A real (Draft) Exocorp to own the revisions, so garbage collection leaves them be."""
    created: dict[str, Any] = await kube.create(
        r.EXOCORPS, samples.exocorp(f"rev-{uuid.uuid4().hex[:8]}", "acme"))
    try:
        yield created
    finally:
        await kube.delete(r.EXOCORPS, created["metadata"]["name"])


def _exo(owner: dict[str, Any], version: str, action: str) -> Exocorp:
    body: dict[str, Any] = {**owner, "spec": dict(owner["spec"])}
    body["spec"].update(provisioned=True, release={"channel": "stable", "version": version},
                        config=samples.draft()["config"],
                        lastAction={"action": action, "requestedBy": "u", "at": AT})
    return Exocorp.model_validate(body)


def _content(exo: Exocorp) -> RevisionContent:
    content = RevisionContent.from_spec(exo.spec)
    assert content is not None
    return content


async def test_a_rollback_with_the_provisions_key_is_a_new_number(
        kube: Kube, namespace: str, owner: dict[str, Any]) -> None:
    provision, update = _exo(owner, "1.0.0", "provision"), _exo(owner, "1.2.0", "update")
    first = await revisions.ensure_revision(kube, namespace, provision, _content(provision), "k1")
    second = await revisions.ensure_revision(kube, namespace, update, _content(update), "k2")
    back = await revisions.ensure_revision(kube, namespace, provision, _content(provision), "k1")
    assert (int(first["revision"]), int(second["revision"])) == (1, 2)
    assert back["metadata"]["name"] == first["metadata"]["name"]
    assert int(back["revision"]) == 3


async def test_a_pass_that_did_not_record_its_revision_gets_the_same_one(
        kube: Kube, namespace: str, owner: dict[str, Any]) -> None:
    exo = _exo(owner, "1.0.0", "provision")
    made = await revisions.ensure_revision(kube, namespace, exo, _content(exo), "k1")
    again = await revisions.ensure_revision(kube, namespace, exo, _content(exo), "k1")
    assert int(again["revision"]) == int(made["revision"]) == 1
    listed = await revisions.list_revisions(kube, namespace, exo.metadata.name)
    assert len(listed) == 1
