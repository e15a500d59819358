"""Operator clients: draft access token -> human approval -> trusted-client bearer token."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from exocorp.security import PasswordHasher, hash_token
from exocorp.store import Conflict, Database, InvalidCredentials, NotFound, accounts, drafts, tokens
from exocorp.store.schema import OperatorToken, TokenKind
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration


async def _user(db: Database, hasher: PasswordHasher, email: str = "ada@example.com") -> str:
    async with db.sessionmaker.begin() as s:
        return (await accounts.create_user(s, email=email, password="pw", hasher=hasher)).user.id


async def _register(
    db: Database, clock: FakeClock, ttl: timedelta = timedelta(hours=1)
) -> tokens.IssuedToken:
    async with db.sessionmaker.begin() as s:
        draft = await drafts.create_draft(s, config={"agents": []}, now=clock())
        return await tokens.register_client(
            s, name="claude-code", draft_id=draft.id, ttl=ttl, now=clock()
        )


async def _authenticate(db: Database, secret: str, clock: FakeClock) -> tokens.TokenGrant:
    async with db.sessionmaker.begin() as s:
        return await tokens.authenticate_token(s, secret, now=clock())


async def _redeem(db: Database, secret: str, clock: FakeClock) -> tokens.IssuedToken:
    async with db.sessionmaker.begin() as s:
        return await tokens.redeem_draft_token(s, secret, now=clock())


async def _approve(db: Database, client_id: str, user_id: str, clock: FakeClock) -> None:
    async with db.sessionmaker.begin() as s:
        await tokens.approve_client(s, client_id, user_id=user_id, now=clock())


async def test_two_token_flow(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    issued = await _register(database, clock)
    draft_secret = issued.secret.reveal()
    assert draft_secret.startswith("exo_draft_")
    grant = await _authenticate(database, draft_secret, clock)
    assert (grant.kind, grant.draft_id, grant.user_id) == (
        TokenKind.DRAFT_ACCESS,
        issued.client.draft_id,
        None,
    )

    with pytest.raises(Conflict, match="not been approved"):  # redeem before approval: 409
        await _redeem(database, draft_secret, clock)
    await _authenticate(database, draft_secret, clock)  # ... and the draft token still works

    user_id = await _user(database, fast_hasher)
    await _approve(database, issued.client.id, user_id, clock)
    bearer = await _redeem(database, draft_secret, clock)
    assert bearer.secret.reveal().startswith("exo_agent_")
    assert bearer.token.user_id == user_id

    grant = await _authenticate(database, bearer.secret.reveal(), clock)
    assert (grant.kind, grant.user_id, grant.draft_id) == (TokenKind.CLIENT_BEARER, user_id, None)
    assert grant.client.approved_by == user_id

    # The draft token is spent: it can neither be redeemed again nor used.
    with pytest.raises(InvalidCredentials):
        await _redeem(database, draft_secret, clock)
    with pytest.raises(InvalidCredentials):
        await _authenticate(database, draft_secret, clock)

    async with database.sessionmaker() as s:
        hashes = set((await s.execute(select(OperatorToken.token_hash))).scalars())
    assert hashes == {hash_token(draft_secret), hash_token(bearer.secret.reveal())}


async def test_expired_draft_token(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    issued = await _register(database, clock, ttl=timedelta(minutes=15))
    user_id = await _user(database, fast_hasher)
    await _approve(database, issued.client.id, user_id, clock)
    clock.advance(minutes=15)
    with pytest.raises(InvalidCredentials):
        await _authenticate(database, issued.secret.reveal(), clock)
    with pytest.raises(InvalidCredentials):
        await _redeem(database, issued.secret.reveal(), clock)


async def test_bearer_token_cannot_be_redeemed(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    issued = await _register(database, clock)
    await _approve(database, issued.client.id, await _user(database, fast_hasher), clock)
    bearer = await _redeem(database, issued.secret.reveal(), clock)
    with pytest.raises(InvalidCredentials):
        await _redeem(database, bearer.secret.reveal(), clock)


async def test_bearer_expiry_is_optional(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    issued = await _register(database, clock)
    await _approve(database, issued.client.id, await _user(database, fast_hasher), clock)
    async with database.sessionmaker.begin() as s:
        bearer = await tokens.redeem_draft_token(
            s, issued.secret.reveal(), bearer_ttl=timedelta(days=30), now=clock()
        )
    clock.advance(days=29)
    await _authenticate(database, bearer.secret.reveal(), clock)
    clock.advance(days=1)
    with pytest.raises(InvalidCredentials):
        await _authenticate(database, bearer.secret.reveal(), clock)


async def test_revocation(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    bearers = []
    for _ in range(2):
        issued = await _register(database, clock)
        await _approve(database, issued.client.id, user_id, clock)
        bearers.append(await _redeem(database, issued.secret.reveal(), clock))
    first, second = bearers
    async with database.sessionmaker.begin() as s:
        await tokens.revoke_token(s, first.token.id, now=clock())
        with pytest.raises(NotFound):
            await tokens.revoke_token(s, "tok_missing")
    with pytest.raises(InvalidCredentials):
        await _authenticate(database, first.secret.reveal(), clock)
    await _authenticate(database, second.secret.reveal(), clock)

    async with database.sessionmaker.begin() as s:
        await tokens.revoke_client(s, second.client.id, now=clock())
    with pytest.raises(InvalidCredentials):
        await _authenticate(database, second.secret.reveal(), clock)
    async with database.sessionmaker() as s:
        listed = await tokens.list_user_tokens(s, user_id)
    assert {t.id for t in listed} == {first.token.id, second.token.id}
    assert all(t.revoked_at is not None for t in listed)


async def test_bearer_stops_working_when_user_is_disabled(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    user_id = await _user(database, fast_hasher)
    issued = await _register(database, clock)
    await _approve(database, issued.client.id, user_id, clock)
    bearer = await _redeem(database, issued.secret.reveal(), clock)
    async with database.sessionmaker.begin() as s:
        await accounts.set_disabled(s, user_id, True)
    with pytest.raises(InvalidCredentials):
        await _authenticate(database, bearer.secret.reveal(), clock)


async def test_approval_rules(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    ada = await _user(database, fast_hasher)
    bob = await _user(database, fast_hasher, "bob@example.com")
    issued = await _register(database, clock)
    await _approve(database, issued.client.id, ada, clock)
    await _approve(database, issued.client.id, ada, clock)  # same user again: fine
    with pytest.raises(Conflict, match="another user"):
        await _approve(database, issued.client.id, bob, clock)
    revoked = await _register(database, clock)
    async with database.sessionmaker.begin() as s:
        await tokens.revoke_client(s, revoked.client.id, now=clock())
    with pytest.raises(Conflict, match="revoked"):
        await _approve(database, revoked.client.id, ada, clock)
    with pytest.raises(NotFound):
        await _approve(database, "cli_missing", ada, clock)
    with pytest.raises(NotFound):
        await _approve(database, issued.client.id, "usr_missing", clock)


async def test_concurrent_redemptions_issue_one_bearer(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    issued = await _register(database, clock)
    await _approve(database, issued.client.id, await _user(database, fast_hasher), clock)
    results = await asyncio.gather(
        *(_redeem(database, issued.secret.reveal(), clock) for _ in range(4)),
        return_exceptions=True,
    )
    bearers = [r for r in results if isinstance(r, tokens.IssuedToken)]
    assert len(bearers) == 1, results
    assert all(isinstance(r, InvalidCredentials) for r in results if r not in bearers)
    async with database.sessionmaker() as s:
        kinds = (await s.execute(select(OperatorToken.kind))).scalars().all()
    assert sorted(kinds) == sorted([TokenKind.DRAFT_ACCESS, TokenKind.CLIENT_BEARER])


async def test_unknown_tokens(database: Database, clock: FakeClock) -> None:
    for secret in ("", "exo_agent_nope", "x" * 500):
        with pytest.raises(InvalidCredentials):
            await _authenticate(database, secret, clock)
    with pytest.raises(NotFound):
        async with database.sessionmaker.begin() as s:
            await tokens.register_client(s, name="x", draft_id="drf_missing")
