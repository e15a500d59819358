"""Who works on an exocorp besides its owner: invitations by e-mail and role changes.

An invitation names an e-mail address, not an account: the address may sign up later and then
sees it on `me`. Accepting turns it into a membership in the same transaction; accepting,
declining and revoking delete the row (the audit trail keeps the story). The owner's
membership is never changed here: ownership is not transferable.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.accounts import normalize_email
from exocorp.store.columns import new_id
from exocorp.store.conflicts import conflicts_as
from exocorp.store.errors import Conflict, NotFound
from exocorp.store.registry import add_member, get_role
from exocorp.store.schema import ExocorpRecord, Invitation, Membership, Role, User

__all__ = [
    "MemberRow",
    "accept_invitation",
    "change_role",
    "delete_invitation",
    "invitations_for_email",
    "invite",
    "list_invitations",
    "member_rows",
    "members_of",
]

GRANTABLE = frozenset({Role.MEMBER, Role.VIEWER})
"""Roles an owner may give; there is one owner, for good."""


@dataclass(frozen=True)
class MemberRow:
    user_id: str
    email: str
    role: Role
    since: datetime


async def member_rows(session: AsyncSession, exocorp_id: str) -> list[MemberRow]:
    """Members with their e-mail addresses, the owner first, then by joining time."""
    return (await members_of(session, [exocorp_id])).get(exocorp_id, [])


async def members_of(session: AsyncSession,
                     exocorp_ids: Collection[str]) -> dict[str, list[MemberRow]]:
    """``member_rows`` of several exocorps in one query (those without members left out)."""
    if not exocorp_ids:
        return {}
    rows = (await session.execute(
        select(Membership, User.email).join(User, User.id == Membership.user_id)
        .where(Membership.exocorp_id.in_(exocorp_ids))
        .order_by(Membership.created_at, Membership.user_id))).all()
    out: dict[str, list[MemberRow]] = {}
    for m, email in rows:
        out.setdefault(m.exocorp_id, []).append(MemberRow(m.user_id, email, m.role, m.created_at))
    for members in out.values():
        members.sort(key=lambda m: m.role is not Role.OWNER)
    return out


async def invite(session: AsyncSession, *, exocorp_id: str, email: str, role: Role,
                 invited_by: str, now: datetime | None = None) -> Invitation:
    """Invite ``email``; Conflict when it already belongs to a member or is invited."""
    if role not in GRANTABLE:
        raise ValueError(f"cannot invite as {role.value}")
    normalized = normalize_email(email)
    member = (await session.execute(
        select(Membership.user_id).join(User, User.id == Membership.user_id)
        .where(Membership.exocorp_id == exocorp_id, User.email_normalized == normalized)
    )).first()
    if member is not None:
        raise Conflict(f"{email} is already a member", field="email")
    invitation = Invitation(id=new_id("inv"), exocorp_id=exocorp_id, email=email,
                            email_normalized=normalized, role=role, invited_by=invited_by,
                            created_at=clock.resolve(now))
    async with conflicts_as(session, f"{email} is already invited", field="email"):
        session.add(invitation)
    return invitation


async def list_invitations(session: AsyncSession, exocorp_id: str) -> list[Invitation]:
    result = await session.execute(
        select(Invitation).where(Invitation.exocorp_id == exocorp_id)
        .order_by(Invitation.created_at, Invitation.id))
    return list(result.scalars())


async def invitations_for_email(session: AsyncSession,
                                email: str) -> list[tuple[Invitation, ExocorpRecord]]:
    """Open invitations of an address to exocorps that still exist."""
    rows = (await session.execute(
        select(Invitation, ExocorpRecord).join(ExocorpRecord,
                                               ExocorpRecord.id == Invitation.exocorp_id)
        .where(Invitation.email_normalized == normalize_email(email),
               ExocorpRecord.destroyed_at.is_(None))
        .order_by(Invitation.created_at, Invitation.id))).all()
    return [(invitation, record) for invitation, record in rows]


async def _invitation(session: AsyncSession, invitation_id: str) -> Invitation:
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound(f"invitation {invitation_id} not found")
    return invitation


async def delete_invitation(session: AsyncSession, invitation_id: str, *,
                            exocorp_id: str | None = None,
                            email: str | None = None) -> Invitation:
    """Decline (``email``: the invitee's) or revoke (``exocorp_id``: the owner's) an
    invitation; NotFound when it is not one of theirs."""
    invitation = await _invitation(session, invitation_id)
    if (exocorp_id is not None and invitation.exocorp_id != exocorp_id) or (
            email is not None and invitation.email_normalized != normalize_email(email)):
        raise NotFound(f"invitation {invitation_id} not found")
    await session.delete(invitation)
    await session.flush()
    return invitation


async def accept_invitation(session: AsyncSession, invitation_id: str, *, user: User,
                            now: datetime | None = None) -> Membership:
    """The invited user joins with the invitation's role; the invitation goes."""
    invitation = await delete_invitation(session, invitation_id, email=user.email)
    record = await session.get(ExocorpRecord, invitation.exocorp_id)
    if record is None or record.destroyed_at is not None:
        raise NotFound(f"invitation {invitation_id} not found")
    return await add_member(session, exocorp_id=invitation.exocorp_id, user_id=user.id,
                            role=invitation.role, now=now)


async def change_role(session: AsyncSession, *, exocorp_id: str, user_id: str,
                      role: Role) -> Role:
    """Give a member another grantable role; returns the previous one. NotFound for a
    stranger, Conflict for the owner."""
    if role not in GRANTABLE:
        raise ValueError(f"cannot grant {role.value}")
    current = await get_role(session, exocorp_id=exocorp_id, user_id=user_id)
    if current is None:
        raise NotFound(f"user {user_id} is not a member")
    if current is Role.OWNER:
        raise Conflict("the owner's role cannot change", field="userId")
    await session.execute(update(Membership).where(
        Membership.exocorp_id == exocorp_id, Membership.user_id == user_id).values(role=role))
    return current
