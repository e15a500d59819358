"""Lifecycle actions as the gateway runs them, for every route that triggers one (the registry's
owner endpoints here; the admin API's ``POST /api/admin/companies/:id/actions`` too).

:func:`run_action` looks up what the lifecycle API needs (the saved draft, the owner's
billing standing and allowance from the database; the exocorp, the release catalog, its
revisions and the owner's credentials from the watch cache, so an action's only API-server
call is its write), calls :func:`exocorp.lifecycle.perform.perform` (which writes the spec
change with the resourceVersion it planned from, so a concurrent conflicting action gets 409),
feeds what it wrote back into the watch cache and, for destroy, marks the registry row
destroyed. Audit it with ``audit.audited`` around the call.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from exocorp.api_gateway.allowances import OWNER_LOCKS, allowance_for
from exocorp.api_gateway.idempotency import claim_of, crash_point
from exocorp.api_gateway.keys import (
    ACCESS_CACHE,
    CACHE,
    CLOCK,
    DATABASE,
    KUBE,
    SETTINGS,
)
from exocorp.api_gateway.principal import Principal
from exocorp.billing.enforcement import billing_state
from exocorp.k8s import Obj
from exocorp.k8s import resources as r
from exocorp.lifecycle import ActionPlan, ErrorCode, LifecycleError, perform
from exocorp.model import ActionRequest, Exocorp
from exocorp.store import drafts, registry

log = logging.getLogger(__name__)

_ROUNDS = 3
"""Rounds of ``perform.perform`` (each re-plans on its own write conflicts) before a 409."""

__all__ = ["ActionResult", "finish_unfinished_destroys", "run_action"]


@dataclass(frozen=True)
class ActionResult:
    plan: ActionPlan | None
    """None when the request had been applied already (``recovered``)."""
    exocorp: Exocorp
    """The exocorp as the API server answered the write (what the cache now holds)."""
    details: dict[str, str]
    """fromVersion / toVersion / targetRevision, where they apply (as first applied)."""
    from_phase: str
    """The phase the action was accepted in."""
    recovered: bool = False
    """A retry of a request whose action was applied but whose answer was lost (its gateway
    died after the Kubernetes write): nothing was written now; this is the original result."""

    @property
    def audit_details(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.details, "fromPhase": self.from_phase}
        if self.recovered:
            out["recoveredRetry"] = True
        return out


async def run_action(request: web.Request, principal: Principal, exocorp_id: str,
                     owner_user_id: str, action: ActionRequest) -> ActionResult:
    """Plan and write one action for ``principal``; raises LifecycleError (400/402/404/409).
    Actions on one owner's exocorps run one at a time here, each planned with the owner's
    allowance (``allowances``) as the fleet stands after the previous one.

    With an Idempotency-Key, its digest is written with the action (``perform.perform``); a
    retry whose key is already on the object gets the original result, and nothing is written
    again."""
    async with request.app[OWNER_LOCKS].hold(owner_user_id):
        return await _run_action(request, principal, exocorp_id, owner_user_id, action)


async def _run_action(request: web.Request, principal: Principal, exocorp_id: str,
                      owner_user_id: str, action: ActionRequest) -> ActionResult:
    app = request.app
    claim = claim_of(request)
    async with app[DATABASE].reader.begin() as s:  # reads only: no write lock on SQLite
        draft = await drafts.exocorp_draft_config(s, exocorp_id)
        standing = await billing_state(s, owner_user_id)
        allowance = await allowance_for(app, s, owner_user_id, exocorp_id, standing.rates)
    cache = app[CACHE]
    caller = perform.Caller(actor=principal.actor, billing=standing, draft=draft,
                            allowance=allowance)
    cached = perform.Cached(exocorp=cache.exocorp, revision_contents=cache.revision_contents,
                            provider_secrets=cache.provider_secrets)
    for attempt in range(_ROUNDS):
        try:
            performed = await perform.perform(
                app[KUBE], app[SETTINGS].platform_namespace, exocorp_id, action, caller,
                now=app[CLOCK](), catalog=cache.release_specs(), cached=cached,
                request_key=claim.digest if claim else None,
                after_write=lambda: crash_point(request))
            break
        except perform.AlreadyApplied as done:
            return await _recovered(request, exocorp_id, done)
        except LifecycleError as error:
            # perform re-plans on every write conflict; it gives up only when the object kept
            # changing (the operator reporting status, under load). That is no user's conflict:
            # try again after a pause rather than answer 409.
            if error.code is not ErrorCode.CONCURRENT_CHANGE or attempt == _ROUNDS - 1:
                raise
            await asyncio.sleep(random.uniform(0.05, 0.25) * (attempt + 1))  # noqa: S311
    plan = performed.plan
    cache.observe_exocorp(performed.written)
    if plan.delete:
        await _destroyed(app, exocorp_id, performed.deleted)
    current = cache.exocorp(exocorp_id)
    if current is None:  # a destroy whose object is already gone
        current = Exocorp.model_validate(performed.written)
    return ActionResult(plan=plan, exocorp=current, details=dict(plan.audit.details),
                        from_phase=plan.audit.phase.value)


async def _recovered(request: web.Request, exocorp_id: str,
                     done: perform.AlreadyApplied) -> ActionResult:
    app = request.app
    cache = app[CACHE]
    cache.observe_exocorp(done.exocorp)
    if done.entry.get("action") == "destroy":
        await _destroyed(app, exocorp_id, None)
    current = cache.exocorp(exocorp_id) or Exocorp.model_validate(done.exocorp)
    details = done.entry.get("details") or {}
    return ActionResult(plan=None, exocorp=current,
                        details={str(k): str(v) for k, v in details.items()},
                        from_phase=str(done.entry.get("fromPhase", "")), recovered=True)


async def finish_unfinished_destroys(app: web.Application) -> list[str]:
    """Delete the exocorps whose destroy this platform accepted but whose delete never came
    (``perform.unfinished_destroy``), and mark them destroyed as :func:`run_action` does.
    Another replica doing the same at once is harmless: a delete of a deleting object is a
    no-op."""
    now = app[CLOCK]()
    finished = [entry.name for entry in app[CACHE].exocorps.values()
                if perform.unfinished_destroy(entry.model, now)]
    for name in finished:
        log.warning("exocorp %s: its destroy was accepted but never deleted; deleting it now",
                    name)
        await _destroyed(app, name,
                         await app[KUBE].delete(r.EXOCORPS, name, propagation="Background"))
    return finished


async def _destroyed(app: web.Application, exocorp_id: str, deleted: Obj | None) -> None:
    """After an Exocorp's delete (``deleted``: the API server's answer, when there is one): the
    cache follows it, the registry row is marked destroyed, cached access to it is dropped."""
    if deleted is not None and deleted.get("kind") != "Status":
        # Held by a finalizer: the object stays (Destroying) until the operator lets it go.
        # Without one it is gone already, and the cache must not keep a ghost of it.
        held = bool((deleted.get("metadata") or {}).get("finalizers"))
        app[CACHE].exocorps.observe(deleted, deleted=not held)
    async with app[DATABASE].sessionmaker.begin() as s:
        await registry.mark_destroyed(s, exocorp_id, now=app[CLOCK]())
    app[ACCESS_CACHE].forget_exocorp(exocorp_id)
