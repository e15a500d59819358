"""The authorization matrix: every endpoint of the app (read from its route tables, so a new
endpoint without a row here fails) called by every kind of caller, each of which must get
exactly the status in its row. On the real control plane and operator, both databases.

Callers: ``anonymous``; ``user`` (logged in, unrelated to the exocorp in the path); ``member``,
``viewer`` (read-only member) and ``owner`` of that exocorp; ``other`` (an account with an
exocorp of its own); the ``admin`` (a platform owner, not a member); ``draft`` (a pending
agent's draft access token); ``bearer`` (an agent's bearer token approved by the owner);
``revoked`` (a bearer token the owner revoked). Session callers send their cookie, agents
``Authorization: Bearer``.

Requests are chosen so that nothing the next row needs changes: writes carry a body that an
authorized caller gets a 400 for (authorization is checked before the body, everywhere), or
act on throwaway objects (a spare credential, a spare agent token, a handoff kept for denying).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from exocorp.api_gateway.app import route_tables
from exocorp.api_gateway.keys import SETTINGS
from exocorp.api_gateway.main import bootstrap_platform_owner
from exocorp.k8s import resources as r
from exocorp.security import PasswordHasher
from exocorp.store import billing, registry
from exocorp.store.schema import Role
from tests.plugins.gateway_cluster import (
    PASSWORD,
    GatewayUnderTest,
    sample_draft,
    unique_slug,
)

pytestmark = pytest.mark.integration

CALLERS = ("anonymous", "user", "member", "viewer", "owner", "other", "admin", "draft",
           "bearer", "revoked")
Expect = dict[str, int]


def everyone(status: int) -> Expect:
    return dict.fromkeys(CALLERS, status)


def users(ok: int, *, bearer: int | None = None) -> Expect:
    """Any logged-in user (and an agent acting for one, unless ``bearer`` says otherwise)."""
    return {**dict.fromkeys(CALLERS, ok), "anonymous": 401, "revoked": 401, "draft": 403,
            "bearer": ok if bearer is None else bearer}


def humans(ok: int) -> Expect:
    """A person's session only: an agent's bearer token is 403."""
    return users(ok, bearer=403)


def members(ok: int, *, owner: int | None = None, member: int | None = None,
            viewer: int | None = None) -> Expect:
    """Owner, members and viewers of the exocorp (the owner's agent too); others 404. A viewer
    gets what a member gets unless ``viewer`` says otherwise."""
    member_gets = ok if member is None else member
    return {**users(404), "owner": ok if owner is None else owner, "member": member_gets,
            "viewer": member_gets if viewer is None else viewer,
            "bearer": ok if owner is None else owner}


def writes(ok: int) -> Expect:
    """Draft and lifecycle writes: members yes, viewers 403."""
    return members(ok, viewer=403)


def owners(ok: int) -> Expect:
    """The owner (and their agent) alone; members and viewers 403."""
    return members(ok, member=403)


def platform_owners(ok: int) -> Expect:
    return {**users(403), "admin": ok}


def draft_token(ok: int) -> Expect:
    return {**users(403), "draft": ok}


def but(expect: Expect, **changes: int) -> Expect:
    return {**expect, **changes}


@dataclass
class Row:
    expect: Expect
    body: Any = None
    """JSON body, or a function of (caller, world) giving it."""
    path: Mapping[str, str] | Callable[[str, World], Mapping[str, str]] = field(
        default_factory=dict)
    """Path parameters: ``{"id": "<world attribute>"}``, or a function of (caller, world)."""
    query: str = ""


@dataclass
class World:
    """What the callers act on."""

    company: str = ""
    secret_main: str = ""
    secret_spare: str = ""
    token_spare: str = ""
    handoff: str = ""
    handoff_to_deny: str = ""
    account: str = "acc_matrix"
    nothing: str = "inv_00000000000000000000000000"
    nobody: str = "usr_00000000000000000000000000"
    limit_scope: str = "default"
    price_book: str = ""
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)


def _company(caller: str, world: World) -> Mapping[str, str]:
    return {"id": world.company}


def _secret(caller: str, world: World) -> Mapping[str, str]:
    # The owner deletes one credential, their agent another; everyone else aims at the first.
    return {"id": world.secret_spare if caller == "bearer" else world.secret_main}


def _signup(caller: str, world: World) -> Any:
    return {"email": f"{caller}-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}


_AGENT_REQUEST = {"agentName": "matrix agent",
                  "company": {"slug": "matrix-co", "displayName": "Matrix"}}
_BAD_REASON = {"reason": 5}
COMPANY = "/api/registry/companies/{id}"
ACTIONS = ("provision", "update", "restart", "stop", "pause", "resume", "reprovision",
           "rollback")

ROWS: dict[tuple[str, str], Row] = {
    # health and documentation
    ("GET", "/healthz"): Row(everyone(200)),
    ("GET", "/readyz"): Row(everyone(200)),
    ("GET", "/api/openapi.json"): Row(everyone(200)),
    ("GET", "/api/docs"): Row(everyone(200)),
    ("GET", "/SKILL.md"): Row(everyone(200)),
    ("GET", "/skills/connect-agent.md"): Row(everyone(200)),
    ("GET", "/connect/{id}"): Row(everyone(200), path={"id": "handoff"}),
    # auth: signing up is for people (an agent's token, even a revoked one, is refused)
    ("POST", "/api/auth/signup"): Row(but(everyone(201), draft=403, bearer=403, revoked=403),
                                      body=_signup),
    ("POST", "/api/auth/login"): Row(everyone(400), body={}),
    ("POST", "/api/auth/logout"): Row(everyone(204)),
    ("GET", "/api/auth/me"): Row(users(200)),
    ("POST", "/api/auth/password"): Row(humans(400), body={}),
    # runs next to last: it ends the owner's sessions and revokes their agent (bearer: 401)
    ("POST", "/api/auth/logout-everywhere"): Row(but(humans(204), bearer=401)),
    ("GET", "/api/auth/tokens"): Row(humans(200)),
    ("DELETE", "/api/auth/tokens/{id}"): Row(
        but(humans(404), owner=204), path={"id": "token_spare"}),
    # runs after the DELETE above revoked the spare token: its owner hears why
    ("POST", "/api/auth/tokens/{id}/renew"): Row(
        but(humans(404), owner=409), path={"id": "token_spare"}),
    # registry
    ("GET", "/api/registry/my-companies"): Row(users(200)),
    # live streams: authorised like the reads they follow (the status is read, not the stream)
    ("GET", "/api/registry/my-companies/events"): Row(users(200)),
    ("GET", COMPANY + "/events"): Row(members(200), path=_company),
    ("POST", "/api/registry/companies"): Row(users(400), body={}),
    ("GET", COMPANY): Row(members(200), path=_company),
    ("DELETE", COMPANY): Row(owners(400), body={"confirm": 5}, path=_company),
    ("GET", COMPANY + "/draft"): Row(members(200), path=_company),
    ("POST", COMPANY + "/draft"): Row(writes(400), body={"draft": 5}, path=_company),
    **{("POST", f"{COMPANY}/{action}"): Row(writes(400), body=_BAD_REASON, path=_company)
       for action in ACTIONS},
    # members: the owner manages them; anyone may remove themself (here: a stranger, so 403)
    ("GET", COMPANY + "/members"): Row(members(200), path=_company),
    ("POST", COMPANY + "/invitations"): Row(owners(400), body={"email": 5}, path=_company),
    ("DELETE", COMPANY + "/invitations/{invitation_id}"): Row(
        owners(404), path={"id": "company", "invitation_id": "nothing"}),
    ("PATCH", COMPANY + "/members/{user_id}"): Row(
        owners(400), body={"role": 5}, path={"id": "company", "user_id": "nobody"}),
    ("DELETE", COMPANY + "/members/{user_id}"): Row(
        owners(404), path={"id": "company", "user_id": "nobody"}),
    ("POST", "/api/registry/invitations/{invitation_id}/accept"): Row(
        humans(404), path={"invitation_id": "nothing"}),
    ("POST", "/api/registry/invitations/{invitation_id}/decline"): Row(
        humans(404), path={"invitation_id": "nothing"}),
    ("GET", COMPANY + "/bindings"): Row(members(200), path=_company),
    ("GET", COMPANY + "/update-handshake"): Row(members(200), path=_company),
    ("GET", COMPANY + "/audit"): Row(members(200), path=_company),
    # the effective manifest: the owner's alone (members and viewers 403 owner_required)
    ("GET", COMPANY + "/manifest"): Row(owners(200), path=_company),
    ("GET", "/api/registry/company-releases/current"): Row(users(200)),
    ("GET", "/api/registry/company-releases/catalog"): Row(users(200)),
    ("GET", "/api/registry/provider-secrets"): Row(users(200)),
    ("POST", "/api/registry/provider-secrets"): Row(users(400), body={}),
    ("DELETE", "/api/registry/provider-secrets/{id}"): Row(
        but(users(404), owner=204, bearer=204), path=_secret),
    ("GET", "/api/dashboard/summary"): Row(users(200)),
    # admin
    ("GET", "/api/admin/companies"): Row(platform_owners(200)),
    ("GET", "/api/admin/companies/{id}/details"): Row(platform_owners(200), path=_company),
    ("GET", "/api/admin/companies/{id}/runtime"): Row(platform_owners(200), path=_company),
    ("POST", "/api/admin/companies/{id}/actions"): Row(
        platform_owners(400), body={"action": "explode"}, path=_company),
    ("GET", "/api/admin/runtime-stats"): Row(platform_owners(200)),
    ("GET", "/api/admin/companies/{id}/events"): Row(platform_owners(200), path=_company),
    ("GET", "/api/admin/limits"): Row(platform_owners(200)),
    ("PUT", "/api/admin/limits/{scope}"): Row(platform_owners(400), body=[],
                                              path={"scope": "limit_scope"}),
    ("POST", "/api/admin/users/{user_id}/disable"): Row(platform_owners(404),
                                                         path={"user_id": "nobody"}),
    ("POST", "/api/admin/users/{user_id}/enable"): Row(platform_owners(404),
                                                        path={"user_id": "nobody"}),
    ("GET", "/api/admin/audit"): Row(platform_owners(200)),
    # runtime
    ("GET", "/api/runtime/execution-providers/state"): Row(users(200)),
    # agents
    ("POST", "/api/agents/drafts"): Row(everyone(201), body=_AGENT_REQUEST),
    ("GET", "/api/agents/draft"): Row(draft_token(200)),
    ("POST", "/api/agents/redeem"): Row(draft_token(409)),  # the draft caller is not approved
    ("GET", "/api/agents/handoffs/{id}"): Row(humans(200), path={"id": "handoff"}),
    ("POST", "/api/agents/handoffs/{id}/approve"): Row(
        humans(400), body={"slug": 5}, path={"id": "handoff"}),
    ("POST", "/api/agents/handoffs/{id}/deny"): Row(humans(200),
                                                    path={"id": "handoff_to_deny"}),
    # billing (writes: a JSON array is no object, a 400 once the role is checked)
    ("GET", "/api/admin/billing/accounts"): Row(platform_owners(200)),
    ("PUT", "/api/admin/billing/accounts/{account_id}/price-book"): Row(
        platform_owners(400), body=[], path={"account_id": "account"}),
    ("POST", "/api/admin/billing/accounts/{account_id}/credits"): Row(
        platform_owners(400), body=[], path={"account_id": "account"}),
    ("GET", "/api/admin/billing/price-books"): Row(platform_owners(200)),
    ("POST", "/api/admin/billing/price-books"): Row(platform_owners(400), body=[]),
    ("GET", "/api/admin/billing/price-books/{price_book_id}"): Row(
        platform_owners(200), path={"price_book_id": "price_book"}),
    ("PUT", "/api/admin/billing/price-books/{price_book_id}"): Row(
        platform_owners(400), body=[], path={"price_book_id": "price_book"}),
    ("POST", "/api/admin/billing/price-books/{price_book_id}/default"): Row(
        platform_owners(200), path={"price_book_id": "price_book"}),  # already the default
    ("GET", "/api/runtime/billing/usage"): Row(but(members(200), admin=200),
                                               query="company={company}"),
}

# Run last, in this order: signing out everywhere, then logging out, end the callers' sessions.
LAST = (("POST", "/api/auth/logout-everywhere"), ("POST", "/api/auth/logout"))


def _route_keys() -> set[tuple[str, str]]:
    return {(info.method, info.path) for table in route_tables() for info in table.routes}


def test_every_endpoint_has_a_row() -> None:
    routed = _route_keys()
    missing = sorted(routed - set(ROWS))
    stale = sorted(set(ROWS) - routed)
    assert not missing, ("endpoints without a row in the authorization matrix "
                         f"(tests/integration/test_authorization_matrix.py): {missing}")
    assert not stale, f"rows for endpoints that no longer exist: {stale}"
    for key, row in ROWS.items():
        assert set(row.expect) == set(CALLERS), key


# -- the world -----------------------------------------------------------------------------------


class Http:
    """Raw requests with explicit credentials: the cookie jar keeps nothing, so a response that
    sets a cookie (signup) never changes who the next request is."""

    def __init__(self, base: str, session: aiohttp.ClientSession, cookie_name: str) -> None:
        self.base = base
        self.session = session
        self.cookie_name = cookie_name

    async def call(self, method: str, path: str, credentials: Mapping[str, str] | None = None,
                   json: Any = None) -> tuple[int, Any]:
        headers = {}
        if credentials and "cookie" in credentials:
            headers["Cookie"] = f"{self.cookie_name}={credentials['cookie']}"
        if credentials and "bearer" in credentials:
            headers["Authorization"] = f"Bearer {credentials['bearer']}"
        async with self.session.request(method, self.base + path, headers=headers,
                                        json=json) as response:
            if response.headers.get("Content-Type", "").startswith("text/event-stream"):
                return response.status, None  # a live stream: its status is the answer
            body = await response.json(content_type=None) \
                if "json" in response.headers.get("Content-Type", "") else await response.text()
            return response.status, body

    async def ok(self, method: str, path: str, credentials: Mapping[str, str] | None = None,
                 json: Any = None, expect: int = 200) -> Any:
        status, body = await self.call(method, path, credentials, json)
        assert status == expect, f"{method} {path}: {status} {body}"
        return body

    async def session_of(self, path: str, body: Any) -> dict[str, str]:
        async with self.session.post(self.base + path, json=body) as response:
            assert response.status in (200, 201), await response.text()
            return {"cookie": response.cookies[self.cookie_name].value,
                    "id": (await response.json())["user"]["id"]}


async def _agent(http: Http, world: World, approver: Mapping[str, str] | None,
                 redeem: bool = True) -> dict[str, str]:
    asked = await http.ok("POST", "/api/agents/drafts", json=_AGENT_REQUEST, expect=201)
    out = {"draft": asked["draftToken"], "handoff": asked["handoffId"]}
    if approver is None:
        return out
    slug = unique_slug("mx-agent")
    # Granted everything its human may grant (the matrix checks the role, not the grants:
    # tests/unit/test_agents_scope.py checks those).
    await http.ok("POST", f"/api/agents/handoffs/{asked['handoffId']}/approve", approver,
                  json={"slug": slug, "pairingCode": asked["pairingCode"],
                        "companies": [world.company], "allowDestroy": True,
                        "allowProviderSecrets": True}, expect=201)
    world.created.append(slug)
    if redeem:
        grant = await http.ok("POST", "/api/agents/redeem", {"bearer": asked["draftToken"]},
                              expect=201)
        out.update(bearer=grant["token"], token_id=grant["tokenId"])
    return out


@pytest.fixture
async def world(gateway: GatewayUnderTest) -> AsyncIterator[tuple[Http, World]]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    http = Http(gateway.base, session, gateway.app[SETTINGS].cookie_name)
    world = World()
    try:
        creds = world.credentials
        await bootstrap_platform_owner(gateway.database, "root@example.com", PASSWORD,
                                       hasher=PasswordHasher.for_tests())
        creds["admin"] = await http.session_of(
            "/api/auth/login", {"email": "root@example.com", "password": PASSWORD})
        for caller in ("owner", "member", "viewer", "user", "other"):
            creds[caller] = await http.session_of("/api/auth/signup", _signup(caller, world))
        world.company = unique_slug("mx")
        await http.ok("POST", "/api/registry/companies", creds["owner"], expect=201,
                      json={"slug": world.company, "displayName": "Matrix",
                            "draft": sample_draft("1.0.0")})
        world.created.append(world.company)
        other_company = unique_slug("mx-other")
        await http.ok("POST", "/api/registry/companies", creds["other"], expect=201,
                      json={"slug": other_company, "displayName": "Other"})
        world.created.append(other_company)
        async with gateway.database.sessionmaker.begin() as s:
            await registry.add_member(s, exocorp_id=world.company,
                                      user_id=creds["member"]["id"], role=Role.MEMBER)
            await registry.add_member(s, exocorp_id=world.company,
                                      user_id=creds["viewer"]["id"], role=Role.VIEWER)
        for name in ("main", "spare"):
            saved = await http.ok("POST", "/api/registry/provider-secrets", creds["owner"],
                                  expect=201, json={"provider": "anthropic", "name": name,
                                                    "value": f"sk-matrix-{name}"})
            setattr(world, f"secret_{name}", saved["id"])
        pending = await _agent(http, world, None)
        creds["draft"] = {"bearer": pending["draft"]}
        creds["bearer"] = {"bearer": (await _agent(http, world, creds["owner"]))["bearer"]}
        revoked = await _agent(http, world, creds["owner"])
        await http.ok("DELETE", f"/api/auth/tokens/{revoked['token_id']}", creds["owner"],
                      expect=204)
        creds["revoked"] = {"bearer": revoked["bearer"]}
        world.token_spare = (await _agent(http, world, creds["owner"]))["token_id"]
        world.handoff = (await _agent(http, world, None))["handoff"]
        world.handoff_to_deny = (await _agent(http, world, None))["handoff"]
        async with gateway.database.sessionmaker() as s:
            book = await billing.get_default_price_book(s)
        assert book is not None
        world.price_book = book.id
        creds["anonymous"] = {}
        yield http, world
    finally:
        await session.close()
        for name in world.created:
            await gateway.kube.delete(r.EXOCORPS, name)


def _resolve(template: str, row: Row, caller: str, world: World) -> str:
    params = row.path(caller, world) if callable(row.path) else {
        name: getattr(world, attribute) for name, attribute in row.path.items()}
    path = template
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {template}"
    query = row.query.replace("{company}", world.company)
    return path + (f"?{query}" if query else "")


async def test_every_caller_gets_exactly_its_status_on_every_endpoint(
        world: tuple[Http, World]) -> None:
    http, state = world
    # The rows' own order (a row may rely on one above it), the LAST ones at the end.
    order = list(ROWS)
    keys = sorted(_route_keys(), key=lambda key: (LAST.index(key) + 1 if key in LAST else 0,
                                                   order.index(key)))
    wrong: list[str] = []
    for method, template in keys:
        row = ROWS[(method, template)]
        for caller in CALLERS:
            path = _resolve(template, row, caller, state)
            body = row.body(caller, state) if callable(row.body) else row.body
            status, answer = await http.call(method, path, state.credentials[caller], body)
            if status != row.expect[caller]:
                code = answer.get("code") if isinstance(answer, dict) else ""
                wrong.append(f"{method} {template} as {caller}: {status} {code}, "
                             f"expected {row.expect[caller]}")
            if status >= 400 and isinstance(answer, dict):
                assert answer.get("status") == status  # problem+json everywhere
    assert not wrong, "authorization matrix mismatches:\n" + "\n".join(wrong)
