"""Exocorp registry rows and memberships.

Creating an exocorp reserves its id, slug and both canonical domains in one insert guarded by
unique constraints, so of two concurrent creations with a common name exactly one commits and
the other gets ``Conflict`` naming the field that collided. Reservations outlive destruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.conflicts import conflicts_as
from exocorp.store.errors import Conflict, NotFound
from exocorp.store.schema import ExocorpRecord, Membership, Role, User
from exocorp.store.statements import rowcount

__all__ = [
    "MemberExocorp",
    "add_member",
    "create_exocorp",
    "find_exocorp_by_slug",
    "get_exocorp",
    "get_role",
    "list_exocorps",
    "list_members",
    "list_user_exocorps",
    "mark_destroyed",
    "remove_member",
]


@dataclass(frozen=True)
class MemberExocorp:
    exocorp: ExocorpRecord
    role: Role


async def create_exocorp(
    session: AsyncSession,
    *,
    exocorp_id: str,
    slug: str,
    owner_user_id: str,
    display_name: str,
    portal_domain: str,
    app_domain: str,
    now: datetime | None = None,
) -> ExocorpRecord:
    """Register an exocorp, reserve its names and make its owner a member with role owner."""
    at = clock.resolve(now)
    if portal_domain == app_domain:
        raise ValueError("the portal and application domains must differ")
    if await session.get(User, owner_user_id) is None:
        raise NotFound(f"user {owner_user_id} not found")
    record = ExocorpRecord(
        id=exocorp_id,
        slug=slug,
        owner_user_id=owner_user_id,
        display_name=display_name,
        portal_domain=portal_domain,
        app_domain=app_domain,
        created_at=at,
        destroyed_at=None,
    )
    try:
        async with session.begin_nested():
            session.add(record)
            session.add(
                Membership(
                    user_id=owner_user_id, exocorp_id=exocorp_id, role=Role.OWNER, created_at=at
                )
            )
    except IntegrityError:
        raise await _reservation_conflict(session, record) from None
    return record


async def _reservation_conflict(session: AsyncSession, wanted: ExocorpRecord) -> Conflict:
    """Which of the reserved names is taken (read after the winner committed)."""
    result = await session.execute(
        select(ExocorpRecord).where(
            or_(
                ExocorpRecord.id == wanted.id,
                ExocorpRecord.slug == wanted.slug,
                ExocorpRecord.portal_domain.in_([wanted.portal_domain, wanted.app_domain]),
                ExocorpRecord.app_domain.in_([wanted.portal_domain, wanted.app_domain]),
            )
        )
    )
    taken = result.scalars().first()
    if taken is None:
        return Conflict("the exocorp's names were taken concurrently; retry")
    if taken.slug == wanted.slug:
        if taken.destroyed_at is not None:
            # The user sees no such exocorp: say why the name is still not free.
            return Conflict(f"slug {wanted.slug!r} belonged to an exocorp that was destroyed; "
                            "names are never reused, so old links and audit entries cannot "
                            "point at a new owner: choose another", field="slug")
        return Conflict(f"slug {wanted.slug!r} is already taken", field="slug")
    if taken.id == wanted.id:
        return Conflict(f"exocorp id {wanted.id!r} is already taken", field="id")
    return Conflict("one of the exocorp's domains is already reserved", field="domain")


async def get_exocorp(session: AsyncSession, exocorp_id: str) -> ExocorpRecord:
    record = await session.get(ExocorpRecord, exocorp_id)
    if record is None:
        raise NotFound(f"exocorp {exocorp_id} not found")
    return record


async def find_exocorp_by_slug(session: AsyncSession, slug: str) -> ExocorpRecord | None:
    result = await session.execute(select(ExocorpRecord).where(ExocorpRecord.slug == slug))
    return result.scalar_one_or_none()


async def list_exocorps(
    session: AsyncSession, *, include_destroyed: bool = False
) -> list[ExocorpRecord]:
    query = select(ExocorpRecord).order_by(ExocorpRecord.created_at, ExocorpRecord.id)
    if not include_destroyed:
        query = query.where(ExocorpRecord.destroyed_at.is_(None))
    return list((await session.execute(query)).scalars())


async def list_user_exocorps(
    session: AsyncSession, user_id: str, *, include_destroyed: bool = False
) -> list[MemberExocorp]:
    """The exocorps a user owns or is a member of, with their role in each."""
    query = (
        select(ExocorpRecord, Membership.role)
        .join(Membership, Membership.exocorp_id == ExocorpRecord.id)
        .where(Membership.user_id == user_id)
        .order_by(ExocorpRecord.created_at, ExocorpRecord.id)
    )
    if not include_destroyed:
        query = query.where(ExocorpRecord.destroyed_at.is_(None))
    rows = (await session.execute(query)).all()
    return [MemberExocorp(exocorp=record, role=role) for record, role in rows]


async def mark_destroyed(
    session: AsyncSession, exocorp_id: str, *, now: datetime | None = None
) -> ExocorpRecord:
    """Record destruction (idempotent: the first time is kept). Names stay reserved."""
    record = await get_exocorp(session, exocorp_id)
    if record.destroyed_at is None:
        record.destroyed_at = clock.resolve(now)
        await session.flush()
    return record


async def add_member(
    session: AsyncSession,
    *,
    exocorp_id: str,
    user_id: str,
    role: Role = Role.MEMBER,
    now: datetime | None = None,
) -> Membership:
    await get_exocorp(session, exocorp_id)
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    membership = Membership(
        user_id=user_id, exocorp_id=exocorp_id, role=role, created_at=clock.resolve(now)
    )
    async with conflicts_as(session, "the user is already a member", field="user_id"):
        session.add(membership)
    return membership


async def remove_member(session: AsyncSession, *, exocorp_id: str, user_id: str) -> bool:
    """Remove a member; the owner's membership cannot be removed (Conflict)."""
    role = await get_role(session, exocorp_id=exocorp_id, user_id=user_id)
    if role is None:
        return False
    if role is Role.OWNER:
        raise Conflict("the owner cannot be removed from their exocorp", field="user_id")
    result = await session.execute(
        delete(Membership).where(Membership.exocorp_id == exocorp_id, Membership.user_id == user_id)
    )
    return rowcount(result) == 1


async def get_role(session: AsyncSession, *, exocorp_id: str, user_id: str) -> Role | None:
    """The user's role in the exocorp, or None for a stranger."""
    membership = await session.get(Membership, (user_id, exocorp_id))
    return membership.role if membership is not None else None


async def list_members(session: AsyncSession, exocorp_id: str) -> list[Membership]:
    result = await session.execute(
        select(Membership)
        .where(Membership.exocorp_id == exocorp_id)
        .order_by(Membership.created_at, Membership.user_id)
    )
    return list(result.scalars())
