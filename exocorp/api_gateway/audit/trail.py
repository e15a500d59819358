"""Reading the audit trail: filters, keyset pages and the actors' display names.

The trail is written by ``audit.audited`` (every mutating request), the billing service and the
operator-client flow; this module only reads it. Two audiences see it:

- platform owners, the whole trail (``GET /api/admin/audit``): actors with e-mail addresses and
  agent names;
- an exocorp's owner and members, that exocorp's events
  (``GET /api/registry/companies/{id}/audit``): e-mail addresses of its own members only; a
  platform owner acting on it shows as ``platformOwner: true`` without an address.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.audit.schemas import (
    AuditActor,
    AuditEventView,
    AuditPage,
    AuditQuery,
    CompanyAuditQuery,
)
from exocorp.api_gateway.errors import FieldError, bad_request
from exocorp.api_gateway.views import timestamp
from exocorp.model.base import parse_rfc3339
from exocorp.store import accounts, audit, tokens
from exocorp.store.schema import ActorKind, AuditEvent, Outcome

__all__ = ["AuditFilter", "actor_names", "audit_page", "event_views", "parse_instant"]


def parse_instant(value: str | None, field: str) -> datetime | None:
    """An RFC 3339 query value (already checked for shape) as an aware datetime."""
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:  # the model checked the shape and the date already
        raise bad_request("the query string is invalid",
                          [FieldError(field, "not an RFC 3339 timestamp")]) from None


@dataclass(frozen=True)
class AuditFilter:
    """A validated query, in store terms."""

    actor_id: str | None = None
    actor_kind: ActorKind | None = None
    exocorp_id: str | None = None
    action: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: int | None = None
    limit: int = 50
    newest_first: bool = True

    @classmethod
    def of(cls, query: CompanyAuditQuery, *, exocorp_id: str | None = None) -> AuditFilter:
        """``exocorp_id`` pins the exocorp (an exocorp's own trail)."""
        since = parse_instant(query.since, "since")
        until = parse_instant(query.until, "until")
        if since is not None and until is not None and until <= since:
            raise bad_request("the query string is invalid",
                              [FieldError("until", "must be later than since")])
        kind, company = None, None
        if isinstance(query, AuditQuery):
            kind = ActorKind(query.actor_kind) if query.actor_kind else None
            company = query.company
        return cls(actor_id=query.actor, actor_kind=kind,
                   exocorp_id=exocorp_id if exocorp_id is not None else company,
                   action=query.action,
                   outcome=Outcome(query.outcome) if query.outcome else None,
                   since=since, until=until,
                   cursor=int(query.cursor) if query.cursor else None,
                   limit=query.limit, newest_first=query.order == "desc")


@dataclass(frozen=True)
class ActorNames:
    users: dict[str, tuple[str, bool]]
    """User id -> (e-mail, platform owner)."""
    clients: dict[str, str]
    """Operator client id -> agent name."""


async def actor_names(session: AsyncSession, events: Sequence[AuditEvent]) -> ActorNames:
    user_ids = {e.actor_id for e in events if e.actor_kind is ActorKind.USER and e.actor_id}
    client_ids = {e.actor_id for e in events
                  if e.actor_kind is ActorKind.OPERATOR_CLIENT and e.actor_id}
    users = await accounts.users_by_id(session, user_ids)
    clients = await tokens.clients_by_id(session, client_ids)
    return ActorNames({u.id: (u.email, bool(u.platform_owner)) for u in users.values()},
                      {c.id: c.name for c in clients.values()})


def _actor(event: AuditEvent, names: ActorNames, visible: Collection[str] | None) -> AuditActor:
    kind = event.actor_kind
    if kind is ActorKind.USER and event.actor_id is not None:
        email, owner = names.users.get(event.actor_id, (None, False))
        shown = email if visible is None or event.actor_id in visible else None
        return AuditActor(kind="user", id=event.actor_id, name=shown, platform_owner=owner)
    if kind is ActorKind.OPERATOR_CLIENT and event.actor_id is not None:
        return AuditActor(kind="operator_client", id=event.actor_id,
                          name=names.clients.get(event.actor_id))
    return AuditActor(kind=kind.value, id=event.actor_id,
                      name="platform" if kind is ActorKind.SYSTEM else None)


def event_views(events: Sequence[AuditEvent], names: ActorNames, *,
                visible_users: Collection[str] | None = None) -> list[AuditEventView]:
    """Views of stored events. ``visible_users``: whose e-mail addresses may be shown (None: all,
    for platform owners)."""
    return [AuditEventView(
        id=event.id, at=timestamp(event.created_at) or "", action=event.action,
        actor=_actor(event, names, visible_users), company_id=event.exocorp_id,
        reason=event.reason, outcome=event.outcome.value, error=event.error,
        request_id=event.request_id, details=dict(event.details or {}))
        for event in events]


async def audit_page(session: AsyncSession, wanted: AuditFilter, *,
                     visible_users: Collection[str] | None = None) -> AuditPage:
    page = await audit.query_audit_events(
        session, actor_id=wanted.actor_id, actor_kind=wanted.actor_kind,
        exocorp_id=wanted.exocorp_id, action=wanted.action, outcome=wanted.outcome,
        since=wanted.since, until=wanted.until, cursor=wanted.cursor, limit=wanted.limit,
        newest_first=wanted.newest_first)
    names = await actor_names(session, page.items)
    return AuditPage(events=event_views(page.items, names, visible_users=visible_users),
                     next_cursor=str(page.next_cursor) if page.next_cursor is not None else None)
