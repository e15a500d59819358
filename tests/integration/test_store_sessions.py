"""Server-side sessions: hashed ids, idle and absolute expiry (on an injected clock), revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from exocorp.security import PasswordHasher, hash_token
from exocorp.store import Database, InvalidCredentials, accounts, sessions
from exocorp.store.schema import UserSession
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration

POLICY = sessions.SessionPolicy(
    idle_timeout=timedelta(minutes=30),
    absolute_timeout=timedelta(hours=2),
    touch_interval=timedelta(minutes=1),
)


async def _user(db: Database, hasher: PasswordHasher, email: str = "ada@example.com") -> str:
    async with db.sessionmaker.begin() as s:
        new = await accounts.create_user(s, email=email, password="pw", hasher=hasher)
    return new.user.id


async def _login(db: Database, user_id: str, clock: FakeClock) -> str:
    async with db.sessionmaker.begin() as s:
        new = await sessions.create_session(
            s, user_id=user_id, policy=POLICY, now=clock(), user_agent="ua", ip_address="127.0.0.1"
        )
    return new.token.reveal()


async def _lookup(db: Database, token: str, clock: FakeClock) -> sessions.ValidSession:
    async with db.sessionmaker.begin() as s:
        return await sessions.lookup_session(s, token, policy=POLICY, now=clock())


async def test_session_id_is_stored_hashed(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    token = await _login(database, user_id, clock)
    assert token.startswith("exo_sess_")
    async with database.sessionmaker() as s:
        ids = (await s.execute(select(UserSession.id_hash))).scalars().all()
    assert ids == [hash_token(token)]
    found = await _lookup(database, token, clock)
    assert found.user.id == user_id
    assert found.session.user_agent == "ua"


async def test_unknown_token_is_invalid(database: Database, clock: FakeClock) -> None:
    with pytest.raises(InvalidCredentials):
        await _lookup(database, "exo_sess_unknown", clock)


async def test_idle_expiry(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    token = await _login(database, await _user(database, fast_hasher), clock)
    clock.advance(minutes=29, seconds=59)
    await _lookup(database, token, clock)  # use resets the idle timer
    clock.advance(minutes=29, seconds=59)
    await _lookup(database, token, clock)
    clock.advance(minutes=30)
    with pytest.raises(InvalidCredentials):
        await _lookup(database, token, clock)


async def test_idle_expiry_is_exact(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    token = await _login(database, await _user(database, fast_hasher), clock)
    clock.advance(POLICY.idle_timeout - timedelta(microseconds=1))
    async with database.sessionmaker.begin() as s:  # looking without touching
        await sessions.lookup_session(s, token, policy=POLICY, now=clock(), touch=False)
    clock.advance(microseconds=1)
    with pytest.raises(InvalidCredentials):
        await _lookup(database, token, clock)


async def test_absolute_expiry_wins_over_activity(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    start = clock()
    token = await _login(database, await _user(database, fast_hasher), clock)
    while clock() + timedelta(minutes=20) < start + POLICY.absolute_timeout:
        clock.advance(minutes=20)
        found = await _lookup(database, token, clock)
        assert found.session.idle_expires_at <= start + POLICY.absolute_timeout
    clock.advance(start + POLICY.absolute_timeout - clock())
    with pytest.raises(InvalidCredentials):
        await _lookup(database, token, clock)


async def test_touch_is_rate_limited(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    start = clock()
    token = await _login(database, await _user(database, fast_hasher), clock)
    clock.advance(seconds=30)
    assert (await _lookup(database, token, clock)).session.last_seen_at == start  # not written
    clock.advance(seconds=30)
    found = await _lookup(database, token, clock)
    assert found.session.last_seen_at == clock()
    assert found.session.idle_expires_at == clock() + POLICY.idle_timeout


async def test_revoke_session(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    token, other = await _login(database, user_id, clock), await _login(database, user_id, clock)
    async with database.sessionmaker.begin() as s:
        assert await sessions.revoke_session(s, token, now=clock())
        assert not await sessions.revoke_session(s, token, now=clock())  # already revoked
    with pytest.raises(InvalidCredentials):
        await _lookup(database, token, clock)
    await _lookup(database, other, clock)


async def test_revoke_all_sessions_of_a_user(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    ada = await _user(database, fast_hasher)
    bob = await _user(database, fast_hasher, "bob@example.com")
    ada_tokens = [await _login(database, ada, clock) for _ in range(3)]
    bob_token = await _login(database, bob, clock)
    async with database.sessionmaker.begin() as s:
        assert await sessions.revoke_user_sessions(s, ada, now=clock()) == 3
    for token in ada_tokens:
        with pytest.raises(InvalidCredentials):
            await _lookup(database, token, clock)
    await _lookup(database, bob_token, clock)


async def test_disabled_user_sessions_stop_working(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    token = await _login(database, user_id, clock)
    async with database.sessionmaker.begin() as s:
        await accounts.set_disabled(s, user_id, True)
    with pytest.raises(InvalidCredentials):
        await _lookup(database, token, clock)


async def test_purge_expired_sessions(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    old = await _login(database, user_id, clock)
    clock.advance(days=40)
    fresh = await _login(database, user_id, clock)
    async with database.sessionmaker.begin() as s:
        assert await sessions.purge_expired_sessions(s, now=clock()) == 1
    await _lookup(database, fresh, clock)
    with pytest.raises(InvalidCredentials):
        await _lookup(database, old, clock)


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="touch_interval"):
        sessions.SessionPolicy(idle_timeout=timedelta(minutes=1), touch_interval=timedelta(hours=1))
    with pytest.raises(ValueError, match="positive"):
        sessions.SessionPolicy(idle_timeout=timedelta(0))
