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
from exocorp.api_gateway.operations import saved_draft
from exocorp.api_gateway.schemas import ActionAvailability, CompanyActions
from exocorp.billing.enforcement import billing_state
from exocorp.lifecycle import ActionContext, action_availability
from exocorp.model import Action, Exocorp

__all__ = ["company_actions", "with_actions"]

_ALLOWED = ActionAvailability(allowed=True, code=None, reason=None)


async def company_actions(app: web.Application, exocorp: Exocorp, owner_user_id: str, *,
                          actor: str, forbidden: Mapping[Action, Problem] | None = None,
                          ) -> CompanyActions:
    """Every action's availability for ``actor``. ``forbidden`` holds the 403 an action gets
    from this caller before it is planned (destroy for a member)."""
    name = exocorp.metadata.name
    inputs = app[ACCESS_CACHE].inputs(name)
    if inputs is None:
        async with app[DATABASE].sessionmaker.begin() as s:
            draft = await saved_draft(s, name)
            standing = await billing_state(s, owner_user_id)
            allowance = await allowance_for(app, s, owner_user_id, name, standing.rates)
        inputs = ActionInputs(draft, standing, allowance)
        app[ACCESS_CACHE].remember_inputs(name, inputs)
    cache = app[CACHE]
    context = ActionContext(
        actor=actor, now=app[CLOCK](), releases=cache.release_specs(), draft=inputs.draft,
        revisions=cache.revision_contents(name),
        billing=inputs.standing,
        provider_secrets=cache.provider_secrets(exocorp.spec.owner),
        allowance=inputs.allowance)
    states: dict[str, ActionAvailability] = {}
    for action, refusal in action_availability(exocorp, context).items():
        denied = (forbidden or {}).get(action)
        if denied is not None:
            states[action.value] = ActionAvailability(allowed=False, code=denied.code,
                                                      reason=denied.detail)
        elif refusal is not None:
            states[action.value] = ActionAvailability(allowed=False, code=refusal.code.value,
                                                      reason=refusal.detail)
        else:
            states[action.value] = _ALLOWED
    return CompanyActions.model_validate(states)


def with_actions(rendered: bytes, actions: CompanyActions) -> bytes:
    """A rendered detail object (memoised per object version) with ``actions`` added: they
    depend on more than the object (draft, billing, releases), so they are never memoised."""
    assert rendered.endswith(b"}")
    return rendered[:-1] + b',"actions":' + actions.model_dump_json(by_alias=True).encode() + b"}"
