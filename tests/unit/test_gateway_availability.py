"""``actions`` in company detail answers, on the unit rig: for every phase reached here, each
action marked not allowed is refused with exactly that code and reason when actually asked, and
an allowed one is accepted."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, select

from exocorp import names
from exocorp.k8s import resources as r
from exocorp.model import Action, RevisionContent
from exocorp.store import billing
from exocorp.store.schema import AccountState, User
from exocorp.testing import samples
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import add_member, mark_running, platform_owner, user
from tests.plugins.gateway_agents import approved_agent_token, bearer_header

pytestmark = pytest.mark.unit

Obj = dict[str, Any]
SECRET_VALUE = "sk-ant-unit-0123456789abcdef"
NAMESPACE = "exocorp-system"


async def _actions(client: Any, slug: str) -> dict[str, Obj]:
    response = await client.get(f"/api/registry/companies/{slug}")
    assert response.status == 200, await response.text()
    actions: dict[str, Obj] = (await response.json())["actions"]
    assert set(actions) == {action.value for action in Action}
    return actions


async def _ask(client: Any, slug: str, action: str) -> aiohttp.ClientResponse:
    url = f"/api/registry/companies/{slug}"
    if action == "destroy":
        response: aiohttp.ClientResponse = await client.delete(url, json={"confirm": slug})
    else:
        response = await client.post(f"{url}/{action}",
                                     json={"reason": "checking"} if action == "pause" else {})
    return response


async def _refusals_match(client: Any, slug: str) -> dict[str, Obj]:
    """Ask for every action the detail says is refused: each answer must be that refusal."""
    actions = await _actions(client, slug)
    for action, state in actions.items():
        if state["allowed"]:
            assert (state["code"], state["reason"]) == (None, None), action
            continue
        response = await _ask(client, slug, action)
        body = await response.json()
        assert response.status in (403, 409), (action, body)
        assert (body["code"], body["detail"]) == (state["code"], state["reason"]), action
    assert await _actions(client, slug) == actions, "a refused action changed something"
    return actions


def _allowed(actions: dict[str, Obj]) -> set[str]:
    return {name for name, state in actions.items() if state["allowed"]}


def _add_revision(gateway: Gateway, exocorp: str, name: str, version: str) -> None:
    """Play the operator: a revision object, as the cache and ``actions.perform`` read it."""
    content = RevisionContent.model_validate({"release": {"channel": "stable",
                                                          "version": version},
                                              "config": samples.draft(version)["config"]})
    obj = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
           "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "1",
                        "labels": {names.LABEL_EXOCORP: exocorp,
                                   names.LABEL_MANAGED_BY: names.MANAGER}},
           "data": content.model_dump(mode="json", by_alias=True, exclude_none=True),
           "revision": 1}
    gateway.kube.objects[(r.CONTROLLERREVISIONS.plural, NAMESPACE, name)] = copy.deepcopy(obj)
    gateway.cache.revisions.observe(obj)


async def _set_billing(gateway: Gateway, state: AccountState) -> None:
    async with gateway.database.sessionmaker.begin() as s:
        owner = (await s.execute(select(User).where(User.email == "ada@example.com"))
                 ).scalar_one()
        account = await billing.get_account_for_user(s, owner.id)
        await billing.set_account_state(s, account.id, state)
    # Billing enforcement changes the state outside any request: the detail's action list
    # shows it once its cached inputs expire (``--auth-cache-seconds``).
    gateway.clock.advance(seconds=gateway.settings.auth_cache_seconds)


async def test_a_draft_offers_provision_once_it_can_succeed(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    actions = await _refusals_match(gateway.client, "acme")
    assert actions["provision"]["code"] == "draft_missing"
    assert actions["pause"]["code"] == "invalid_phase"
    assert _allowed(actions) == {"destroy"}

    await gateway.client.post("/api/registry/companies/acme/draft",
                              json={"draft": samples.draft("1.0.0")})
    assert (await _refusals_match(gateway.client, "acme"))["provision"]["code"] \
        == "provider_missing"
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    await _set_billing(gateway, AccountState.SUSPENDED)
    assert (await _refusals_match(gateway.client, "acme"))["provision"]["code"] \
        == "billing_inactive"
    await _set_billing(gateway, AccountState.ACTIVE)

    actions = await _refusals_match(gateway.client, "acme")
    assert _allowed(actions) == {"provision", "destroy"}
    assert (await _ask(gateway.client, "acme", "provision")).status == 202
    # Provisioning: only stop and destroy; the rest say to wait for the rollout.
    actions = await _refusals_match(gateway.client, "acme")
    assert _allowed(actions) == {"stop", "destroy"}
    assert actions["provision"]["code"] == "in_progress"


async def _provisioned(gateway: Gateway) -> None:
    """Ada's exocorp acme, with her credential, provisioned (the operator has not answered)."""
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    assert (await _ask(gateway.client, "acme", "provision")).status == 202


async def test_running_paused_and_stopped(gateway: Gateway) -> None:
    await _provisioned(gateway)
    _add_revision(gateway, "acme", "rev-1", "1.0.0")
    mark_running(gateway, "acme")

    actions = await _refusals_match(gateway.client, "acme")
    assert _allowed(actions) == {"update", "restart", "pause", "stop", "reprovision", "destroy"}
    assert actions["rollback"]["code"] == "no_successful_revision"
    assert actions["resume"]["code"] == "invalid_phase"

    assert (await _ask(gateway.client, "acme", "pause")).status == 202
    mark_running(gateway, "acme")
    await _set_billing(gateway, AccountState.SUSPENDED)
    actions = await _refusals_match(gateway.client, "acme")
    assert actions["resume"]["code"] == "billing_inactive"
    assert actions["update"]["code"] == "update_not_available"
    await _set_billing(gateway, AccountState.ACTIVE)
    assert "resume" in _allowed(await _refusals_match(gateway.client, "acme"))

    assert (await _ask(gateway.client, "acme", "stop")).status == 202
    actions = await _refusals_match(gateway.client, "acme")
    assert {"provision", "restart", "destroy"} <= _allowed(actions)
    assert actions["stop"]["code"] == "invalid_phase"


async def test_a_member_sees_destroy_refused_as_the_owner_only_action(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    member, member_id = await user(gateway, "bob@example.com")
    await add_member(gateway, "acme", member_id)
    actions = await _refusals_match(member, "acme")
    assert (actions["destroy"]["allowed"], actions["destroy"]["code"]) == (
        False, "owner_required")
    assert (await _actions(gateway.client, "acme"))["destroy"]["allowed"]


async def test_admin_details_carry_the_admin_endpoint_refusals(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    admin = await platform_owner(gateway)
    response = await admin.get("/api/admin/companies/acme/details")
    assert response.status == 200
    actions = (await response.json())["actions"]
    assert _allowed(actions) == {"destroy"}
    for action, state in actions.items():
        if state["allowed"]:
            continue
        body: Obj = {"action": action, **({"reason": "checking"} if action == "pause" else {})}
        answer = await admin.post("/api/admin/companies/acme/actions", json=body)
        problem = await answer.json()
        assert answer.status == 409, problem
        assert (problem["code"], problem["detail"]) == (state["code"], state["reason"])


async def test_an_agent_without_the_destroy_grant_sees_that_refusal(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    bearer = await approved_agent_token(gateway, "agent-co")
    agent = gateway.new_client()
    agent.headers.update(bearer_header(bearer))
    actions = await _refusals_match(agent, "agent-co")
    assert (actions["destroy"]["allowed"], actions["destroy"]["code"]) == (False, "agent_scope")
    assert (await _actions(gateway.client, "agent-co"))["destroy"]["allowed"]


async def test_the_detail_reads_the_database_once_and_follows_this_processs_writes(
        gateway: Gateway) -> None:
    """The detail answer's action list needs the draft, billing standing and allowance from the
    database; they are kept until this process serves a write, so repeated reads cost no
    database round trip and a client never sees its own write missing."""
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = gateway.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert (await _actions(gateway.client, "acme"))["provision"]["code"] == "draft_missing"
        statements.clear()
        for _ in range(3):
            assert (await _actions(gateway.client, "acme"))["provision"]["code"] \
                == "draft_missing"
        assert statements == []
        saved = await gateway.client.post("/api/registry/companies/acme/draft",
                                          json={"draft": samples.draft("1.0.0")})
        assert saved.status == 201
        # Its own write: seen at once.
        assert (await _actions(gateway.client, "acme"))["provision"]["code"] \
            == "provider_missing"
    finally:
        event.remove(engine, "before_cursor_execute", count)


# -- the memoised action list (one planning per object version, caller and inputs) -----------


async def test_a_member_reading_after_the_owner_gets_their_own_refusals(
        gateway: Gateway) -> None:
    """The owner's answer is memoised; a member asking next must not be given it."""
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    member, member_id = await user(gateway, "bob@example.com")
    await add_member(gateway, "acme", member_id)
    assert (await _actions(gateway.client, "acme"))["destroy"]["allowed"]
    destroy = (await _actions(member, "acme"))["destroy"]
    assert (destroy["allowed"], destroy["code"]) == (False, "owner_required")
    assert (await _actions(gateway.client, "acme"))["destroy"]["allowed"]


async def test_an_agent_reading_after_its_owner_gets_its_own_refusals(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    bearer = await approved_agent_token(gateway, "agent-co")
    assert (await _actions(gateway.client, "agent-co"))["destroy"]["allowed"]
    agent = gateway.new_client()
    agent.headers.update(bearer_header(bearer))
    destroy = (await _actions(agent, "agent-co"))["destroy"]
    assert (destroy["allowed"], destroy["code"]) == (False, "agent_scope")


async def test_the_action_list_follows_a_new_object_version(gateway: Gateway) -> None:
    await _provisioned(gateway)
    _add_revision(gateway, "acme", "rev-1", "1.0.0")
    assert "pause" not in _allowed(await _actions(gateway.client, "acme"))
    mark_running(gateway, "acme")  # the operator's status write: no request of this process
    assert "pause" in _allowed(await _actions(gateway.client, "acme"))


async def test_the_action_list_follows_a_revision_arriving_alone(gateway: Gateway) -> None:
    """Restart needs the last successful revision's content: the answer changes when the
    revision arrives, though neither the exocorp nor anything in the database did."""
    await _provisioned(gateway)
    mark_running(gateway, "acme")
    assert (await _actions(gateway.client, "acme"))["restart"]["code"] == "revision_not_found"
    _add_revision(gateway, "acme", "rev-1", "1.0.0")
    assert (await _actions(gateway.client, "acme"))["restart"]["allowed"]
