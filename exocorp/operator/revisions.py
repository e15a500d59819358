"""Revision objects: one ControllerRevision per applied configuration, in the platform
namespace, owned by its Exocorp, named after its content hash, numbered in rollout order.

A revision's ``data`` never changes. Its number and outcome annotations do: rolling out earlier
content again (rollback, restart) re-uses the object under a new number, as Deployments do."""

from __future__ import annotations

from typing import Any

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.model import Exocorp, RevisionContent, RevisionOutcome, content_hash, revision_name
from exocorp.runtime.builders import owner_reference

Obj = dict[str, Any]
ANNOTATION_OUTCOME = names.ANNOTATION_OUTCOME
ANNOTATION_ROLLOUT_KEY = names.ANNOTATION_ROLLOUT_KEY
ANNOTATION_REASON = names.ANNOTATION_REASON
LABEL_CONTENT_HASH = names.LABEL_CONTENT_HASH


def selector(exocorp: str) -> str:
    return f"{names.LABEL_EXOCORP}={exocorp}"


async def list_revisions(kube: Kube, namespace: str, exocorp: str) -> list[Obj]:
    """Read from the API, not a cache: numbering must see every revision that exists."""
    items: list[Obj] = (await kube.list(r.CONTROLLERREVISIONS, namespace,
                                        label_selector=selector(exocorp)))["items"]
    return sorted(items, key=lambda rev: int(rev.get("revision", 0)))


def content_of(revision: Obj) -> RevisionContent:
    return RevisionContent.model_validate(revision.get("data") or {})


async def ensure_revision(kube: Kube, namespace: str, exo: Exocorp, content: RevisionContent,
                          rollout_key: str) -> Obj:
    """The revision object for this rollout, created or renumbered exactly once per rollout key
    (so a crash between this step and the status write never makes a duplicate)."""
    name = revision_name(exo.metadata.name, content)
    revisions = await list_revisions(kube, namespace, exo.metadata.name)
    top = max((int(rev.get("revision", 0)) for rev in revisions), default=0)
    existing = next((rev for rev in revisions if rev["metadata"]["name"] == name), None)
    annotations = _annotations(exo, rollout_key)
    if existing is None:
        body = {
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {
                "name": name, "namespace": namespace,
                "labels": {names.LABEL_EXOCORP: exo.metadata.name,
                           names.LABEL_MANAGED_BY: names.MANAGER,
                           LABEL_CONTENT_HASH: content_hash(content)},
                "annotations": annotations,
                "ownerReferences": [owner_reference(exo) | {"controller": False}],
            },
            "data": content.model_dump(mode="json", by_alias=True, exclude_none=True),
            "revision": top + 1,
        }
        try:
            created: Obj = await kube.create(r.CONTROLLERREVISIONS, body, namespace)
            return created
        except ApiError as err:
            if not err.conflict:
                raise
            existing = await kube.get(r.CONTROLLERREVISIONS, name, namespace)
    if existing["metadata"].get("annotations", {}).get(ANNOTATION_ROLLOUT_KEY) == rollout_key \
            and int(existing.get("revision", 0)) == top:
        # Made by an earlier pass that did not get to record it: no rollout can have started
        # since, so it is still the newest. An older revision with this key is a rollout of the
        # same content accepted in the same second (keys have one-second stamps): renumber it.
        return existing

    def renumber(rev: Obj) -> None:
        _set_annotations(rev, annotations)
        rev["revision"] = top + 1

    return await _update(kube, namespace, name, renumber)


def _set_annotations(rev: Obj, annotations: dict[str, str | None]) -> None:
    current = rev["metadata"].setdefault("annotations", {})
    for key, value in annotations.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value


async def _update(kube: Kube, namespace: str, name: str, mutate: Any) -> Obj:
    """Read-modify-replace. Not a patch: the API server re-encodes ``data`` when it applies a
    patch, and the re-encoded bytes differ from the stored ones, which it refuses as a change
    to an immutable field. A replace sends back exactly the bytes it read."""
    for _ in range(5):
        rev = await kube.get(r.CONTROLLERREVISIONS, name, namespace)
        mutate(rev)
        try:
            replaced: Obj = await kube.replace(r.CONTROLLERREVISIONS, name, rev, namespace)
            return replaced
        except ApiError as err:
            if not err.conflict:
                raise
    raise ApiError(409, "Conflict", f"revision {name} kept changing")


def _annotations(exo: Exocorp, rollout_key: str) -> dict[str, str | None]:
    action = exo.spec.last_action
    return {
        ANNOTATION_ROLLOUT_KEY: rollout_key,
        ANNOTATION_OUTCOME: RevisionOutcome.PROGRESSING.value,
        names.ANNOTATION_ACTION: action.action.value if action else None,
        names.ANNOTATION_REQUESTED_BY: action.requested_by if action else None,
        ANNOTATION_REASON: (action.reason or None) if action else None,
    }


async def record_outcome(kube: Kube, namespace: str, name: str, outcome: RevisionOutcome,
                         reason: str | None = None) -> None:
    try:
        await _update(kube, namespace, name, lambda rev: _set_annotations(
            rev, {ANNOTATION_OUTCOME: outcome.value, ANNOTATION_REASON: reason}))
    except ApiError as err:
        if not err.not_found:
            raise


async def prune(kube: Kube, namespace: str, exocorp: str, limit: int, keep: set[str]) -> int:
    """Delete the oldest revisions beyond ``limit``, never one named in ``keep``."""
    revisions = await list_revisions(kube, namespace, exocorp)
    excess = len(revisions) - limit
    deleted = 0
    for rev in revisions:
        if deleted >= excess:
            break
        if rev["metadata"]["name"] in keep:
            continue
        await kube.delete(r.CONTROLLERREVISIONS, rev["metadata"]["name"], namespace)
        deleted += 1
    return deleted
