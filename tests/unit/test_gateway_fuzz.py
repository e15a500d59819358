"""Schemathesis over docs/openapi.json against the real gateway app (in process, served over
loopback HTTP; the Kubernetes API is the unit tests' in-memory stand-in), as each kind of caller:
``anonymous``, an account ``owner`` (session cookie), an ``agent`` (trusted-client bearer token
approved by the owner) and the ``admin`` (platform owner). For every operation, positive and
negative examples (bounded, derandomized), each also sent with the path parameters replaced by
ids that exist, so the handlers behind the 404 are reached too. Every response must:

- never be a 5xx (``not_a_server_error``);
- carry a status code, a Content-Type, headers and a body the document declares
  (``status_code_conformance``, ``content_type_conformance``, ``response_headers_conformance``,
  ``response_schema_conformance``).

Failures are collected, not stopped at, so one run reports every nonconformance at once. The
bounds (``MAX_EXAMPLES`` per operation, mode and role) keep the whole run in CI's budget.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.main import bootstrap_platform_owner
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.security import PasswordHasher
from exocorp.store import upgrade_to_head
from exocorp.testing import samples
from exocorp.testing.controlplane import free_port
from tests.plugins.gateway import FakeKube, synced_cache, unit_database

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "docs" / "openapi.json"
PASSWORD = "correct horse battery"
ROLES = ("anonymous", "owner", "agent", "admin")
MAX_EXAMPLES = 8
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@dataclass
class World:
    """The served app and what exists in it."""

    base: str
    cookie_name: str
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    """Known ids by path template prefix and parameter name, e.g. ``companies/id``."""

    def headers(self, role: str) -> dict[str, str]:
        creds = self.credentials.get(role, {})
        if "cookie" in creds:
            return {"Cookie": f"{self.cookie_name}={creds['cookie']}"}
        if "bearer" in creds:
            return {"Authorization": f"Bearer {creds['bearer']}"}
        return {}

    def throwaway_session(self) -> dict[str, str]:
        """A new session (the owner's) for logout, which ends the session it is sent with."""
        response = requests.post(self.base + "/api/auth/login", timeout=30,
                                 json={"email": self.ids["owner_email"], "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Cookie": f"{self.cookie_name}={response.cookies[self.cookie_name]}"}


class _ServedApp:
    """The gateway app in a thread of its own (its own event loop), so the synchronous
    schemathesis transport can call it like any server."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._cleanup: list[Any] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    async def _start(self) -> GatewaySettings:
        template = self.workdir / "template.db"
        await upgrade_to_head(f"sqlite+aiosqlite:///{template}")
        database = await unit_database(template, self.workdir / "gateway.db")
        await bootstrap_platform_owner(database, "root@example.com", PASSWORD,
                                       hasher=PasswordHasher.for_tests())
        kube = FakeKube()
        cache = await synced_cache(kube)
        # Generous throttles: the fuzzer is not guessing passwords (tests elsewhere prove 429).
        # Event streams end quickly, so the fuzzer (which reads whole bodies) gets them whole.
        settings = GatewaySettings(cookie_secure=False, login_max_failures=1_000_000,
                                   login_max_failures_per_ip=1_000_000, stream_max_seconds=0.2)
        app = create_app(settings, kube=kube, database=database, cache=cache,
                         hasher=PasswordHasher.for_tests())
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._cleanup = [runner, database]
        return settings

    async def _stop(self) -> None:
        runner, database = self._cleanup
        await runner.cleanup()
        await database.dispose()

    def __enter__(self) -> GatewaySettings:
        self.thread.start()
        settings: GatewaySettings = self.run(self._start())
        return settings

    def __exit__(self, *exc: object) -> None:
        if self._cleanup:
            self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


def _populate(world: World, suffix: str = "") -> None:
    """Every kind of caller and one object of every kind an id in a path can name (exocorp
    slugs end with ``suffix``, for a cluster shared with other tests). The platform owner
    ``root@example.com`` exists already."""
    http = requests.Session()
    base = world.base

    def post(path: str, body: Any, expect: int, headers: dict[str, str] | None = None) -> Any:
        response = http.post(base + path, json=body, headers=headers or {}, timeout=30)
        assert response.status_code == expect, f"{path}: {response.status_code} {response.text}"
        http.cookies.clear()
        return response

    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    signed = post("/api/auth/signup", {"email": email, "password": PASSWORD}, 201)
    world.credentials["owner"] = {"cookie": signed.cookies[world.cookie_name]}
    world.ids["owner_email"] = email
    admin = post("/api/auth/login", {"email": "root@example.com", "password": PASSWORD}, 200)
    world.credentials["admin"] = {"cookie": admin.cookies[world.cookie_name]}
    owner = world.headers("owner")
    post("/api/registry/companies", {"slug": f"acme{suffix}", "displayName": "Acme",
                                     "draft": samples.draft("1.0.0")}, 201, owner)
    world.ids["companies/id"] = f"acme{suffix}"
    secret = post("/api/registry/provider-secrets",
                  {"provider": "anthropic", "name": "main", "value": "sk-fuzz-value"}, 201, owner)
    world.ids["provider-secrets/id"] = secret.json()["id"]
    ask = {"agentName": "fuzzer",
           "company": {"slug": f"agent-co{suffix}", "displayName": "Agent Co"}}
    asked = post("/api/agents/drafts", ask, 201).json()
    post(f"/api/agents/handoffs/{asked['handoffId']}/approve",
         {"slug": f"agent-co{suffix}", "pairingCode": asked["pairingCode"],
          "companies": [f"acme{suffix}"], "allowDestroy": True,
          "allowProviderSecrets": True}, 201, owner)
    grant = post("/api/agents/redeem", None, 201,
                 {"Authorization": f"Bearer {asked['draftToken']}"}).json()
    world.credentials["agent"] = {"bearer": grant["token"]}
    spare = post("/api/agents/drafts", ask, 201).json()  # its token is the one to revoke
    post(f"/api/agents/handoffs/{spare['handoffId']}/approve",
         {"slug": f"spare-co{suffix}", "pairingCode": spare["pairingCode"]}, 201, owner)
    spare_grant = post("/api/agents/redeem", None, 201,
                       {"Authorization": f"Bearer {spare['draftToken']}"}).json()
    world.ids["tokens/id"] = spare_grant["tokenId"]
    pending = post("/api/agents/drafts", ask, 201).json()
    world.ids["handoffs/id"] = pending["handoffId"]
    world.ids["connect/id"] = pending["handoffId"]
    admin_headers = world.headers("admin")
    accounts = http.get(base + "/api/admin/billing/accounts", headers=admin_headers, timeout=30)
    world.ids["accounts/account_id"] = accounts.json()["items"][0]["id"]
    books = http.get(base + "/api/admin/billing/price-books", headers=admin_headers, timeout=30)
    world.ids["price-books/price_book_id"] = books.json()["items"][0]["id"]


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    served = _ServedApp(tmp_path_factory.mktemp("fuzz"))
    with served as settings:
        world = World(base=f"http://127.0.0.1:{served.port}", cookie_name=settings.cookie_name)
        _populate(world)
        yield world


def _known_id(world: World, path: str, name: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    for i, segment in enumerate(segments):
        if segment == "{" + name + "}" and i > 0:
            return world.ids.get(f"{segments[i - 1]}/{name}")
    return None


def _schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text()))


SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _send(world: World, role: str, case: schemathesis.Case, tally: Tally,
          session: requests.Session) -> None:
    headers = world.headers(role)
    if case.operation.path == "/api/auth/logout" and role in ("owner", "admin"):
        headers = world.throwaway_session()  # logout must not end the run's own session
    session.cookies.clear()
    # Who calls is the role's business: drop any credential the generator made up.
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items()
                        if k.lower() not in ("authorization", "cookie")}
    case.cookies = {}
    try:
        response = case.call(base_url=world.base, session=session, headers=headers, timeout=30)
    except requests.RequestException as exc:  # the server hung up: as bad as a 500
        tally.failures.append(f"{case.operation.label} as {role}: {exc!r}\n  "
                              f"{case.as_curl_command()}")
        return
    tally.requests += 1
    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (AssertionError, BaseExceptionGroup) as exc:  # every check that failed
        problems = [_title(e) for e in getattr(exc, "exceptions", [exc])]
        tally.failures.append(f"{case.operation.label} as {role} -> {response.status_code}: "
                              f"{'; '.join(problems)}\n  body: {response.text[:300]!r}\n  "
                              f"{case.as_curl_command(headers=headers)[:400]}")


def _title(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " / ".join(lines[:3])[:400]


def _exercise(world: World, role: str, operation: schemathesis.APIOperation,
              mode: schemathesis.GenerationMode, tally: Tally,
              max_examples: int = MAX_EXAMPLES) -> None:
    session = requests.Session()

    @hypothesis.settings(max_examples=max_examples, derandomize=True, database=None,
                         deadline=None, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        _send(world, role, case, tally, session)
        params = dict(case.path_parameters or {})
        known = {name: _known_id(world, operation.path, name) for name in params}
        if params and all(known.values()):
            case.path_parameters = {name: str(value) for name, value in known.items()}
            _send(world, role, case, tally, session)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Nothing can be invalid about an operation without parameters or body.
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise
    finally:
        session.close()


def fuzz(world: World, role: str, max_examples: int = MAX_EXAMPLES) -> Tally:
    """Every operation in both modes as ``role``; the tally of what came back."""
    tally = Tally()
    for operation in OPERATIONS:
        for mode in MODES:
            _exercise(world, role, operation, mode, tally, max_examples)
    print(f"\n{role}: {len(OPERATIONS)} operations, {tally.requests} requests, "
          f"statuses {dict(sorted(tally.statuses.items()))}")
    return tally


def assert_clean(tally: Tally) -> None:
    assert tally.requests >= len(OPERATIONS) * len(MODES)
    assert not tally.failures, (f"{len(tally.failures)} of {tally.requests} responses failed "
                                "their checks:\n" + "\n".join(tally.failures))


@pytest.mark.parametrize("role", ROLES)
def test_no_server_error_and_every_response_conforms(world: World, role: str) -> None:
    assert_clean(fuzz(world, role))
