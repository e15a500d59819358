"""Server-side login sessions with idle and absolute expiry.

The cookie carries a random token; the table stores only its SHA-256, so a database leak yields
no usable session. A session is valid while it is not revoked, its user is not disabled, and
``now`` is before both its idle and its absolute expiry. Using it pushes the idle expiry forward
(never past the absolute one), at most once per ``touch_interval`` to spare a write per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.security import Secret, hash_token, new_token
from exocorp.store import clock
from exocorp.store.errors import InvalidCredentials
from exocorp.store.schema import User, UserSession
from exocorp.store.statements import rowcount

__all__ = [
    "SESSION_TOKEN_PREFIX",
    "NewSession",
    "SessionPolicy",
    "ValidSession",
    "clear_password_change",
    "create_session",
    "lookup_session",
    "purge_expired_sessions",
    "revoke_session",
    "revoke_user_sessions",
]

SESSION_TOKEN_PREFIX = "exo_sess"  # noqa: S105 (a name, not a secret)


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(hours=12)
    """A session unused for this long is over."""
    absolute_timeout: timedelta = timedelta(days=7)
    """A session is over this long after login, however busy."""
    touch_interval: timedelta = timedelta(minutes=1)
    """Minimum time between two writes that extend the idle expiry."""

    def __post_init__(self) -> None:
        if self.idle_timeout <= timedelta(0) or self.absolute_timeout <= timedelta(0):
            raise ValueError("session timeouts must be positive")
        if self.touch_interval < timedelta(0) or self.touch_interval >= self.idle_timeout:
            raise ValueError("touch_interval must be shorter than idle_timeout")


@dataclass(frozen=True)
class NewSession:
    session: UserSession
    token: Secret
    """The cookie value; only its hash is stored."""


@dataclass(frozen=True)
class ValidSession:
    session: UserSession
    user: User


async def create_session(
    session: AsyncSession,
    *,
    user_id: str,
    policy: SessionPolicy,
    now: datetime | None = None,
    user_agent: str | None = None,
    ip_address: str | None = None,
    password_change_required: bool = False,
) -> NewSession:
    at = clock.resolve(now)
    token = new_token(SESSION_TOKEN_PREFIX)
    absolute = at + policy.absolute_timeout
    row = UserSession(
        id_hash=hash_token(token.reveal()),
        user_id=user_id,
        created_at=at,
        last_seen_at=at,
        idle_expires_at=min(at + policy.idle_timeout, absolute),
        absolute_expires_at=absolute,
        revoked_at=None,
        user_agent=user_agent[:512] if user_agent else None,
        ip_address=ip_address[:64] if ip_address else None,
        password_change_required=password_change_required,
    )
    session.add(row)
    await session.flush()
    return NewSession(session=row, token=token)


async def lookup_session(
    session: AsyncSession,
    token: str,
    *,
    policy: SessionPolicy,
    now: datetime | None = None,
    touch: bool = True,
) -> ValidSession:
    """The live session for a cookie value, or ``InvalidCredentials``."""
    at = clock.resolve(now)
    result = await session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.id_hash == hash_token(token))
    )
    found = result.one_or_none()
    if found is None:
        raise InvalidCredentials("no such session")
    row, user = found
    if (
        row.revoked_at is not None
        or user.disabled
        or at >= row.idle_expires_at
        or at >= row.absolute_expires_at
    ):
        raise InvalidCredentials("session expired or revoked")
    if touch and at - row.last_seen_at >= policy.touch_interval:
        row.last_seen_at = at
        row.idle_expires_at = min(at + policy.idle_timeout, row.absolute_expires_at)
        await session.flush()
    return ValidSession(session=row, user=user)


async def revoke_session(session: AsyncSession, token: str, *, now: datetime | None = None) -> bool:
    """Log out: True if a live session was revoked."""
    result = await session.execute(
        update(UserSession)
        .where(UserSession.id_hash == hash_token(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=clock.resolve(now))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def clear_password_change(session: AsyncSession, token_hash: str) -> None:
    """The session set a new password: it may do everything again."""
    await session.execute(
        update(UserSession)
        .where(UserSession.id_hash == token_hash)
        .values(password_change_required=False)
        .execution_options(synchronize_session=False)
    )


async def revoke_user_sessions(
    session: AsyncSession, user_id: str, *, keep: str | None = None, now: datetime | None = None
) -> int:
    """Revoke every live session of a user (password change, account disabled), except the
    one whose token hash is ``keep``."""
    query = update(UserSession).where(UserSession.user_id == user_id,
                                      UserSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id_hash != keep)
    result = await session.execute(
        query
        .values(revoked_at=clock.resolve(now))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def purge_expired_sessions(
    session: AsyncSession,
    *,
    older_than: timedelta = timedelta(days=30),
    now: datetime | None = None,
) -> int:
    """Delete sessions that ended more than ``older_than`` ago; returns how many."""
    cutoff = clock.resolve(now) - older_than
    result = await session.execute(
        delete(UserSession)
        .where(
            or_(
                UserSession.absolute_expires_at < cutoff,
                UserSession.idle_expires_at < cutoff,
                UserSession.revoked_at < cutoff,
            )
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
