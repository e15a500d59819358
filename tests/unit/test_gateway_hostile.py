"""Hostile callers on the gateway's unit fixtures (the real app, SQLite, the in-memory Kubernetes
stand-in). Endpoint lists are read from docs/openapi.json, so a new endpoint is covered without
touching this file:

- cross-account: every operation with a ``{...}`` path parameter, aimed at another account's
  objects with a body the owner would succeed with, by a stranger's session and by the
  stranger's agent: 403 or 404, and not a row of the database nor an object of the cluster
  changes;
- session fixation: a session id the client brings is never adopted, a login always issues a
  new one;
- logout: the old session token is 401 on every authenticated endpoint, as cookie and as bearer;
- cookie flags on login and logout: ``__Host-`` prefix, HttpOnly, Secure, SameSite, Path=/;
- a write from a foreign Origin, on every write endpoint: 403 ``cross_origin``, nothing changes;
- password guessing across many addresses from one client is throttled (429 + Retry-After), a
  successful login of the guesser's own account does not reset it; one address guessed from
  many clients is throttled per address.

Covered elsewhere (not repeated here): the full caller x endpoint status matrix on the real
cluster (tests/integration/test_authorization_matrix.py), cross-origin refusal variants
(tests/unit/test_gateway_middleware.py), per-address throttling and logout of one session
(tests/unit/test_gateway_auth.py), bad input changing nothing
(tests/integration/test_gateway_bad_input.py).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from exocorp.store import billing
from exocorp.store.schema.base import Base
from exocorp.testing import samples
from tests.plugins import gateway as support
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_agents import bearer_header

pytestmark = pytest.mark.unit

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json")
                      .read_text())
PASSWORD = "correct horse battery"
WRITES = ("post", "put", "patch", "delete")
# Columns a refused request may legitimately move: the time a credential was last used.
VOLATILE_COLUMNS = {"last_seen_at", "last_used_at"}
# Tables a refused request appends to by design: the audit trail records refusals.
APPEND_ONLY = {"audit_events"}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in DOCUMENT["paths"].items()
            for method, op in ops.items()]


def id_bearing() -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in operations() if "{" in path]


def authenticated() -> list[tuple[str, str]]:
    return [(method, path) for method, path, op in operations() if op.get("security")]


def writes() -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in operations() if method.lower() in WRITES]


async def snapshot(gateway: Gateway) -> dict[str, Any]:
    """Every row of every table (but the audit trail and last-use times) and every object of
    the cluster, as comparable values."""
    state: dict[str, Any] = {}
    async with gateway.database.sessionmaker() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in APPEND_ONLY:
                continue
            columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
            rows = (await s.execute(select(*columns))).all()
            state[table.name] = sorted(repr(tuple(row)) for row in rows)
    state["cluster"] = copy.deepcopy(gateway.kube.objects)
    return state


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return [key for key in before if before[key] != after.get(key)]


async def _agent_of(gateway: Gateway, approver: Any, slug: str) -> dict[str, str]:
    """An agent approved by ``approver`` (a client with a session), redeemed."""
    agent = gateway.new_client()
    asked = await (await agent.post("/api/agents/drafts", json={
        "agentName": "agent", "company": {"slug": slug, "displayName": slug.title()}})).json()
    approved = await approver.post(f"/api/agents/handoffs/{asked['handoffId']}/approve",
                                   json={"slug": slug, "pairingCode": asked["pairingCode"]})
    assert approved.status == 201, await approved.text()
    grant = await agent.post("/api/agents/redeem", headers=bearer_header(asked["draftToken"]))
    assert grant.status == 201, await grant.text()
    body = await grant.json()
    return {"token": body["token"], "token_id": body["tokenId"], "handoff": asked["handoffId"]}


# -- cross-account ------------------------------------------------------------------------------


def _victim_ids(world: Mapping[str, str], path: str) -> dict[str, str]:
    """The victim's object for each path parameter, by the collection it names."""
    segments = [s for s in path.split("/") if s]
    ids: dict[str, str] = {}
    for i, segment in enumerate(segments):
        if segment.startswith("{"):
            name = segment.strip("{}")
            collection = segments[i - 1]
            key = f"{collection}/{name}"
            assert key in world, (f"{path}: no victim object for {{{name}}} after "
                                  f"/{collection}/; add one to the world of this test")
            ids[name] = world[key]
    return ids


def _owner_body(method: str, path: str, world: Mapping[str, str]) -> Any:
    """A body the victim (or an admin) would succeed with; ``{}`` for anything new."""
    if method == "DELETE" and path == "/api/registry/companies/{id}":
        return {"confirm": world["companies/id"]}
    if path.endswith("/draft") and method == "POST":
        return {"draft": samples.draft("1.0.0")}
    if path.startswith("/api/registry/companies/{id}/"):
        return {"reason": "hostile"}
    if path.endswith("/approve"):
        return {"slug": "stolen-co", "pairingCode": "AAAA-AAAA"}  # the attacker guesses
    if path.endswith("/actions"):
        return {"action": "stop", "reason": "hostile"}
    if path.endswith("/price-book"):
        return {"priceBookId": None}
    if path.endswith("/credits"):
        return {"amount": 1000, "reference": "hostile"}
    if path.startswith("/api/admin/billing/price-books/") and method == "PUT":
        return {"rates": {"*": 0}}
    return None if method in ("GET", "DELETE") else {}


# Ids that are capabilities, not account-scoped objects: the handoff link an agent gives a
# human (anyone with a session may open it; once another account approved it, approve and deny
# are 409 ``handoff_taken``/``handoff_denied`` and nothing changes), and the public page of it.
CAPABILITY_PATHS = ("/api/agents/handoffs/{id}", "/connect/{id}")


async def test_every_id_bearing_endpoint_refuses_another_account_and_changes_nothing(
        gateway: Gateway) -> None:
    await gateway.signup("victim@example.com")
    victim = gateway.client
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    secret = await (await victim.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-victim"})).json()
    victims_agent = await _agent_of(gateway, victim, "victim-agent-co")
    async with gateway.database.sessionmaker() as s:
        me = await (await victim.get("/api/auth/me")).json()
        account = await billing.get_account_for_user(s, me["user"]["id"])
        book = await billing.get_default_price_book(s)
    assert book is not None
    invited = await (await victim.post("/api/registry/companies/acme/invitations",
                                       json={"email": "later@example.com"})).json()
    friend = gateway.new_client()
    await friend.post("/api/auth/signup", json={"email": "friend@example.com",
                                                "password": PASSWORD})
    await victim.post("/api/registry/companies/acme/invitations",
                      json={"email": "friend@example.com"})
    friend_me = await (await friend.get("/api/auth/me")).json()
    joined = await friend.post(
        f"/api/registry/invitations/{friend_me['invitations'][0]['id']}/accept")
    assert joined.status == 200
    world = {"companies/id": "acme", "provider-secrets/id": secret["id"],
             "invitations/invitation_id": invited["id"],
             "members/user_id": friend_me["user"]["id"],
             "tokens/id": victims_agent["token_id"], "handoffs/id": victims_agent["handoff"],
             "connect/id": victims_agent["handoff"], "accounts/account_id": account.id,
             "price-books/price_book_id": book.id, "limits/scope": me["user"]["id"],
             "users/user_id": me["user"]["id"]}

    stranger = gateway.new_client()
    assert (await stranger.post("/api/auth/signup", json={
        "email": "eve@example.com", "password": PASSWORD})).status == 201
    await gateway.company("evil-co", client=stranger)
    strangers_agent = await _agent_of(gateway, stranger, "evil-agent-co")
    attackers = {"stranger": (stranger, {}),
                 "stranger's agent": (gateway.new_client(),
                                      bearer_header(strangers_agent["token"]))}

    endpoints = id_bearing()
    assert len(endpoints) >= 20  # the document really was read
    before = await snapshot(gateway)
    wrong: list[str] = []
    for method, template in endpoints:
        path = template
        for name, value in _victim_ids(world, template).items():
            path = path.replace("{" + name + "}", value)
        body = _owner_body(method, template, world)
        for who, (client, headers) in attackers.items():
            response = await client.request(method, path, json=body, headers=headers)
            status = response.status
            allowed = {403, 404}
            if template.startswith(CAPABILITY_PATHS):
                allowed = {200, 403, 409} if template.startswith("/api/") else {200}
            text = await response.text()
            if status not in allowed:
                wrong.append(f"{method} {template} as {who}: {status} {text[:200]}")
            if template.startswith("/api/agents/handoffs/") and status == 200:
                # the link's page data: never who approved it or what they own
                for leaked in ("victim@example.com", me["user"]["id"], "acme"):
                    if leaked in text:
                        wrong.append(f"{method} {template} as {who}: shows {leaked!r}")
            after = await snapshot(gateway)
            if changes(before, after):
                wrong.append(f"{method} {template} as {who}: changed "
                             f"{changes(before, after)}")
                before = after
    assert not wrong, "\n".join(wrong)
    # and the victim still has everything
    assert (await victim.get("/api/registry/companies/acme")).status == 200
    assert (await gateway.new_client().get(
        "/api/auth/me", headers=bearer_header(victims_agent["token"]))).status == 200


# -- sessions ------------------------------------------------------------------------------------


def _set_cookie(response: Any, name: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar[name].value


async def test_a_session_id_the_client_brings_is_never_adopted(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    name = gateway.settings.cookie_name
    old = gateway.client.session.cookie_jar.filter_cookies(gateway.client.make_url("/"))[name]
    planted = "exo_sess_" + "A" * 43  # attacker-chosen, well-formed
    for brought in (planted, old.value):  # a made-up id, and a live session of the same user
        client = gateway.new_client()
        response = await client.post("/api/auth/login", headers={"Cookie": f"{name}={brought}"},
                                     json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status == 200
        issued = _set_cookie(response, name)
        assert issued != brought
        assert issued.startswith("exo_sess_")
    probe = gateway.new_client()
    assert (await probe.get("/api/auth/me", headers={"Cookie": f"{name}={planted}"})).status \
        == 401
    assert (await probe.get("/api/auth/me", headers=bearer_header(planted))).status == 401


async def test_two_logins_get_two_different_sessions(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    name = gateway.settings.cookie_name
    issued = set()
    for _ in range(2):
        response = await gateway.new_client().post(
            "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        issued.add(_set_cookie(response, name))
    assert len(issued) == 2


async def test_after_logout_the_old_session_is_401_on_every_authenticated_endpoint(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    name = gateway.settings.cookie_name
    token = gateway.client.session.cookie_jar.filter_cookies(
        gateway.client.make_url("/"))[name].value
    assert (await gateway.client.post("/api/auth/logout")).status == 204
    replay = gateway.new_client()
    endpoints = authenticated()
    assert len(endpoints) >= 40
    wrong = []
    for method, template in endpoints:
        path = re.sub(r"\{[a-z_]+\}", "x_1", template.replace("{id}", "acme"))
        for headers in ({"Cookie": f"{name}={token}"}, bearer_header(token)):
            response = await replay.request(method, path, headers=headers, json={})
            if response.status != 401:
                wrong.append(f"{method} {template} with {next(iter(headers))}: "
                             f"{response.status}")
    assert not wrong, "the revoked session still works:\n" + "\n".join(wrong)


def _attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "")
            for p in parts[1:]}


async def test_login_and_logout_cookies_carry_every_flag(
        make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(cookie_secure=True)
    await gateway.signup("ada@example.com")
    client = gateway.new_client()
    login = await client.post("/api/auth/login",
                              json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status == 200
    token = _set_cookie(login, "__Host-exocorp_session")
    for response in (login, await client.post(
            "/api/auth/logout", headers={"Cookie": f"__Host-exocorp_session={token}"})):
        [header] = response.headers.getall("Set-Cookie")
        assert header.startswith("__Host-exocorp_session=")
        attributes = _attributes(header)
        assert {"httponly", "secure"} <= set(attributes), header
        assert attributes["samesite"] == "Lax"
        assert attributes["path"] == "/"
        assert "domain" not in attributes  # __Host-: pinned to this host
    assert _attributes(response.headers["Set-Cookie"])["max-age"] == "0"  # logout clears it


# -- cross-origin writes ------------------------------------------------------------------------


async def test_a_write_from_a_foreign_origin_is_refused_on_every_write_endpoint(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    world = {"companies/id": "acme", "provider-secrets/id": "pc_x", "tokens/id": "tok_x",
             "handoffs/id": "h_x", "connect/id": "h_x", "accounts/account_id": "acct_x",
             "price-books/price_book_id": "pb_x", "invitations/invitation_id": "inv_x",
             "members/user_id": "usr_x", "limits/scope": "default", "users/user_id": "usr_x"}
    before = await snapshot(gateway)
    endpoints = writes()
    assert len(endpoints) >= 25
    wrong = []
    for method, template in endpoints:
        path = template
        for name, value in _victim_ids(world, template).items():
            path = path.replace("{" + name + "}", value)
        body = _owner_body(method, template, world)
        for headers in ({"Origin": "https://evil.example"},
                        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}):
            response = await gateway.client.request(method, path, json=body, headers=headers)
            problem = await response.json() if response.status == 403 else {}
            if (response.status, problem.get("code")) != (403, "cross_origin"):
                wrong.append(f"{method} {template}: {response.status} {problem}")
    after = await snapshot(gateway)
    assert not wrong, "\n".join(wrong)
    assert not changes(before, after)


# -- password guessing ----------------------------------------------------------------------------


async def test_guessing_across_many_addresses_from_one_client_is_throttled(
        make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(login_max_failures=3, login_max_failures_per_ip=5)
    await gateway.signup("mallory@example.com")  # the guesser's own account
    for i in range(3):
        await gateway.new_client().post("/api/auth/signup", json={
            "email": f"user{i}@example.com", "password": PASSWORD})
    guesser = gateway.new_client()
    statuses = []
    for attempt in range(6):
        # a different address each time: below the per-address limit everywhere
        response = await guesser.post("/api/auth/login", json={
            "email": f"user{attempt % 3}@example.com", "password": f"guess number {attempt}"})
        statuses.append(response.status)
        # logging into one's own account in between does not wipe the client's failures
        await guesser.post("/api/auth/login",
                           json={"email": "mallory@example.com", "password": PASSWORD})
    assert statuses == [401] * 5 + [429]
    throttled = await guesser.post("/api/auth/login", json={
        "email": "user0@example.com", "password": PASSWORD})  # even the right password waits
    assert throttled.status == 429
    retry_after = int(throttled.headers["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    gateway.clock.advance(seconds=retry_after)
    assert (await guesser.post("/api/auth/login", json={
        "email": "user0@example.com", "password": PASSWORD})).status == 200


async def test_one_address_guessed_from_many_clients_is_throttled_per_address(
        make_gateway: support.GatewayFactory) -> None:
    # Clients told apart by a trusted proxy's X-Forwarded-For, as behind the chart's Ingress.
    gateway = await make_gateway(login_max_failures=3, trusted_proxies=("127.0.0.0/8",))
    await gateway.signup("ada@example.com")
    await gateway.new_client().post("/api/auth/signup", json={
        "email": "bob@example.com", "password": PASSWORD})
    for i in range(3):
        response = await gateway.new_client().post(
            "/api/auth/login", json={"email": "ADA@example.com", "password": "nope nope nope"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"})
        assert response.status == 401
    fresh = {"X-Forwarded-For": "198.51.100.7"}
    throttled = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
        headers=fresh)
    assert throttled.status == 429
    wait = int(throttled.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    assert (await gateway.new_client().post(  # other accounts are unaffected
        "/api/auth/login", json={"email": "bob@example.com", "password": PASSWORD},
        headers=fresh)).status == 200
    gateway.clock.advance(seconds=wait)
    assert (await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
        headers=fresh)).status == 200
