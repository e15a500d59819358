"""Idempotency records: first response stored and replayed; key misuse is a conflict."""

from __future__ import annotations

import asyncio

import pytest

from exocorp.security import PasswordHasher
from exocorp.store import Conflict, Database, NotFound, accounts, idempotency
from exocorp.store.schema import IdempotencyRecord
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration

BODY = b'{"reason": "maintenance"}'
FP = idempotency.request_fingerprint("POST", "/api/x/pause", BODY)


async def _user(db: Database, hasher: PasswordHasher, email: str = "ada@example.com") -> str:
    async with db.sessionmaker.begin() as s:
        return (await accounts.create_user(s, email=email, password="pw", hasher=hasher)).user.id


async def _begin(
    db: Database, user_id: str, clock: FakeClock, *, key: str = "k1", fingerprint: str = FP
) -> IdempotencyRecord | None:
    async with db.sessionmaker.begin() as s:
        return await idempotency.begin_request(
            s,
            user_id=user_id,
            key=key,
            method="post",
            path="/api/x/pause",
            fingerprint=fingerprint,
            now=clock(),
        )


async def _complete(db: Database, user_id: str, clock: FakeClock, key: str = "k1") -> None:
    async with db.sessionmaker.begin() as s:
        await idempotency.complete_request(
            s, user_id=user_id, key=key, status=202, body={"phase": "Paused"}, now=clock()
        )


def test_fingerprint_covers_method_path_and_body() -> None:
    assert idempotency.request_fingerprint("post", "/api/x/pause", BODY) == FP
    others = {
        idempotency.request_fingerprint("PUT", "/api/x/pause", BODY),
        idempotency.request_fingerprint("POST", "/api/x/resume", BODY),
        idempotency.request_fingerprint("POST", "/api/x/pause", BODY + b" "),
        idempotency.request_fingerprint("POST", "/api/x/pause" + "{", BODY[1:]),  # no ambiguity
    }
    assert FP not in others
    assert len(others) == 4


async def test_first_request_runs_and_retries_replay(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    assert await _begin(database, user_id, clock) is None
    await _complete(database, user_id, clock)
    replay = await _begin(database, user_id, clock)
    assert replay is not None
    assert (replay.response_status, replay.response_body) == (202, {"phase": "Paused"})


async def test_in_progress_and_mismatched_requests_conflict(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    assert await _begin(database, user_id, clock) is None
    with pytest.raises(Conflict, match="in progress"):
        await _begin(database, user_id, clock)
    await _complete(database, user_id, clock)
    other = idempotency.request_fingerprint("POST", "/api/x/pause", b"{}")
    with pytest.raises(Conflict, match="different request") as caught:
        await _begin(database, user_id, clock, fingerprint=other)
    assert caught.value.field == "Idempotency-Key"


async def test_keys_are_scoped_per_user(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    ada = await _user(database, fast_hasher)
    bob = await _user(database, fast_hasher, "bob@example.com")
    assert await _begin(database, ada, clock) is None
    assert await _begin(database, bob, clock) is None


async def test_concurrent_first_requests_have_one_runner(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    results = await asyncio.gather(
        *(_begin(database, user_id, clock) for _ in range(5)), return_exceptions=True
    )
    assert results.count(None) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r is not None)


async def test_abandoned_request_frees_the_key(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    assert await _begin(database, user_id, clock) is None
    async with database.sessionmaker.begin() as s:
        await idempotency.abandon_request(s, user_id=user_id, key="k1")
    assert await _begin(database, user_id, clock) is None
    await _complete(database, user_id, clock)
    async with database.sessionmaker.begin() as s:  # a completed record is not abandoned
        await idempotency.abandon_request(s, user_id=user_id, key="k1")
    assert await _begin(database, user_id, clock) is not None


async def test_crashed_request_is_taken_over_after_stale_after(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    assert await _begin(database, user_id, clock) is None
    clock.advance(idempotency.DEFAULT_STALE_AFTER)
    assert await _begin(database, user_id, clock) is None  # taken over
    with pytest.raises(Conflict, match="in progress"):  # and now held by the new request
        await _begin(database, user_id, clock)


async def test_purge_and_bad_keys(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    await _begin(database, user_id, clock, key="old")
    clock.advance(hours=25)
    await _begin(database, user_id, clock, key="new")
    async with database.sessionmaker.begin() as s:
        assert await idempotency.purge_idempotency_records(s, now=clock()) == 1
        with pytest.raises(NotFound):
            await idempotency.complete_request(s, user_id=user_id, key="old", status=200, body={})
    for key in ("", "k" * 256):
        with pytest.raises(ValueError, match="Idempotency-Key"):
            await _begin(database, user_id, clock, key=key)
