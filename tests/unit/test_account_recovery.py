"""Account recovery of issue 13 (7): a stolen session or agent token must stop working once its
owner changes the password, signs out everywhere, or a platform owner disables the account."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from exocorp.store import accounts, drafts, tokens
from exocorp.testing import samples
from tests.plugins import gateway_admin as admin_support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit
PASSWORD = admin_support.PASSWORD
NEW_PASSWORD = "a brand new passphrase"


async def _agent_token(gateway: Gateway, user_id: str) -> dict[str, str]:
    """A bearer token of an agent the user approved."""
    async with gateway.database.sessionmaker.begin() as s:
        draft = await drafts.create_draft(s, config=samples.draft(), now=gateway.clock())
        issued = await tokens.register_client(s, name="bot", draft_id=draft.id,
                                              now=gateway.clock())
        await tokens.approve_client(s, issued.client.id, user_id=user_id, now=gateway.clock())
        bearer = await tokens.redeem_draft_token(s, issued.secret.reveal(), now=gateway.clock())
    return {"Authorization": f"Bearer {bearer.secret.reveal()}"}


async def _victim(gateway: Gateway) -> tuple[Any, Any, str, dict[str, str]]:
    """The victim's client, a thief's copy of one of the victim's sessions, the victim's id and
    an agent token of the victim's."""
    victim, user_id = await admin_support.user(gateway, "ada@example.com")
    thief = gateway.new_client()
    stolen = await thief.post("/api/auth/login",
                              json={"email": "ada@example.com", "password": PASSWORD})
    assert stolen.status == 200
    return victim, thief, user_id, await _agent_token(gateway, user_id)


async def test_a_password_change_ends_every_other_session_and_token(gateway: Gateway) -> None:
    victim, thief, _, agent = await _victim(gateway)
    response = await victim.post("/api/auth/password", json={
        "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})
    assert response.status == 204
    assert (await thief.get("/api/auth/me")).status == 401
    assert (await gateway.new_client().get("/api/auth/me", headers=agent)).status == 401
    assert (await victim.get("/api/auth/me")).status == 200  # the changing session stays
    old = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert old.status == 401
    wrong = await victim.post("/api/auth/password", json={
        "currentPassword": "not the password", "newPassword": "whatever whatever"})
    assert wrong.status == 401


async def test_sign_out_everywhere(gateway: Gateway) -> None:
    victim, thief, _, agent = await _victim(gateway)
    assert (await victim.post("/api/auth/logout-everywhere")).status == 204
    for client, headers in ((victim, {}), (thief, {}), (gateway.new_client(), agent)):
        assert (await client.get("/api/auth/me", headers=headers)).status == 401


async def _owner_disabled(admin: aiohttp.ClientSession, user_id: str) -> bool:
    """What the admin billing accounts table says of ``user_id``'s owner."""
    response = await admin.get("/api/admin/billing/accounts")
    assert response.status == 200
    items = (await response.json())["items"]
    disabled = next(a["userDisabled"] for a in items if a["userId"] == user_id)
    assert isinstance(disabled, bool)
    return disabled


async def test_a_platform_owner_disables_and_enables_a_user(gateway: Gateway) -> None:
    admin = await admin_support.platform_owner(gateway)
    victim, thief, user_id, agent = await _victim(gateway)
    assert (await victim.post(f"/api/admin/users/{user_id}/disable")).status == 403
    assert (await admin.post(f"/api/admin/users/{user_id}/disable")).status == 200
    for client, headers in ((victim, {}), (thief, {}), (gateway.new_client(), agent)):
        assert (await client.get("/api/auth/me", headers=headers)).status == 401
    login = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status == 403
    assert await _owner_disabled(admin, user_id) is True
    assert (await admin.post(f"/api/admin/users/{user_id}/enable")).status == 200
    login = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status == 200
    assert await _owner_disabled(admin, user_id) is False
    assert (await admin.post("/api/admin/users/usr_nobody/disable")).status == 404


async def test_a_recovery_kit_login_ends_every_other_session_and_token(gateway: Gateway) -> None:
    victim, user_id = await admin_support.user(gateway, "kit@example.com")
    thief = gateway.new_client()
    assert (await thief.post("/api/auth/login", json={
        "email": "kit@example.com", "password": PASSWORD})).status == 200
    agent = await _agent_token(gateway, user_id)
    rotate = await victim.post("/api/auth/logout")  # the owner lost the password: uses the kit
    assert rotate.status == 204
    async with gateway.database.sessionmaker.begin() as s:
        kit = (await accounts.rotate_recovery_kit(s, user_id)).reveal()
    owner = gateway.new_client()
    response = await owner.post("/api/auth/login",
                                json={"email": "kit@example.com", "recoveryKit": kit})
    assert response.status == 200
    assert (await thief.get("/api/auth/me")).status == 401
    assert (await gateway.new_client().get("/api/auth/me", headers=agent)).status == 401
    assert (await owner.get("/api/auth/me")).status == 200


async def _kit_login(gateway: Gateway, email: str) -> tuple[Any, Any, Any]:
    """A user who lost the password logs in with the recovery kit: the old session's client,
    the kit session's client and the login answer."""
    before, user_id = await admin_support.user(gateway, email)
    async with gateway.database.sessionmaker.begin() as s:
        kit = (await accounts.rotate_recovery_kit(s, user_id)).reveal()
    after = gateway.new_client()
    response = await after.post("/api/auth/login", json={"email": email, "recoveryKit": kit})
    assert response.status == 200
    return before, after, await response.json()


async def test_a_recovery_kit_session_must_set_a_new_password_before_anything_else(
        gateway: Gateway) -> None:
    # Whoever holds a kit (perhaps stolen with the password) gets a session that can do nothing
    # but set a new password: the account's exocorps, agents and credentials stay out of reach.
    _, kit_client, login = await _kit_login(gateway, "lost@example.com")
    assert login["passwordChangeRequired"] is True
    me = await kit_client.get("/api/auth/me")
    assert me.status == 200
    assert (await me.json())["passwordChangeRequired"] is True
    for method, path, body in (("GET", "/api/registry/companies", None),
                               ("POST", "/api/registry/companies",
                                {"slug": "acme", "displayName": "Acme"}),
                               ("GET", "/api/registry/my-companies", None)):
        refused = await kit_client.request(method, path, json=body)
        assert refused.status == 403, (method, path)
        assert (await refused.json())["code"] == "password_change_required"
    # The kit proved who this is: no current password is asked for.
    changed = await kit_client.post("/api/auth/password", json={"newPassword": NEW_PASSWORD})
    assert changed.status == 204
    me = await (await kit_client.get("/api/auth/me")).json()
    assert me["passwordChangeRequired"] is False
    assert (await kit_client.get("/api/registry/my-companies")).status == 200
    again = await gateway.new_client().post(
        "/api/auth/login", json={"email": "lost@example.com", "password": NEW_PASSWORD})
    assert again.status == 200
    assert (await again.json())["passwordChangeRequired"] is False


async def test_the_forced_change_survives_the_gateway_forgetting_its_cache(
        gateway: Gateway) -> None:
    _, kit_client, _ = await _kit_login(gateway, "lost@example.com")
    gateway.clock.advance(seconds=gateway.settings.auth_cache_seconds + 1)  # read from the db
    refused = await kit_client.get("/api/registry/my-companies")
    assert refused.status == 403
    assert (await refused.json())["code"] == "password_change_required"


async def test_only_a_kit_session_skips_the_current_password(gateway: Gateway) -> None:
    client, _ = await admin_support.user(gateway, "ada@example.com")
    response = await client.post("/api/auth/password", json={"newPassword": NEW_PASSWORD})
    assert response.status == 400
    assert [e["field"] for e in (await response.json())["errors"]] == ["currentPassword"]
    login = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status == 200  # unchanged


async def test_a_kit_session_may_log_out(gateway: Gateway) -> None:
    _, kit_client, _ = await _kit_login(gateway, "lost@example.com")
    assert (await kit_client.post("/api/auth/logout")).status == 204
    assert (await kit_client.get("/api/auth/me")).status == 401
