"""Bad input for every write endpoint, over HTTP on the real control plane and both databases:
malformed JSON, wrong types, missing fields, unknown ids and oversized bodies each get the right
4xx, and nothing changes: not the database, not the Exocorp, not the credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from exocorp import names
from exocorp.k8s import resources as r
from exocorp.store.schema import (
    BillingAccount,
    CreditEntry,
    Draft,
    ExocorpRecord,
    Membership,
    RecoveryKit,
    User,
    UserSession,
)
from exocorp.testing.platform import PLATFORM_NAMESPACE
from tests.plugins.gateway_cluster import (
    PASSWORD,
    GatewayUnderTest,
    sample_draft,
    unique_slug,
)
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration

OVERSIZED = {"padding": "x" * 70_000}  # the default limit is 64 KiB
ACTIONS = ("provision", "update", "restart", "stop", "pause", "resume", "reprovision", "rollback")


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: Any  # JSON value, or bytes sent as-is with Content-Type: application/json
    status: int
    code: str | None = None

    def __str__(self) -> str:
        shown = self.body if isinstance(self.body, bytes) else repr(self.body)[:60]
        return f"{self.method} {self.path} {shown!r}"


def _cases(slug: str, email: str) -> list[Case]:
    company = f"/api/registry/companies/{slug}"
    unknown = "/api/registry/companies/no-such-company"
    cases = []
    for path in ("/api/auth/signup", "/api/auth/login"):
        cases += [
            Case("POST", path, b"{\"email\": ", 400, "invalid_json"),
            Case("POST", path, b"[]", 400, "invalid_json"),
            Case("POST", path, {"email": 42, "password": ["x"]}, 400, "invalid_request"),
            Case("POST", path, {}, 400, "invalid_request"),
            Case("POST", path, {"email": email, "password": PASSWORD, **OVERSIZED}, 413),
        ]
    cases.append(Case("POST", "/api/auth/signup", {"email": email, "password": PASSWORD,
                                                   "platformOwner": True}, 400))
    cases += [
        Case("POST", "/api/registry/companies", b"{slug", 400, "invalid_json"),
        Case("POST", "/api/registry/companies", {"slug": 7, "displayName": None}, 400),
        Case("POST", "/api/registry/companies", {"slug": unique_slug()}, 400),
        Case("POST", "/api/registry/companies", {"slug": "Bad Slug!", "displayName": "x"}, 400),
        Case("POST", "/api/registry/companies",
             {"slug": unique_slug(), "displayName": "X", "draft": {"channel": "nightly"}}, 400),
        Case("POST", "/api/registry/companies", {"slug": unique_slug(), "displayName": "X",
                                                 **OVERSIZED}, 413),
        Case("POST", "/api/registry/companies", {"slug": slug, "displayName": "Dup"}, 409,
             "slug_taken"),
        Case("POST", f"{company}/draft", b"not json", 400, "invalid_json"),
        Case("POST", f"{company}/draft", {"draft": "a string"}, 400),
        Case("POST", f"{company}/draft", {"draft": {"config": {"agents": [{"name": "x"}]}}}, 400),
        Case("POST", f"{company}/draft", {}, 400),
        Case("POST", f"{company}/draft", {"draft": sample_draft(), "baseVersion": "one"}, 400),
        Case("POST", f"{company}/draft", {"draft": sample_draft(), "baseVersion": 7}, 409,
             "stale_version"),
        Case("POST", f"{unknown}/draft", {"draft": sample_draft()}, 404),
        Case("POST", f"{company}/draft", {"draft": sample_draft(), **OVERSIZED}, 413),
    ]
    for action in ACTIONS:
        cases += [
            Case("POST", f"{company}/{action}", b"{\"reason\": ", 400, "invalid_json"),
            Case("POST", f"{company}/{action}", {"reason": 12}, 400),
            Case("POST", f"{company}/{action}", {"confirm": slug}, 400),
            Case("POST", f"{unknown}/{action}", {"reason": "x"}, 404),
            Case("POST", f"{company}/{action}", {"reason": "x", **OVERSIZED}, 413),
        ]
    cases += [
        Case("POST", f"{company}/pause", {}, 400, "reason_required"),
        Case("POST", f"{company}/update", {"version": "latest"}, 400),
        Case("POST", f"{company}/rollback", {"revision": 0}, 400),
        Case("DELETE", company, b"{", 400, "invalid_json"),
        Case("DELETE", company, {"confirm": 5}, 400),
        Case("DELETE", company, {}, 400, "confirmation_mismatch"),
        Case("DELETE", company, {"confirm": slug.upper()}, 400, "confirmation_mismatch"),
        Case("DELETE", "/api/registry/companies/no-such-company", {"confirm": "x"}, 404),
        Case("DELETE", company, {"confirm": slug, **OVERSIZED}, 413),
        Case("POST", "/api/registry/provider-secrets", b"]", 400, "invalid_json"),
        Case("POST", "/api/registry/provider-secrets",
             {"provider": "anthropic", "name": "main", "value": 123}, 400),
        Case("POST", "/api/registry/provider-secrets", {"provider": "anthropic",
                                                        "name": "main"}, 400),
        Case("POST", "/api/registry/provider-secrets",
             {"provider": "anthropic", "name": "Main Key", "value": "v"}, 400),
        Case("POST", "/api/registry/provider-secrets",
             {"provider": "openai", "name": "main", "value": "v"}, 409, "provider_mismatch"),
        Case("POST", "/api/registry/provider-secrets",
             {"provider": "anthropic", "name": "main", "value": "v" * 70_000}, 413),
        Case("DELETE", "/api/registry/provider-secrets/pc-no-such-secret", None, 404),
    ]
    return cases


async def _snapshot(gateway: GatewayUnderTest, slug: str) -> dict[str, Any]:
    async with gateway.database.sessionmaker() as s:
        tables: dict[str, Any] = {}
        for model, columns in (
                (User, ("id", "email", "password_hash", "platform_owner", "disabled")),
                (ExocorpRecord, ("id", "slug", "owner_user_id", "display_name", "destroyed_at")),
                (Membership, ("user_id", "exocorp_id", "role")),
                (Draft, ("id", "exocorp_id", "version", "config")),
                (BillingAccount, ("id", "balance", "state", "price_book_id")),
                (CreditEntry, ("id", "amount")),
                (RecoveryKit, ("user_id", "kit_hash")),
                (UserSession, ("id_hash", "revoked_at"))):
            rows = (await s.execute(select(model))).scalars().all()
            tables[model.__tablename__] = sorted(
                repr(tuple(getattr(row, c) for c in columns)) for row in rows)
    exocorp = await gateway.kube.get(r.EXOCORPS, slug)
    secrets = await gateway.kube.list(r.SECRETS, PLATFORM_NAMESPACE,
                                      label_selector=f"{names.LABEL_CREDENTIAL}=true")
    # The operator writes status all the time; the request could only have changed the spec.
    tables["exocorp"] = (exocorp["metadata"]["generation"], exocorp["spec"],
                         exocorp["metadata"].get("deletionTimestamp"))
    tables["secrets"] = sorted((s["metadata"]["name"], s["metadata"]["resourceVersion"])
                               for s in secrets["items"])
    return tables


async def test_bad_input_to_every_write_endpoint_changes_nothing(
        gateway: GatewayUnderTest) -> None:
    api = gateway.client()
    signed = await api.signup()
    email = signed["user"]["email"]
    slug = unique_slug("bad")
    await api.ok("POST", "/api/registry/companies", 201,
                 json={"slug": slug, "displayName": "Bad Input", "draft": sample_draft("1.0.0")})
    await api.ok("POST", "/api/registry/provider-secrets", 201,
                 json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    before = await _snapshot(gateway, slug)
    failures = []
    for case in _cases(slug, email):
        kwargs: dict[str, Any] = ({"data": case.body,
                                   "headers": {"Content-Type": "application/json"}}
                                  if isinstance(case.body, bytes) else {"json": case.body})
        status, body = await api.call(case.method, case.path, **kwargs)
        if status != case.status:
            failures.append(f"{case}: expected {case.status}, got {status} {body}")
            continue
        if not isinstance(body, dict) or body.get("status") != status:
            failures.append(f"{case}: not a problem body: {body!r}")
        elif case.code is not None and body.get("code") != case.code:
            failures.append(f"{case}: expected code {case.code}, got {body.get('code')}")
        elif status == 400 and body.get("code") == "invalid_request" and not body.get("errors"):
            failures.append(f"{case}: a 400 without field errors")
        if CANARY_SECRET in repr(body):
            failures.append(f"{case}: the credential value leaked")
        after = await _snapshot(gateway, slug)
        if after != before:
            changed = [key for key in before if before[key] != after[key]]
            failures.append(f"{case}: changed {changed}")
            before = after
    assert not failures, "\n".join(failures)
    assert (await api.company(slug))["phase"] == "Draft"
