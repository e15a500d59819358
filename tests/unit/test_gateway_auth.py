"""Accounts, sessions and roles as a user meets them: signup, login (password or recovery kit,
throttled), logout, expiry, me; the owner/member/stranger/platform-owner/agent distinctions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from exocorp.api_gateway.main import bootstrap_platform_owner
from exocorp.security import PasswordHasher
from exocorp.store import drafts, registry, tokens
from exocorp.store.schema import AuditEvent, RecoveryKit, Role, User
from tests.plugins import gateway as support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery"


def _cookie(gateway: Gateway) -> str:
    cookies = gateway.client.session.cookie_jar.filter_cookies(gateway.client.make_url("/"))
    return cookies[gateway.settings.cookie_name].value


async def _login(client: object, email: str, **secret: str) -> object:
    return await client.post("/api/auth/login",  # type: ignore[attr-defined]
                             json={"email": email, **secret})


async def test_signup_gives_a_hardened_session_cookie_and_a_recovery_kit_once(
        make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(cookie_secure=True)
    response = await gateway.client.post("/api/auth/signup",
                                         json={"email": "Ada@Example.com", "password": PASSWORD})
    assert response.status == 201
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-exocorp_session=exo_sess_")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    kit = body["recoveryKit"]
    assert kit.startswith("EXO-")
    async with gateway.database.sessionmaker() as s:
        stored = (await s.execute(select(RecoveryKit))).scalars().all()
        user = (await s.execute(select(User))).scalar_one()
    assert [k.kit_hash for k in stored] != [kit]
    assert kit not in user.password_hash
    assert PASSWORD not in user.password_hash


async def test_signup_credits_the_configured_amount(make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(signup_credit=4200)
    await gateway.signup("ada@example.com")
    me = await (await gateway.client.get("/api/auth/me")).json()
    assert me["account"] == {"balance": 4200, "currency": "USD", "state": "active"}


async def test_signup_twice_with_the_same_email_is_409(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    response = await gateway.new_client().post(
        "/api/auth/signup", json={"email": "ADA@example.com", "password": PASSWORD})
    assert response.status == 409
    assert (await response.json())["code"] == "email_taken"


@pytest.mark.parametrize(("body", "fields"), [
    ({"email": "ada@example.com", "password": "short"}, {"password"}),
    ({"email": "not-an-email", "password": PASSWORD}, {"email"}),
    ({"email": "ada@example.com"}, {"password"}),
    ({"email": 12, "password": PASSWORD}, {"email"}),
    ({"email": "ada@example.com", "password": PASSWORD, "admin": True}, {"admin"}),
])
async def test_bad_signups_are_400_and_create_nothing(gateway: Gateway, body: dict,
                                                      fields: set[str]) -> None:
    response = await gateway.client.post("/api/auth/signup", json=body)
    assert response.status == 400
    problem = await response.json()
    assert {e["field"] for e in problem["errors"]} == fields
    assert "Set-Cookie" not in response.headers
    async with gateway.database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 0


async def test_login_logout_and_me(gateway: Gateway) -> None:
    signed = await gateway.signup("ada@example.com")
    client = gateway.new_client()
    assert (await client.get("/api/auth/me")).status == 401
    response = await _login(client, "ada@example.com", password=PASSWORD)
    assert response.status == 200  # type: ignore[attr-defined]
    me = await (await client.get("/api/auth/me")).json()
    assert me["user"]["id"] == signed["user"]["id"]
    assert (me["roles"], me["platformOwner"], me["authenticatedVia"]) == (["user"], False,
                                                                          "cookie")
    assert "recoveryKit" not in me
    assert (await client.post("/api/auth/logout")).status == 204
    assert (await client.get("/api/auth/me")).status == 401


async def test_logout_revokes_the_session_on_the_server(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    token = _cookie(gateway)
    assert (await gateway.client.post("/api/auth/logout")).status == 204
    replay = gateway.new_client()
    response = await replay.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    replay.cookie_jar.update_cookies({gateway.settings.cookie_name: token})
    assert (await replay.get("/api/auth/me")).status == 401


async def test_one_session_as_cookie_and_as_bearer_token_says_how_it_came_and_logs_out_both(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    token = _cookie(gateway)
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(2):  # the second round is answered from the access cache
        me = await (await gateway.client.get("/api/auth/me")).json()
        assert me["authenticatedVia"] == "cookie"
        me = await (await gateway.new_client().get("/api/auth/me", headers=bearer)).json()
        assert me["authenticatedVia"] == "bearer"
    assert (await gateway.new_client().post("/api/auth/logout", headers=bearer)).status == 204
    assert (await gateway.client.get("/api/auth/me")).status == 401
    assert (await gateway.new_client().get("/api/auth/me", headers=bearer)).status == 401


async def test_wrong_password_is_401_and_repeated_failures_429_with_retry_after(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    client = gateway.new_client()
    for _ in range(3):  # login_max_failures=3 in the fixture
        response = await _login(client, "ada@example.com", password="wrong password!")
        assert response.status == 401  # type: ignore[attr-defined]
    throttled = await _login(client, "ada@example.com", password=PASSWORD)
    assert throttled.status == 429  # type: ignore[attr-defined]
    retry_after = int(throttled.headers["Retry-After"])  # type: ignore[attr-defined]
    assert 0 < retry_after <= 15 * 60
    assert (await throttled.json())["code"] == "too_many_requests"  # type: ignore[attr-defined]
    gateway.clock.advance(seconds=retry_after)
    response = await _login(client, "ada@example.com", password=PASSWORD)
    assert response.status == 200  # type: ignore[attr-defined]


async def test_recovery_kit_logs_in_once_and_is_replaced(gateway: Gateway) -> None:
    signed = await gateway.signup("ada@example.com")
    first_kit = signed["recoveryKit"]
    client = gateway.new_client()
    response = await _login(client, "ada@example.com", recoveryKit=first_kit.lower())
    assert response.status == 200  # type: ignore[attr-defined]
    second_kit = (await response.json())["recoveryKit"]  # type: ignore[attr-defined]
    assert second_kit.startswith("EXO-")
    assert second_kit != first_kit
    again = await _login(gateway.new_client(), "ada@example.com", recoveryKit=first_kit)
    assert again.status == 401  # type: ignore[attr-defined]
    fresh = await _login(gateway.new_client(), "ada@example.com", recoveryKit=second_kit)
    assert fresh.status == 200  # type: ignore[attr-defined]


async def test_login_needs_exactly_one_secret(gateway: Gateway) -> None:
    response = await _login(gateway.client, "ada@example.com")
    assert response.status == 400  # type: ignore[attr-defined]
    both = await _login(gateway.client, "ada@example.com", password=PASSWORD,
                        recoveryKit="EXO-" + "A" * 30)
    assert both.status == 400  # type: ignore[attr-defined]


async def test_idle_sessions_expire(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    gateway.clock.advance(hours=11)
    assert (await gateway.client.get("/api/auth/me")).status == 200
    gateway.clock.advance(hours=11)  # used 11 h ago: still inside the 12 h idle window
    assert (await gateway.client.get("/api/auth/me")).status == 200
    gateway.clock.advance(hours=12, seconds=1)
    response = await gateway.client.get("/api/auth/me")
    assert response.status == 401
    assert "expired" in (await response.json())["detail"]


async def test_sessions_end_at_the_absolute_expiry_however_busy(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    for _ in range(14):  # 7 days, used every 11 h 59 min: never idle long
        assert (await gateway.client.get("/api/auth/me")).status == 200
        gateway.clock.advance(hours=11, minutes=59)
    assert (await gateway.client.get("/api/auth/me")).status == 200
    gateway.clock.advance(hours=1)  # 7 days and 46 minutes after login
    assert (await gateway.client.get("/api/auth/me")).status == 401


async def test_the_platform_owner_flag_shows_in_me(gateway: Gateway) -> None:
    await bootstrap_platform_owner(gateway.database, "root@example.com", PASSWORD,
                                   hasher=PasswordHasher.for_tests())
    assert await bootstrap_platform_owner(gateway.database, "second@example.com", PASSWORD,
                                          hasher=PasswordHasher.for_tests()) is None
    response = await _login(gateway.client, "root@example.com", password=PASSWORD)
    assert response.status == 200  # type: ignore[attr-defined]
    me = await (await gateway.client.get("/api/auth/me")).json()
    assert (me["roles"], me["platformOwner"]) == (["user", "platform_owner"], True)
    assert (await _login(gateway.new_client(), "second@example.com",
                         password=PASSWORD)).status == 401  # type: ignore[attr-defined]


async def test_unknown_bearer_tokens_are_401(gateway: Gateway) -> None:
    for header in ("Bearer exo_agent_nope", "Bearer exo_sess_nope", "Basic abc", "Bearer"):
        response = await gateway.client.get("/api/registry/my-companies",
                                            headers={"Authorization": header})
        assert response.status == 401, header
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_an_agent_bearer_token_acts_for_its_user_without_admin_powers(
        gateway: Gateway) -> None:
    await bootstrap_platform_owner(gateway.database, "root@example.com", PASSWORD,
                                   hasher=PasswordHasher.for_tests())
    async with gateway.database.sessionmaker.begin() as s:
        owner = (await s.execute(select(User))).scalar_one()
        draft = await drafts.create_draft(s, config={})
        issued = await tokens.register_client(s, name="coding agent", draft_id=draft.id,
                                              now=gateway.clock())
        await tokens.approve_client(s, issued.client.id, user_id=owner.id)
        bearer = await tokens.redeem_draft_token(s, issued.secret.reveal(), now=gateway.clock())
    client = gateway.new_client()
    draft_only = await client.get("/api/registry/my-companies",
                                  headers={"Authorization": f"Bearer {issued.secret.reveal()}"})
    assert draft_only.status == 401  # redeemed: the draft token is spent
    headers = {"Authorization": f"Bearer {bearer.secret.reveal()}"}
    me = await (await client.get("/api/auth/me", headers=headers)).json()
    assert (me["user"]["id"], me["principal"], me["platformOwner"]) == (
        owner.id, "operator_client", False)
    created = await client.post("/api/registry/companies", headers=headers,
                                json={"slug": "agent-co", "displayName": "Agent Co"})
    assert created.status == 201
    async with gateway.database.sessionmaker() as s:
        event = (await s.execute(select(AuditEvent).where(
            AuditEvent.action == "company.create"))).scalar_one()
    assert (event.actor_kind.value, event.actor_id) == ("operator_client", issued.client.id)


async def test_a_draft_access_token_does_not_reach_the_registry(gateway: Gateway) -> None:
    async with gateway.database.sessionmaker.begin() as s:
        draft = await drafts.create_draft(s, config={})
        issued = await tokens.register_client(s, name="coding agent", draft_id=draft.id,
                                              now=gateway.clock())
    response = await gateway.client.get(
        "/api/registry/my-companies", headers={"Authorization": f"Bearer {issued.secret.reveal()}"})
    assert response.status == 403
    assert (await response.json())["code"] == "draft_token_scope"


# -- roles ---------------------------------------------------------------------------------------


async def test_another_accounts_exocorp_is_404_everywhere(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    stranger = gateway.new_client()
    await stranger.post("/api/auth/signup", json={"email": "eve@example.com",
                                                  "password": PASSWORD})
    unknown = []
    for method, path, body in (
            ("GET", "/api/registry/companies/acme", None),
            ("GET", "/api/registry/companies/acme/draft", None),
            ("POST", "/api/registry/companies/acme/draft", {"draft": {}}),
            ("GET", "/api/registry/companies/acme/bindings", None),
            ("GET", "/api/registry/companies/acme/update-handshake", None),
            ("POST", "/api/registry/companies/acme/provision", {}),
            ("POST", "/api/registry/companies/acme/stop", {}),
            ("DELETE", "/api/registry/companies/acme", {"confirm": "acme"})):
        theirs = await stranger.request(method, path, json=body)
        missing = await stranger.request(method, path.replace("acme", "no-such-co"), json=body)
        assert theirs.status == 404, (method, path)
        assert (await theirs.json())["detail"].replace("acme", "X") == \
            (await missing.json())["detail"].replace("no-such-co", "X")
        unknown.append(missing.status)
    assert set(unknown) == {404}
    assert [c["id"] for c in (await (await stranger.get(
        "/api/registry/my-companies")).json())["companies"]] == []
    assert gateway.cache.exocorp("acme") is not None
    assert (await gateway.client.get("/api/registry/companies/acme/draft")).status == 404


async def test_members_read_and_drive_but_only_the_owner_destroys(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    member = gateway.new_client()
    joined = await (await member.post("/api/auth/signup", json={
        "email": "bob@example.com", "password": PASSWORD})).json()
    async with gateway.database.sessionmaker.begin() as s:
        await registry.add_member(s, exocorp_id="acme", user_id=joined["user"]["id"],
                                  role=Role.MEMBER)
    detail = await (await member.get("/api/registry/companies/acme")).json()
    assert (detail["role"], detail["phase"]) == ("member", "Draft")
    fleet = await (await member.get("/api/registry/my-companies")).json()
    assert [(c["id"], c["role"]) for c in fleet["companies"]] == [("acme", "member")]
    saved = await member.post("/api/registry/companies/acme/draft", json={"draft": {}})
    assert saved.status == 201
    destroy = await member.delete("/api/registry/companies/acme", json={"confirm": "acme"})
    assert destroy.status == 403
    assert (await destroy.json())["code"] == "owner_required"
    assert gateway.cache.exocorp("acme") is not None
    owner_destroy = await gateway.client.delete("/api/registry/companies/acme",
                                                json={"confirm": "acme"})
    assert owner_destroy.status == 202
    async with gateway.database.sessionmaker() as s:
        events = (await s.execute(select(AuditEvent).where(AuditEvent.action == "destroy")
                                  .order_by(AuditEvent.id))).scalars().all()
    assert [(e.actor_id, e.outcome.value) for e in events] == [
        (joined["user"]["id"], "refused"), (detail["owner"], "succeeded")]


async def test_anonymous_callers_get_401_on_every_registry_endpoint(gateway: Gateway) -> None:
    for method, path in (("GET", "/api/registry/my-companies"),
                         ("POST", "/api/registry/companies"),
                         ("GET", "/api/registry/companies/acme"),
                         ("POST", "/api/registry/companies/acme/provision"),
                         ("GET", "/api/registry/provider-secrets"),
                         ("GET", "/api/registry/company-releases/catalog"),
                         ("GET", "/api/dashboard/summary")):
        response = await gateway.client.request(method, path)
        assert response.status == 401, (method, path)


def test_session_policy_comes_from_the_settings() -> None:
    from exocorp.api_gateway.settings import GatewaySettings

    policy = GatewaySettings(session_idle_timeout=timedelta(minutes=30)).session_policy
    assert policy.idle_timeout == timedelta(minutes=30)
    with pytest.raises(ValueError, match="positive"):
        GatewaySettings(session_idle_timeout=timedelta(0))


async def test_a_revocation_made_elsewhere_is_seen_within_the_cache_time(
        make_gateway: support.GatewayFactory) -> None:
    """Another replica's logout (here: the database directly) takes effect here within
    auth_cache_seconds; with the cache off, at once."""
    from exocorp.store import sessions

    for seconds in (5.0, 0.0):
        gateway = await make_gateway(auth_cache_seconds=seconds)
        await gateway.signup("ada@example.com")
        assert (await gateway.client.get("/api/auth/me")).status == 200
        async with gateway.database.sessionmaker.begin() as s:
            await sessions.revoke_session(s, _cookie(gateway), now=gateway.clock())
        expected_now = 200 if seconds else 401
        assert (await gateway.client.get("/api/auth/me")).status == expected_now
        gateway.clock.advance(seconds=seconds)
        assert (await gateway.client.get("/api/auth/me")).status == 401


async def test_a_removed_member_loses_access_within_the_cache_time(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    member = gateway.new_client()
    joined = await (await member.post("/api/auth/signup", json={
        "email": "bob@example.com", "password": PASSWORD})).json()
    async with gateway.database.sessionmaker.begin() as s:
        await registry.add_member(s, exocorp_id="acme", user_id=joined["user"]["id"])
    gateway.clock.advance(seconds=gateway.settings.auth_cache_seconds)
    assert (await member.get("/api/registry/companies/acme")).status == 200
    async with gateway.database.sessionmaker.begin() as s:
        await registry.remove_member(s, exocorp_id="acme", user_id=joined["user"]["id"])
    gateway.clock.advance(seconds=gateway.settings.auth_cache_seconds)
    assert (await member.get("/api/registry/companies/acme")).status == 404
    fleet = await (await member.get("/api/registry/my-companies")).json()
    assert fleet["companies"] == []
