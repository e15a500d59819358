"""Operator clients (coding agents) and their tokens: the two-token flow of SPEC section 7.

1. ``register_client``: an agent gets a short-lived draft access token scoped to its draft.
2. ``approve_client``: a logged-in human approves the agent (binds it to their user).
3. ``redeem_draft_token``: the agent trades the draft token, once, for a trusted-client bearer
   token bound to that user. Before approval this is a ``Conflict`` (409).

Tokens are stored as SHA-256 hashes only. Unknown, expired, revoked and spent tokens all give the
same ``InvalidCredentials`` (401).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.security import (
    Secret,
    hash_token,
    new_pairing_code,
    new_token,
    normalize_pairing_code,
    token_matches,
)
from exocorp.store import clock
from exocorp.store.columns import ID_LENGTH, new_id
from exocorp.store.drafts import get_draft
from exocorp.store.errors import Conflict, InvalidCredentials, NotFound
from exocorp.store.schema import (
    OperatorClient,
    OperatorClientExocorp,
    OperatorToken,
    TokenKind,
    User,
)
from exocorp.store.statements import rowcount

__all__ = [
    "BEARER_TOKEN_PREFIX",
    "DEFAULT_BEARER_TOKEN_TTL",
    "DEFAULT_DRAFT_TOKEN_TTL",
    "DRAFT_TOKEN_PREFIX",
    "MAX_PAIRING_FAILURES",
    "AgentScope",
    "IssuedToken",
    "TokenGrant",
    "approve_client",
    "authenticate_token",
    "check_pairing_code",
    "client_scope",
    "clients_by_id",
    "draft_access_token",
    "get_client",
    "grant_exocorp",
    "list_user_tokens",
    "redeem_draft_token",
    "register_client",
    "renew_token",
    "revoke_client",
    "revoke_token",
    "revoke_user_tokens",
    "user_token",
]

DRAFT_TOKEN_PREFIX = "exo_draft"  # noqa: S105 (a name, not a secret)
BEARER_TOKEN_PREFIX = "exo_agent"  # noqa: S105
DEFAULT_DRAFT_TOKEN_TTL = timedelta(hours=1)
DEFAULT_BEARER_TOKEN_TTL = timedelta(days=30)
"""An agent's bearer token expires this long after it is issued or renewed."""
MAX_PAIRING_FAILURES = 5
"""Wrong pairing codes an agent's request survives; the next one denies it (40-bit codes)."""


@dataclass(frozen=True)
class IssuedToken:
    client: OperatorClient
    token: OperatorToken
    secret: Secret
    """Handed to the agent once; only its hash is stored."""
    pairing_code: Secret | None = None
    """Draft access only: the code the agent shows its human (only its hash is stored)."""


@dataclass(frozen=True)
class AgentScope:
    """What an agent's bearer token may reach, as its human granted at approval."""

    exocorps: frozenset[str]
    """The exocorps named at approval and those the agent created with the token."""
    may_destroy: bool = False
    may_write_secrets: bool = False


@dataclass(frozen=True)
class TokenGrant:
    """What a presented token allows: one draft (draft access) or acting as a user (bearer)."""

    token: OperatorToken
    client: OperatorClient

    @property
    def kind(self) -> TokenKind:
        return self.token.kind

    @property
    def draft_id(self) -> str | None:
        return self.token.draft_id

    @property
    def user_id(self) -> str | None:
        return self.token.user_id


async def register_client(
    session: AsyncSession,
    *,
    name: str,
    draft_id: str,
    ttl: timedelta = DEFAULT_DRAFT_TOKEN_TTL,
    now: datetime | None = None,
) -> IssuedToken:
    """A new, unapproved client for ``draft_id`` and its draft access token."""
    at = clock.resolve(now)
    await get_draft(session, draft_id)
    client = OperatorClient(
        id=new_id("cli"),
        name=name,
        draft_id=draft_id,
        created_at=at,
        approved_by=None,
        approved_at=None,
        revoked_at=None,
    )
    pairing_code = new_pairing_code()
    client.pairing_code_hash = hash_token(pairing_code.reveal())
    session.add(client)
    secret = new_token(DRAFT_TOKEN_PREFIX)
    token = OperatorToken(
        id=new_id("tok"),
        token_hash=hash_token(secret.reveal()),
        kind=TokenKind.DRAFT_ACCESS,
        client_id=client.id,
        draft_id=draft_id,
        user_id=None,
        created_at=at,
        expires_at=at + ttl,
    )
    session.add(token)
    await session.flush()
    return IssuedToken(client=client, token=token, secret=secret, pairing_code=pairing_code)


async def get_client(session: AsyncSession, client_id: str) -> OperatorClient:
    client = await session.get(OperatorClient, client_id, populate_existing=True)
    if client is None:
        raise NotFound(f"operator client {client_id} not found")
    return client


async def clients_by_id(session: AsyncSession,
                        client_ids: Collection[str]) -> dict[str, OperatorClient]:
    """The operator clients with these ids (unknown ids are left out), in one query."""
    if not client_ids:
        return {}
    result = await session.execute(
        select(OperatorClient).where(OperatorClient.id.in_(client_ids)))
    return {client.id: client for client in result.scalars()}


async def draft_access_token(session: AsyncSession, client_id: str) -> OperatorToken | None:
    """The client's newest draft access token, as stored now (not a copy the session holds)."""
    result = await session.execute(
        select(OperatorToken)
        .where(OperatorToken.client_id == client_id,
               OperatorToken.kind == TokenKind.DRAFT_ACCESS)
        .order_by(OperatorToken.created_at.desc())
        .execution_options(populate_existing=True))
    return result.scalars().first()


async def check_pairing_code(
    session: AsyncSession, client_id: str, code: str, *, now: datetime | None = None
) -> int | None:
    """None when ``code`` is the client's pairing code; else how many more wrong codes it
    survives (the failure is counted; at ``MAX_PAIRING_FAILURES`` the client is revoked).
    Commit this apart from the approval, so a refused approval still counts."""
    client = await get_client(session, client_id)
    if client.pairing_code_hash is not None and token_matches(
            normalize_pairing_code(code), client.pairing_code_hash):
        return None
    await session.execute(
        update(OperatorClient).where(OperatorClient.id == client_id)
        .values(pairing_failures=OperatorClient.pairing_failures + 1)
        .execution_options(synchronize_session=False))
    client = await get_client(session, client_id)
    left = max(MAX_PAIRING_FAILURES - client.pairing_failures, 0)
    if left == 0:
        await revoke_client(session, client_id, now=now)
    return left


async def approve_client(
    session: AsyncSession, client_id: str, *, user_id: str, now: datetime | None = None,
    scope: AgentScope | None = None,
) -> OperatorClient:
    """Bind the client to ``user_id`` with ``scope`` (its grants and exocorps). Approving
    twice by the same user is a no-op; a client approved by someone else, or revoked, is a
    ``Conflict``."""
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    result = await session.execute(
        update(OperatorClient)
        .where(
            OperatorClient.id == client_id,
            OperatorClient.approved_by.is_(None),
            OperatorClient.revoked_at.is_(None),
        )
        .values(approved_by=user_id, approved_at=clock.resolve(now))
        .execution_options(synchronize_session=False)
    )
    client = await get_client(session, client_id)
    if rowcount(result) == 1 and scope is not None:
        client.may_destroy = scope.may_destroy
        client.may_write_secrets = scope.may_write_secrets
        await session.flush()
        for exocorp_id in sorted(scope.exocorps):
            await grant_exocorp(session, client_id, exocorp_id)
    if rowcount(result) == 1 or client.approved_by == user_id:
        return client
    if client.revoked_at is not None:
        raise Conflict("the operator client was revoked")
    raise Conflict("the operator client was approved by another user")


async def _live_token(session: AsyncSession, secret: str, at: datetime) -> TokenGrant:
    result = await session.execute(
        select(OperatorToken, OperatorClient)
        .join(OperatorClient, OperatorClient.id == OperatorToken.client_id)
        .where(OperatorToken.token_hash == hash_token(secret))
        .execution_options(populate_existing=True)
    )
    found = result.one_or_none()
    if found is None:
        raise InvalidCredentials("unknown token")
    token, client = found
    if (
        token.revoked_at is not None
        or client.revoked_at is not None
        or token.redeemed_at is not None
        or (token.expires_at is not None and at >= token.expires_at)
    ):
        raise InvalidCredentials("token expired or revoked")
    if token.kind is TokenKind.CLIENT_BEARER and token.user_id is not None:
        user = await session.get(User, token.user_id)
        if user is None or user.disabled:
            raise InvalidCredentials("token expired or revoked")
    return TokenGrant(token=token, client=client)


async def authenticate_token(
    session: AsyncSession, secret: str, *, now: datetime | None = None
) -> TokenGrant:
    """What a presented draft access or bearer token may do; ``InvalidCredentials`` if nothing."""
    at = clock.resolve(now)
    grant = await _live_token(session, secret, at)
    grant.token.last_used_at = at
    await session.flush()
    return grant


async def redeem_draft_token(
    session: AsyncSession,
    secret: str,
    *,
    bearer_ttl: timedelta = DEFAULT_BEARER_TOKEN_TTL,
    now: datetime | None = None,
) -> IssuedToken:
    """Exchange an approved client's draft access token (once) for a bearer token.

    ``InvalidCredentials`` for a bad, expired, revoked or already redeemed token; ``Conflict``
    while no human has approved the client (the draft token stays usable until then).
    """
    at = clock.resolve(now)
    grant = await _live_token(session, secret, at)
    if grant.kind is not TokenKind.DRAFT_ACCESS:
        raise InvalidCredentials("not a draft access token")
    if grant.client.approved_by is None:
        raise Conflict("the operator client has not been approved yet")
    spent = await session.execute(
        update(OperatorToken)
        .where(OperatorToken.id == grant.token.id, OperatorToken.redeemed_at.is_(None))
        .values(redeemed_at=at, last_used_at=at)
        .execution_options(synchronize_session=False)
    )
    if rowcount(spent) != 1:  # a concurrent redemption won
        raise InvalidCredentials("token already redeemed")
    bearer_secret = new_token(BEARER_TOKEN_PREFIX)
    bearer = OperatorToken(
        id=new_id("tok"),
        token_hash=hash_token(bearer_secret.reveal()),
        kind=TokenKind.CLIENT_BEARER,
        client_id=grant.client.id,
        draft_id=None,
        user_id=grant.client.approved_by,
        created_at=at,
        expires_at=at + bearer_ttl,
    )
    session.add(bearer)
    await session.flush()
    return IssuedToken(client=grant.client, token=bearer, secret=bearer_secret)


async def revoke_token(
    session: AsyncSession, token_id: str, *, now: datetime | None = None
) -> OperatorToken:
    token = await session.get(OperatorToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = clock.resolve(now)
        await session.flush()
    return token


async def renew_token(
    session: AsyncSession, token_id: str, *, ttl: timedelta = DEFAULT_BEARER_TOKEN_TTL,
    now: datetime | None = None,
) -> OperatorToken:
    """A bearer token (expired or not) valid for ``ttl`` from now; ``Conflict`` once it or its
    client is revoked."""
    token = await session.get(OperatorToken, token_id)
    if token is None or token.kind is not TokenKind.CLIENT_BEARER:
        raise NotFound(f"token {token_id} not found")
    client = await get_client(session, token.client_id)
    if token.revoked_at is not None or client.revoked_at is not None:
        raise Conflict("a revoked token cannot be renewed")
    token.expires_at = clock.resolve(now) + ttl
    await session.flush()
    return token


async def grant_exocorp(session: AsyncSession, client_id: str, exocorp_id: str) -> None:
    """Add ``exocorp_id`` to the client's scope (idempotent)."""
    if await session.get(OperatorClientExocorp, (client_id, exocorp_id)) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(OperatorClientExocorp(client_id=client_id, exocorp_id=exocorp_id))
    except IntegrityError:  # granted concurrently
        pass


async def client_scope(session: AsyncSession, client_id: str) -> AgentScope:
    client = await get_client(session, client_id)
    rows = await session.execute(select(OperatorClientExocorp.exocorp_id)
                                 .where(OperatorClientExocorp.client_id == client_id))
    return AgentScope(exocorps=frozenset(rows.scalars()), may_destroy=client.may_destroy,
                      may_write_secrets=client.may_write_secrets)


async def revoke_client(
    session: AsyncSession, client_id: str, *, now: datetime | None = None
) -> OperatorClient:
    """Revoke a client and so every token it holds."""
    at = clock.resolve(now)
    client = await get_client(session, client_id)
    if client.revoked_at is None:
        client.revoked_at = at
        await session.execute(
            update(OperatorToken)
            .where(OperatorToken.client_id == client_id, OperatorToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        await session.flush()
    return client


async def list_user_tokens(session: AsyncSession, user_id: str) -> list[OperatorToken]:
    """The bearer tokens bound to a user (metadata only: hashes never leave the store's rows)."""
    result = await session.execute(
        select(OperatorToken)
        .where(OperatorToken.user_id == user_id)
        .order_by(OperatorToken.created_at, OperatorToken.id)
    )
    return list(result.scalars())


async def user_token(session: AsyncSession, user_id: str, token_id: str) -> OperatorToken | None:
    """The token with this id if it is bound to this user; None for anyone else's or none."""
    if len(token_id) > ID_LENGTH:  # no token has such an id: spare the query
        return None
    token = await session.get(OperatorToken, token_id)
    return token if token is not None and token.user_id == user_id else None


async def revoke_user_tokens(
    session: AsyncSession, user_id: str, *, now: datetime | None = None
) -> int:
    """Revoke every agent a user approved and every token bound to the user (password change,
    account disabled or taken back): the agents stop at once. Returns the tokens revoked."""
    at = clock.resolve(now)
    await session.execute(
        update(OperatorClient)
        .where(OperatorClient.approved_by == user_id, OperatorClient.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        update(OperatorToken)
        .where(OperatorToken.user_id == user_id, OperatorToken.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
