"""Which lifecycle actions an exocorp's detail answer offers: each one planned by the lifecycle
API (``lifecycle.action_availability``) with the context the action endpoint would give it, so
``allowed: false`` carries exactly the code and detail asking would be refused with.

The context comes from the same places as ``operations.run_action`` (the saved draft, the
owner's billing standing and limits from the database; releases, credentials, revision contents
and what the owner's other exocorps request from the watch cache), never from an API-server
round trip. The database part is kept in the access cache until this process serves a write (or
for ``--auth-cache-seconds``, for another replica's writes): the detail read is the most
common request, and a database transaction would be most of its cost. The action endpoints
always read afresh.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from exocorp.api_gateway.access_cache import ActionInputs
from exocorp.api_gateway.allowances import allowance_for
from exocorp.api_gateway.errors import Problem
from exocorp.api_gateway.keys import ACCESS_CACHE, CACHE, CLOCK, DATABASE
from exocorp.api_gateway.schemas import ActionAvailability, CompanyActions
from exocorp.api_gateway.watch_cache import CachedExocorp
from exocorp.billing.enforcement import billing_state
from exocorp.lifecycle import ActionContext, action_availability
from exocorp.model import Action, Exocorp
from exocorp.store import drafts

__all__ = ["company_actions", "company_actions_json", "with_actions"]

_ALLOWED = ActionAvailability(allowed=True, code=None, reason=None)


async def _inputs(app: web.Application, name: str, owner_user_id: str) -> ActionInputs:
    inputs = app[ACCESS_CACHE].inputs(name)
    if inputs is None:
        async with app[DATABASE].sessionmaker.begin() as s:
            draft = await drafts.exocorp_draft_config(s, name)
            standing = await billing_state(s, owner_user_id)
            allowance = await allowance_for(app, s, owner_user_id, name, standing.rates)
        inputs = ActionInputs(draft, standing, allowance)
        app[ACCESS_CACHE].remember_inputs(name, inputs)
    return inputs


def _planned(app: web.Application, exocorp: Exocorp, inputs: ActionInputs, *, actor: str,
             forbidden: Mapping[Action, Problem]) -> CompanyActions:
    name = exocorp.metadata.name
    cache = app[CACHE]
    context = ActionContext(
        actor=actor, now=app[CLOCK](), releases=cache.release_specs(), draft=inputs.draft,
        revisions=cache.revision_contents(name),
        billing=inputs.standing,
        provider_secrets=cache.provider_secrets(exocorp.spec.owner),
        allowance=inputs.allowance)
    states: dict[str, ActionAvailability] = {}
    for action, refusal in action_availability(exocorp, context).items():
        denied = forbidden.get(action)
        if denied is not None:
            states[action.value] = ActionAvailability(allowed=False, code=denied.code,
                                                      reason=denied.detail)
        elif refusal is not None:
            states[action.value] = ActionAvailability(allowed=False, code=refusal.code.value,
                                                      reason=refusal.detail)
        else:
            states[action.value] = _ALLOWED
    return CompanyActions.model_validate(states)


async def company_actions(app: web.Application, exocorp: Exocorp, owner_user_id: str, *,
                          actor: str, forbidden: Mapping[Action, Problem] | None = None,
                          ) -> CompanyActions:
    """Every action's availability for ``actor``. ``forbidden`` holds the 403 an action gets
    from this caller before it is planned (destroy for a member)."""
    inputs = await _inputs(app, exocorp.metadata.name, owner_user_id)
    return _planned(app, exocorp, inputs, actor=actor, forbidden=forbidden or {})


_MEMOISED_CALLERS = 32
"""Callers whose ``actions`` one object version keeps (its owner, members, their agents)."""


async def company_actions_json(app: web.Application, entry: CachedExocorp,
                               owner_user_id: str, *, actor: str,
                               forbidden: Mapping[Action, Problem]) -> bytes:
    """:func:`company_actions` as JSON, memoised on the cached object version per caller
    (actor and the 403s it gets) while what planning read is unchanged: the same database
    inputs (the access cache's entry: a write this process serves drops it, and it lives
    ``--auth-cache-seconds``), release catalog, revisions and credentials (their informers'
    generations). Planning is most of a detail read's CPU, and none of it differs between two
    reads of the same state. The time of planning changes no refusal (only the plan's
    timestamps, which are not shown); were a rule to read it, the inputs' expiry would bound
    how late its answer changes."""
    inputs = await _inputs(app, entry.name, owner_user_id)
    cache = app[CACHE]
    read_from = (inputs, cache.releases.generation, cache.revisions.generation,
                 cache.credentials.generation)
    key = (actor, tuple(sorted((a.value, p.code, p.detail) for a, p in forbidden.items())))
    memo = entry.actions.get(key)
    if memo is not None and memo[0][0] is inputs and memo[0][1:] == read_from[1:]:
        return memo[1]
    rendered = _planned(app, entry.model, inputs, actor=actor,
                        forbidden=forbidden).model_dump_json(by_alias=True).encode()
    if len(entry.actions) >= _MEMOISED_CALLERS:
        entry.actions.clear()
    entry.actions[key] = (read_from, rendered)
    return rendered


def with_actions(rendered: bytes, actions: CompanyActions | bytes) -> bytes:
    """A rendered detail object (memoised per object version and role) with ``actions`` (or
    their JSON) added."""
    assert rendered.endswith(b"}")
    if isinstance(actions, CompanyActions):
        actions = actions.model_dump_json(by_alias=True).encode()
    return rendered[:-1] + b',"actions":' + actions + b"}"
