"""Idempotency-Key on POSTs (Stripe semantics) and 503 for an unreachable database, on the real
app with the in-memory Kubernetes stand-in. The crash and outage cases against real processes
are in tests/integration/test_gateway_idempotency.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event, select, update
from sqlalchemy import exc as sa_exc

from exocorp import names
from exocorp.api_gateway.errors import as_problem
from exocorp.api_gateway.idempotency import IdempotencyClaim
from exocorp.k8s import ApiError
from exocorp.k8s import resources as r
from exocorp.lifecycle import perform
from exocorp.store import idempotency as records
from exocorp.store.outage import database_unavailable
from exocorp.store.schema import AuditEvent, IdempotencyRecord
from exocorp.testing import samples
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

COMPANY = {"slug": "acme", "displayName": "Acme"}
KEY = "3f0e4d9a-6a53-4c51-9a0b-5d1c2e7f8a90"


def _key(key: str = KEY) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def _post(gateway: Gateway, path: str, body: Any = None, key: str = KEY,
                ) -> tuple[int, Any, Any]:
    kwargs: dict[str, Any] = {"headers": _key(key)}
    if body is not None:
        kwargs["json"] = body
    response = await gateway.client.post(path, **kwargs)
    text = await response.text()
    return response.status, (json.loads(text) if text else None), response.headers


async def _ready_company(gateway: Gateway) -> str:
    me = await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await gateway.kube.create(r.SECRETS, samples.provider_secret(
        "ada-anthropic", "exocorp-system", me["user"]["id"], "anthropic", "sk-x"),
        "exocorp-system")
    user_id: str = me["user"]["id"]
    return user_id


async def _audit(gateway: Gateway, action: str) -> list[AuditEvent]:
    async with gateway.database.sessionmaker() as s:
        return list((await s.execute(select(AuditEvent).where(
            AuditEvent.action == action))).scalars())


async def _make_pending(gateway: Gateway, user_id: str, key: str = KEY) -> None:
    """As a gateway that died after its write leaves it: pending, and old enough to take over."""
    async with gateway.database.sessionmaker.begin() as s:
        await s.execute(update(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key).values(
            response_status=None, response_body=None, completed_at=None,
            created_at=gateway.clock() - timedelta(minutes=1)))


def _patches(gateway: Gateway) -> int:
    return sum(1 for call in gateway.kube.calls if call[:2] == ("patch", "exocorps"))


async def test_a_retried_create_replays_the_stored_answer_and_creates_once(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    first = await _post(gateway, "/api/registry/companies", COMPANY)
    again = await _post(gateway, "/api/registry/companies", COMPANY)
    assert first[0] == again[0] == 201
    assert again[1] == first[1]
    assert again[2]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first[2]
    assert again[2]["Location"] == first[2]["Location"] == "/api/registry/companies/acme"
    assert gateway.kube.calls.count(("create", "exocorps", "acme")) == 1
    assert len(await _audit(gateway, "company.create")) == 1


async def test_the_same_key_with_another_request_is_422_and_changes_nothing(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    assert (await _post(gateway, "/api/registry/companies", COMPANY))[0] == 201
    status, body, headers = await _post(gateway, "/api/registry/companies",
                                        {"slug": "other", "displayName": "Other"})
    assert (status, body["code"]) == (422, "idempotency_key_reused")
    assert headers["Content-Type"].startswith("application/problem+json")
    assert ("create", "exocorps", "other") not in gateway.kube.calls


async def test_keys_are_scoped_per_user(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    assert (await _post(gateway, "/api/registry/companies", COMPANY))[0] == 201
    other = gateway.new_client()
    async with other.post("/api/auth/signup", json={"email": "bob@example.com",
                                                    "password": "correct horse battery"}):
        pass
    async with other.post("/api/registry/companies", headers=_key(),
                          json={"slug": "bobco", "displayName": "Bob"}) as response:
        assert response.status == 201
        assert "Idempotent-Replayed" not in response.headers


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve-key"])
async def test_an_invalid_key_is_400(gateway: Gateway, key: str) -> None:
    await gateway.signup("ada@example.com")
    status, body, _ = await _post(gateway, "/api/registry/companies", COMPANY, key=key)
    assert (status, body["code"]) == (400, "invalid_idempotency_key")
    assert ("create", "exocorps", "acme") not in gateway.kube.calls


async def test_a_key_of_255_characters_is_fine(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    assert (await _post(gateway, "/api/registry/companies", COMPANY, key="k" * 255))[0] == 201


async def test_a_request_still_in_flight_is_409_with_retry_after(gateway: Gateway) -> None:
    user_id = (await gateway.signup("ada@example.com"))["user"]["id"]
    async with gateway.database.sessionmaker.begin() as s:  # another replica is on it
        await records.begin_request(
            s, user_id=user_id, key=KEY, method="POST", path="/api/registry/companies",
            fingerprint=records.request_fingerprint(
                "POST", "/api/registry/companies", json.dumps(COMPANY).encode()),
            now=gateway.clock())
    status, body, headers = await _post(gateway, "/api/registry/companies", COMPANY)
    assert (status, body["code"]) == (409, "idempotency_in_progress")
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert ("create", "exocorps", "acme") not in gateway.kube.calls


async def test_a_5xx_is_not_stored_and_frees_the_key(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    gateway.kube.fail_next["create"] = ApiError(500, "InternalError", "etcd hiccup")
    assert (await _post(gateway, "/api/registry/companies", COMPANY))[0] == 500
    status, _, headers = await _post(gateway, "/api/registry/companies", COMPANY)
    assert status == 201
    assert "Idempotent-Replayed" not in headers


async def test_a_validation_400_is_not_stored(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    assert (await _post(gateway, "/api/registry/companies", {"slug": "acme"}))[0] == 400
    assert (await _post(gateway, "/api/registry/companies", COMPANY))[0] == 201


async def test_a_refused_action_is_replayed_not_rerun(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    first = await _post(gateway, "/api/registry/companies/acme/resume")
    again = await _post(gateway, "/api/registry/companies/acme/resume")
    assert first[0] == again[0] == 409
    assert again[1] == first[1]
    assert again[2]["Idempotent-Replayed"] == "true"
    assert len(await _audit(gateway, "resume")) == 1


async def test_an_action_is_recorded_on_the_object_with_its_key(gateway: Gateway) -> None:
    user_id = await _ready_company(gateway)
    status, body, _ = await _post(gateway, "/api/registry/companies/acme/provision")
    assert status == 202, body
    obj = await gateway.kube.get(r.EXOCORPS, "acme")
    digest = IdempotencyClaim(scope=user_id, key=KEY, stored_key=KEY).digest
    entry = perform.applied_request(obj, digest)
    assert entry is not None
    assert entry["action"] == "provision"
    assert KEY not in obj["metadata"]["annotations"][names.ANNOTATION_REQUEST_KEYS]


async def test_a_retry_after_a_crash_past_the_write_answers_the_original_and_acts_once(
        gateway: Gateway) -> None:
    user_id = await _ready_company(gateway)
    status, first, _ = await _post(gateway, "/api/registry/companies/acme/provision")
    assert status == 202
    generation = (await gateway.kube.get(r.EXOCORPS, "acme"))["metadata"]["generation"]
    patches = _patches(gateway)
    await _make_pending(gateway, user_id)
    status, again, headers = await _post(gateway, "/api/registry/companies/acme/provision")
    assert status == 202, again
    assert "Idempotent-Replayed" not in headers  # reconstructed, not replayed from the record
    assert (again["action"], again["exocorpId"], again["details"]) == (
        first["action"], first["exocorpId"], first["details"])
    assert _patches(gateway) == patches
    assert (await gateway.kube.get(r.EXOCORPS, "acme"))["metadata"]["generation"] == generation
    events = await _audit(gateway, "provision")
    assert [e.outcome.value for e in events] == ["succeeded", "succeeded"]
    assert (events[1].details or {}).get("recoveredRetry") is True
    # and the reconstructed answer is now stored: the next retry is a plain replay
    replay = await _post(gateway, "/api/registry/companies/acme/provision")
    assert replay[2]["Idempotent-Replayed"] == "true"
    assert replay[1] == again


async def test_a_taken_over_key_without_the_write_runs_the_action(gateway: Gateway) -> None:
    user_id = await _ready_company(gateway)
    async with gateway.database.sessionmaker.begin() as s:  # died before its write
        await records.begin_request(
            s, user_id=user_id, key=KEY, method="POST",
            path="/api/registry/companies/acme/provision",
            fingerprint=records.request_fingerprint(
                "POST", "/api/registry/companies/acme/provision", b""),
            now=gateway.clock() - timedelta(minutes=1))
    status, body, _ = await _post(gateway, "/api/registry/companies/acme/provision")
    assert (status, body["phase"]) == (202, "Provisioning")
    assert _patches(gateway) == 1


async def test_a_create_retried_after_its_commit_answers_the_original(gateway: Gateway) -> None:
    user_id = (await gateway.signup("ada@example.com"))["user"]["id"]
    status, first, _ = await _post(gateway, "/api/registry/companies", COMPANY)
    assert status == 201
    await _make_pending(gateway, user_id)
    status, again, _ = await _post(gateway, "/api/registry/companies", COMPANY)
    assert status == 201, again
    assert again["id"] == first["id"] == "acme"
    assert gateway.kube.calls.count(("create", "exocorps", "acme")) == 1


async def test_a_create_retried_after_the_object_but_before_the_commit_adopts_it(
        gateway: Gateway) -> None:
    user_id = (await gateway.signup("ada@example.com"))["user"]["id"]
    digest = IdempotencyClaim(scope=user_id, key=KEY, stored_key=KEY).digest
    entry = {"key": digest, "action": "company.create", "at": "2030-01-01T11:59:00+00:00"}
    await gateway.kube.create(r.EXOCORPS, {  # what the dead request left: object, no row
        "apiVersion": names.API_VERSION, "kind": names.EXOCORP_KIND,
        "metadata": {"name": "acme", "annotations": {
            names.ANNOTATION_REQUEST_KEYS: perform.request_keys_annotation({}, entry)}},
        "spec": {"owner": user_id, "displayName": "Acme", "slug": "acme"}})
    async with gateway.database.sessionmaker.begin() as s:
        await records.begin_request(
            s, user_id=user_id, key=KEY, method="POST", path="/api/registry/companies",
            fingerprint=records.request_fingerprint(
                "POST", "/api/registry/companies", json.dumps(COMPANY).encode()),
            now=gateway.clock() - timedelta(minutes=1))
    status, body, _ = await _post(gateway, "/api/registry/companies", COMPANY)
    assert (status, body["id"]) == (201, "acme")
    fleet = await gateway.client.get("/api/registry/my-companies")
    assert [c["id"] for c in (await fleet.json())["companies"]] == ["acme"]
    # someone else's object of that name is still a plain 409
    other = await _post(gateway, "/api/registry/companies", {"slug": "acme",
                                                             "displayName": "x"}, key="k2")
    assert (other[0], other[1]["code"]) == (409, "slug_taken")


async def test_signup_replays_without_secrets_or_cookie(gateway: Gateway) -> None:
    body = {"email": "ada@example.com", "password": "correct horse battery"}
    status, first, headers = await _post(gateway, "/api/auth/signup", body)
    assert status == 201
    assert first["recoveryKit"].startswith("EXO-")
    assert "Set-Cookie" in headers
    fresh = gateway.new_client()
    async with fresh.post("/api/auth/signup", json=body, headers=_key()) as response:
        again = await response.json()
        assert response.status == 201
        assert response.headers["Idempotent-Replayed"] == "true"
        assert response.headers["Idempotent-Secrets-Withheld"] == "recoveryKit"
        assert "Set-Cookie" not in response.headers
    assert "recoveryKit" not in again
    assert again["user"] == first["user"]
    async with gateway.database.sessionmaker() as s:
        rows = list((await s.execute(select(IdempotencyRecord))).scalars())
    assert [(row.user_id, row.key.startswith("sha256:")) for row in rows] == [
        ("anonymous", True)]
    stored = json.dumps(rows[0].response_body)
    assert first["recoveryKit"] not in stored
    assert KEY not in stored + rows[0].key
    # another password with the same key is another request
    async with fresh.post("/api/auth/signup", headers=_key(), json={
            **body, "password": "another long password"}) as response:
        assert (response.status, (await response.json())["code"]) == (
            422, "idempotency_key_reused")


async def test_login_ignores_the_key(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    body = {"email": "ada@example.com", "password": "correct horse battery"}
    for _ in range(2):
        status, _, headers = await _post(gateway, "/api/auth/login", body)
        assert status == 200
        assert "Idempotent-Replayed" not in headers
        assert "Set-Cookie" in headers


@pytest.mark.parametrize("error", [
    sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused")),
    sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
    ConnectionRefusedError(111, "Connection refused"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
])
def test_an_unreachable_database_is_a_503_with_retry_after(error: Exception) -> None:
    assert database_unavailable(error)
    problem = as_problem(error)
    assert problem is not None
    assert (problem.status, problem.code) == (503, "unavailable")
    assert int(problem.headers["Retry-After"]) >= 1


def test_other_errors_stay_500s() -> None:
    assert not database_unavailable(ValueError("bug"))
    assert not database_unavailable(sa_exc.IntegrityError("INSERT", {}, Exception("dup")))
    assert as_problem(KeyError("bug")) is None


async def test_a_database_outage_answers_503_and_readyz_says_so(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    down = True

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        if down:
            raise ConnectionRefusedError(111, "Connection refused")

    engine = gateway.database.engine.sync_engine
    event.listen(engine, "do_connect", refuse)
    await gateway.database.engine.dispose()  # pooled connections are gone with the server
    try:
        response = await gateway.client.post("/api/registry/companies", json=COMPANY,
                                             headers=_key())
        assert response.status == 503, await response.text()
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert int(response.headers["Retry-After"]) >= 1
        ready = await gateway.client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["database"] == "unreachable"
        down = False  # back: the next request connects again, without a restart
        response = await gateway.client.post("/api/registry/companies", json=COMPANY,
                                             headers=_key())
        assert response.status == 201, await response.text()
        assert (await gateway.client.get("/readyz")).status == 200
    finally:
        event.remove(engine, "do_connect", refuse)


async def test_a_draft_save_stores_its_answer_in_its_own_transaction(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    path = "/api/registry/companies/acme/draft"
    body = {"draft": samples.draft("1.0.0")}
    first = await _post(gateway, path, body)
    assert first[0] == 201
    async with gateway.database.sessionmaker() as s:
        record = (await s.execute(select(IdempotencyRecord))).scalars().one()
    assert (record.response_status, record.completed_at) == (201, gateway.clock())
    again = await _post(gateway, path, body)
    assert (again[0], again[1], again[2]["Idempotent-Replayed"]) == (201, first[1], "true")
    current = await gateway.client.get(path)
    assert (await current.json())["version"] == 1  # saved once


@contextmanager
def _transactions_begun(gateway: Gateway) -> Iterator[list[str]]:
    """The BEGINs the gateway's SQLite database runs while in the block (BEGIN IMMEDIATE: a
    writing transaction), as its connections trace them."""
    begins: list[str] = []
    recording = True

    def trace(statement: str) -> None:
        if recording and statement.startswith("BEGIN"):
            begins.append(statement)

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.run_async(lambda driver: driver.set_trace_callback(trace))

    engine = gateway.database.engine.sync_engine
    event.listen(engine, "checkout", checkout)
    try:
        yield begins
    finally:
        recording = False
        event.remove(engine, "checkout", checkout)


async def test_an_action_stores_its_audit_event_and_answer_in_one_transaction(
        gateway: Gateway) -> None:
    await _ready_company(gateway)
    assert (await gateway.client.get("/api/registry/companies/acme")).status == 200  # cached
    with _transactions_begun(gateway) as begins:
        status, first, _ = await _post(gateway, "/api/registry/companies/acme/provision")
    assert status == 202, first
    # The key's claim, then the event with the answer; the planning inputs only read.
    assert begins == ["BEGIN IMMEDIATE", "BEGIN", "BEGIN IMMEDIATE"]
    again = await _post(gateway, "/api/registry/companies/acme/provision")
    assert (again[0], again[1], again[2]["Idempotent-Replayed"]) == (202, first, "true")
    assert [e.outcome.value for e in await _audit(gateway, "provision")] == ["succeeded"]
    assert _patches(gateway) == 1


async def test_an_answer_whose_event_could_not_be_written_is_still_stored(
        gateway: Gateway) -> None:
    """The action happened (its record is the Kubernetes write): when the transaction of its
    audit event and answer fails, the answer is stored on its own, so a retry replays it
    rather than finding the key pending."""
    await _ready_company(gateway)
    engine = gateway.database.engine.sync_engine
    audited: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("INSERT INTO audit_events"):
            audited.append(statement)

    def refuse(_conn: Any) -> None:  # the commit of the event and the answer fails
        if audited:
            audited.clear()
            raise sa_exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "commit", refuse)
    try:
        status, first, _ = await _post(gateway, "/api/registry/companies/acme/provision")
    finally:
        event.remove(engine, "before_cursor_execute", note)
        event.remove(engine, "commit", refuse)
    assert status == 202, first
    again = await _post(gateway, "/api/registry/companies/acme/provision")
    assert (again[0], again[1], again[2]["Idempotent-Replayed"]) == (202, first, "true")
    assert _patches(gateway) == 1
