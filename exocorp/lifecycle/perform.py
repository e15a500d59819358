"""Carry out a lifecycle action against the cluster: look up what the pure lifecycle API needs,
plan, and write the spec change with the resourceVersion it was planned from, so of two
conflicting concurrent actions exactly one wins (the other gets the API server's 409)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from exocorp import names
from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r
from exocorp.lifecycle import (
    ActionContext,
    ActionPlan,
    ActionRefusedError,
    Allowance,
    BillingStanding,
    ErrorCode,
    ExocorpNotFoundError,
    LifecycleError,
    plan_action,
)
from exocorp.model import Action, ActionRequest, Exocorp, ExocorpReleaseSpec, RevisionContent
from exocorp.model.base import parse_rfc3339_or_none

_ATTEMPTS = 8
REQUEST_KEYS_KEPT = 20
"""How many applied request keys an Exocorp remembers (``names.ANNOTATION_REQUEST_KEYS``)."""


class AlreadyApplied(Exception):  # noqa: N818 (an outcome, not a failure)
    """The request named by ``request_key`` was applied before (a retry after a crash): its
    entry of the request-keys annotation says what it did."""

    def __init__(self, entry: Mapping[str, Any], exocorp: Mapping[str, Any]) -> None:
        super().__init__(f"request {entry.get('key')} was already applied")
        self.entry = dict(entry)
        self.exocorp = dict(exocorp)


def applied_requests(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request-keys annotation of an object (empty when absent or unreadable)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(
        names.ANNOTATION_REQUEST_KEYS)
    try:
        entries = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def applied_request(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    return next((e for e in applied_requests(obj) if e.get("key") == key), None)


def request_keys_annotation(obj: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """The annotation value with ``entry`` appended (the oldest dropped beyond the limit)."""
    entries = [*applied_requests(obj), dict(entry)][-REQUEST_KEYS_KEPT:]
    return json.dumps(entries, separators=(",", ":"), sort_keys=True)


DELETE_GRACE = timedelta(seconds=30)
"""How long an accepted destroy may wait for its delete, which follows its spec write at once."""


def unfinished_destroy(exocorp: Exocorp, now: datetime) -> bool:
    """A destroy was accepted (its spec write is the record: ``lastAction``), but its delete
    has not come for longer than :data:`DELETE_GRACE`: the gateway died between the two and the
    caller never retried. The gateway's sweep makes the delete (the operator may not)."""
    last = exocorp.spec.last_action
    if last is None or last.action is not Action.DESTROY or exocorp.deleting:
        return False
    at = parse_rfc3339_or_none(last.at)
    return at is None or now - at >= DELETE_GRACE


GOOD_STANDING = BillingStanding(active=True, has_price_book=True)


@dataclass(frozen=True)
class Performed:
    """What :func:`perform` wrote, as the API server answered it."""

    plan: ActionPlan
    written: Obj
    """The Exocorp as the spec patch left it."""
    deleted: Obj | None = None
    """destroy: the answer to the delete (the object, held by its finalizer, or a Status)."""


@dataclass(frozen=True)
class Caller:
    """Who asks, and what the platform records say about their account."""

    actor: str
    billing: BillingStanding = GOOD_STANDING
    """Callers that act on no user's behalf (tests, tools) default to good standing."""
    draft: Mapping[str, Any] | None = None
    allowance: Allowance | None = None
    """The owner's resource limits and credit requirement (None: not checked)."""


async def releases(kube: Kube) -> list[ExocorpReleaseSpec]:
    out = []
    for item in (await kube.list_all(r.RELEASES))["items"]:
        try:
            out.append(ExocorpReleaseSpec.model_validate(item.get("spec") or {}))
        except ValidationError:
            continue  # an invalid release is not offered
    return out


async def revision_contents(kube: Kube, namespace: str, exocorp: str) -> dict[str, RevisionContent]:
    items = (await kube.list(r.CONTROLLERREVISIONS, namespace,
                             label_selector=f"{names.LABEL_EXOCORP}={exocorp}"))["items"]
    out = {}
    for item in items:
        try:
            out[item["metadata"]["name"]] = RevisionContent.model_validate(item.get("data") or {})
        except ValidationError:
            continue
    return out


async def provider_secrets(kube: Kube, namespace: str, account: str) -> dict[str, list[str]]:
    """Provider -> credential Secret names of one account (metadata only)."""
    items = (await kube.list(r.SECRETS, namespace,
                             label_selector=f"{names.LABEL_ACCOUNT}={account}"))["items"]
    out: dict[str, list[str]] = {}
    for item in items:
        provider = item["metadata"].get("labels", {}).get(names.LABEL_PROVIDER)
        if provider:
            out.setdefault(provider, []).append(item["metadata"]["name"])
    return {k: sorted(v) for k, v in out.items()}


@dataclass(frozen=True)
class Cached:
    """What the caller's caches hold (the gateway's watch cache). The first plan is made from
    them with no API-server read; the write's resourceVersion catches a stale object (409),
    and a refusal is confirmed from fresh reads before it is given, so a lagging cache can
    cost a second round trip but never a wrong answer."""

    exocorp: Callable[[str], Exocorp | None]
    revision_contents: Callable[[str], dict[str, RevisionContent]]
    provider_secrets: Callable[[str], dict[str, list[str]]]


async def perform(kube: Kube, platform_namespace: str, name: str, request: ActionRequest,
                  caller: Caller, *, now: datetime | None = None,
                  catalog: Sequence[ExocorpReleaseSpec] | None = None,
                  cached: Cached | None = None,
                  request_key: str | None = None,
                  after_write: Callable[[], None] | None = None) -> Performed:
    """Plan and write one action; returns the plan and what was written. Raises LifecycleError
    (400/404/409).

    The write carries the resourceVersion the plan was made from. When it is refused because
    the object changed meanwhile (the operator reporting status, say), the action is planned
    again from the new state: if it is still allowed it goes through, and if a concurrent
    action made it invalid, the new plan refuses it with the real reason. With ``cached``, the
    first plan reads nothing from the API server (see :class:`Cached`).

    ``request_key`` (the digest of the gateway request's Idempotency-Key) is recorded in the
    same patch, in the ``exocorp.io/request-keys`` annotation: the action and its record
    commit together. If the object already names the key, nothing is written and
    :class:`AlreadyApplied` is raised: the request is a retry of one that was applied.
    ``after_write`` runs right after the patch (fault injection in tests)."""
    releases_ = catalog if catalog is not None else await releases(kube)
    fresh = _FreshReads(kube, platform_namespace, name)
    for _ in range(_ATTEMPTS):
        from_cache = cached is not None and not fresh.needed
        exocorp = cached.exocorp(name) if cached is not None and from_cache else None
        if exocorp is None:
            from_cache = False
            body = await kube.get_or_none(r.EXOCORPS, name)
            if body is None:
                raise ExocorpNotFoundError(ErrorCode.NOT_FOUND,
                                           f"exocorp {name!r} does not exist")
            exocorp = Exocorp.model_validate(body)
        else:
            body = exocorp.to_wire()
        if request_key is not None:
            done = applied_request(body, request_key)
            if done is not None:
                if request.action.value == "destroy" and not body["metadata"].get(
                        "deletionTimestamp"):
                    await kube.delete(r.EXOCORPS, name, propagation="Background")
                raise AlreadyApplied(done, body)
        owner = exocorp.spec.owner
        context = ActionContext(
            actor=caller.actor, now=now or datetime.now(UTC), releases=releases_,
            draft=caller.draft,
            revisions=cached.revision_contents(name) if cached is not None and from_cache
            else await fresh.revision_contents(),
            billing=caller.billing,
            provider_secrets=cached.provider_secrets(owner) if cached is not None and from_cache
            else await fresh.provider_secrets(owner),
            allowance=caller.allowance,
        )
        try:
            plan = plan_action(exocorp, request, context)
        except LifecycleError:
            if from_cache:  # maybe the cache lags (a revision or credential not seen yet)
                fresh.needed = True
                continue
            raise
        patch = plan.patch
        if request_key is not None:
            entry = {"key": request_key, "action": plan.action.value, "at": context.now.isoformat(),
                     "fromPhase": plan.audit.phase.value, "details": dict(plan.audit.details)}
            patch.setdefault("metadata", {})["annotations"] = {
                names.ANNOTATION_REQUEST_KEYS: request_keys_annotation(body, entry)}
        try:
            written = await kube.patch(r.EXOCORPS, name, patch)
        except ApiError as err:
            if err.conflict:
                fresh.needed = True
                continue
            if err.not_found:
                raise ExocorpNotFoundError(ErrorCode.NOT_FOUND,
                                     f"exocorp {name!r} does not exist") from None
            raise
        if after_write is not None:
            after_write()
        deleted = await kube.delete(r.EXOCORPS, name, propagation="Background") \
            if plan.delete else None
        return Performed(plan, written, deleted)
    raise ActionRefusedError(ErrorCode.CONCURRENT_CHANGE,
                         f"exocorp {name!r} kept changing while the action was planned; retry")


class _FreshReads:
    """The API-server reads a plan needs, each made once: a retry is caused by the Exocorp
    changing (usually its status), and revision contents and credential names are not what
    changed."""

    def __init__(self, kube: Kube, platform_namespace: str, name: str) -> None:
        self.kube = kube
        self.namespace = platform_namespace
        self.name = name
        self.needed = False
        self._contents: dict[str, RevisionContent] | None = None
        self._secrets: dict[str, dict[str, list[str]]] = {}

    async def revision_contents(self) -> dict[str, RevisionContent]:
        if self._contents is None:
            self._contents = await revision_contents(self.kube, self.namespace, self.name)
        return self._contents

    async def provider_secrets(self, owner: str) -> dict[str, list[str]]:
        if owner not in self._secrets:
            self._secrets[owner] = await provider_secrets(self.kube, self.namespace, owner)
        return self._secrets[owner]
