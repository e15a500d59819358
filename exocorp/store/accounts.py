"""Users: signup, password and recovery-kit login, platform owners.

Password hashing runs in a worker thread (argon2id is deliberately slow and would otherwise stall
the event loop for every request in flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.security import PasswordHasher, Secret, hash_token, new_recovery_kit
from exocorp.security import normalize_recovery_kit as _normalize_kit
from exocorp.store import clock, sessions, tokens
from exocorp.store.columns import new_id
from exocorp.store.conflicts import conflicts_as
from exocorp.store.errors import AccountDisabled, Conflict, InvalidCredentials, NotFound
from exocorp.store.schema import (
    AccountState,
    BillingAccount,
    CreditEntry,
    CreditKind,
    RecoveryKit,
    User,
)
from exocorp.store.statements import rowcount

__all__ = [
    "DEFAULT_CURRENCY",
    "KitLogin",
    "NewUser",
    "authenticate_password",
    "authenticate_recovery_kit",
    "bootstrap_platform_owner",
    "check_password",
    "create_user",
    "find_user_by_email",
    "get_user",
    "list_users",
    "normalize_email",
    "platform_owner_exists",
    "rotate_recovery_kit",
    "set_disabled",
    "set_password",
    "set_platform_owner",
    "sign_out_everywhere",
    "store_password_hash",
    "users_by_id",
]

DEFAULT_CURRENCY = "USD"
_default_hasher = PasswordHasher()


@dataclass(frozen=True)
class NewUser:
    user: User
    account: BillingAccount
    recovery_kit: Secret
    """Shown to the user once, at signup; only its hash is stored."""
    promoted: bool = False
    """An existing account taken back as platform owner (not a new one)."""


@dataclass(frozen=True)
class KitLogin:
    user: User
    recovery_kit: Secret
    """The replacement kit: the one just used no longer works."""


def normalize_email(email: str) -> str:
    """The case-insensitive key an email is unique by."""
    return email.strip().lower()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    signup_credit: int = 0,
    currency: str = DEFAULT_CURRENCY,
    platform_owner: bool = False,
    hasher: PasswordHasher | None = None,
    password_hash: str | None = None,
    now: datetime | None = None,
) -> NewUser:
    """Sign a user up: the user, a billing account holding ``signup_credit`` (recorded as a
    credit entry) and a first recovery kit. ``Conflict(field="email")`` if the email is taken.
    ``password_hash``: the password's hash computed by the caller outside the transaction."""
    if signup_credit < 0:
        raise ValueError("signup credit cannot be negative")
    at = clock.resolve(now)
    if password_hash is None:
        password_hash = await asyncio.to_thread((hasher or _default_hasher).hash, password)
    user = User(
        id=new_id("usr"),
        email=email.strip(),
        email_normalized=normalize_email(email),
        password_hash=password_hash,
        platform_owner=platform_owner,
        disabled=False,
        created_at=at,
    )
    async with conflicts_as(session, "this email is already registered", field="email"):
        session.add(user)
    account = BillingAccount(
        id=new_id("acct"),
        user_id=user.id,
        balance=signup_credit,
        currency=currency,
        state=AccountState.ACTIVE,
        price_book_id=None,
        created_at=at,
        updated_at=at,
    )
    session.add(account)
    if signup_credit > 0:
        session.add(
            CreditEntry(
                account_id=account.id,
                kind=CreditKind.SIGNUP,
                amount=signup_credit,
                reason="signup credit",
                created_at=at,
            )
        )
    kit = new_recovery_kit()
    session.add(
        RecoveryKit(user_id=user.id, kit_hash=hash_token(kit.reveal()), generation=1, created_at=at)
    )
    await session.flush()
    return NewUser(user=user, account=account, recovery_kit=kit)


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def users_by_id(session: AsyncSession, user_ids: Collection[str]) -> dict[str, User]:
    """The users with these ids (unknown ids are left out), in one query."""
    if not user_ids:
        return {}
    result = await session.execute(select(User).where(User.id.in_(user_ids)))
    return {user.id: user for user in result.scalars()}


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(
        select(User).where(User.email_normalized == normalize_email(email))
    )
    return result.scalar_one_or_none()


async def platform_owner_exists(session: AsyncSession) -> bool:
    result = await session.execute(select(User.id).where(User.platform_owner).limit(1))
    return result.first() is not None


async def list_users(session: AsyncSession) -> list[User]:
    result = await session.execute(select(User).order_by(User.created_at, User.id))
    return list(result.scalars())


async def check_password(
    user: User | None, password: str, *, hasher: PasswordHasher | None = None
) -> User:
    """``user`` if ``password`` is its password; ``InvalidCredentials`` otherwise (the same
    error, after the same work, whether the user is unknown or the password wrong);
    ``AccountDisabled`` for a disabled user. Call it outside any transaction: a hash takes long
    and SQLite transactions hold the write lock."""
    hasher = hasher or _default_hasher
    if user is None:
        await asyncio.to_thread(hasher.verify_nothing, password)
        raise InvalidCredentials("wrong email or password")
    if not await asyncio.to_thread(hasher.verify, user.password_hash, password):
        raise InvalidCredentials("wrong email or password")
    if user.disabled:
        raise AccountDisabled("this account is disabled")
    return user


async def authenticate_password(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    hasher: PasswordHasher | None = None,
) -> User:
    """The user whose email and password these are (see :func:`check_password`); the hash is
    upgraded when the hasher's parameters changed."""
    hasher = hasher or _default_hasher
    user = await check_password(await find_user_by_email(session, email), password, hasher=hasher)
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hasher.hash, password)
        await session.flush()
    return user


async def authenticate_recovery_kit(
    session: AsyncSession, *, email: str, kit: str, now: datetime | None = None
) -> KitLogin:
    """Log in with a recovery kit instead of the password; the kit is replaced by a new one.

    The replacement is a compare-and-swap on the stored hash, so two concurrent logins with the
    same kit cannot both succeed.
    """
    at = clock.resolve(now)
    canonical = _normalize_kit(kit)
    user = await find_user_by_email(session, email)
    if canonical is None or user is None:
        raise InvalidCredentials("wrong email or recovery kit")
    used_hash = hash_token(canonical)
    if user.disabled:
        stored = await session.get(RecoveryKit, user.id)
        if stored is not None and stored.kit_hash == used_hash:
            raise AccountDisabled("this account is disabled")
        raise InvalidCredentials("wrong email or recovery kit")
    new_kit = new_recovery_kit()
    result = await session.execute(
        update(RecoveryKit)
        .where(RecoveryKit.user_id == user.id, RecoveryKit.kit_hash == used_hash)
        .values(
            kit_hash=hash_token(new_kit.reveal()),
            generation=RecoveryKit.generation + 1,
            created_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise InvalidCredentials("wrong email or recovery kit")
    return KitLogin(user=user, recovery_kit=new_kit)


async def rotate_recovery_kit(
    session: AsyncSession, user_id: str, *, now: datetime | None = None
) -> Secret:
    """Replace a user's recovery kit (e.g. they asked for a new one); returns the new kit."""
    at = clock.resolve(now)
    kit = new_recovery_kit()
    stored = await session.get(RecoveryKit, user_id)
    if stored is None:
        await get_user(session, user_id)
        session.add(
            RecoveryKit(
                user_id=user_id, kit_hash=hash_token(kit.reveal()), generation=1, created_at=at
            )
        )
    else:
        stored.kit_hash = hash_token(kit.reveal())
        stored.generation += 1
        stored.created_at = at
    await session.flush()
    return kit


async def set_password(
    session: AsyncSession, user_id: str, password: str, *, hasher: PasswordHasher | None = None
) -> None:
    user = await get_user(session, user_id)
    user.password_hash = await asyncio.to_thread((hasher or _default_hasher).hash, password)
    await session.flush()


async def store_password_hash(session: AsyncSession, user_id: str, password_hash: str) -> None:
    """Store a hash computed outside the transaction (see :func:`check_password`)."""
    user = await get_user(session, user_id)
    user.password_hash = password_hash
    await session.flush()


async def sign_out_everywhere(
    session: AsyncSession, user_id: str, *, keep_session: str | None = None,
    now: datetime | None = None,
) -> None:
    """End every session of the user (but ``keep_session``, a token hash) and revoke every agent
    it approved and every token bound to it: after a password change, on request, when the
    account is disabled or taken back."""
    await sessions.revoke_user_sessions(session, user_id, keep=keep_session, now=now)
    await tokens.revoke_user_tokens(session, user_id, now=now)


async def set_platform_owner(session: AsyncSession, user_id: str, value: bool) -> User:
    user = await get_user(session, user_id)
    user.platform_owner = value
    await session.flush()
    return user


async def set_disabled(session: AsyncSession, user_id: str, value: bool) -> User:
    """Disable (or re-enable) a user. Callers revoke the user's sessions and tokens as well."""
    user = await get_user(session, user_id)
    user.disabled = value
    await session.flush()
    return user


async def bootstrap_platform_owner(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    signup_credit: int = 0,
    currency: str = DEFAULT_CURRENCY,
    promote_existing: bool = False,
    hasher: PasswordHasher | None = None,
    now: datetime | None = None,
) -> NewUser:
    """Make ``email`` a platform owner (from configuration or a command), with ``password``.

    Creates the user if needed and returns it with its recovery kit. An existing account is
    never promoted silently (whoever signed up with the address holds its password): that is a
    ``Conflict`` unless ``promote_existing``, and then the account is taken back: its password
    becomes ``password``, its recovery kit is replaced (returned) and every session, agent and
    token of it is revoked.
    """
    existing = await find_user_by_email(session, email)
    if existing is None:
        return await create_user(
            session,
            email=email,
            password=password,
            signup_credit=signup_credit,
            currency=currency,
            platform_owner=True,
            hasher=hasher,
            now=now,
        )
    if not promote_existing:
        raise Conflict(
            f"{normalize_email(email)} is already registered by an account whose password "
            "the platform owner may not hold",
            field="email",
        )
    at = clock.resolve(now)
    existing.platform_owner = True
    existing.disabled = False
    await set_password(session, existing.id, password, hasher=hasher)
    await sign_out_everywhere(session, existing.id, now=at)
    kit = await rotate_recovery_kit(session, existing.id, now=at)
    account = (
        await session.execute(select(BillingAccount).where(BillingAccount.user_id == existing.id))
    ).scalar_one()
    return NewUser(user=existing, account=account, recovery_kit=kit, promoted=True)
