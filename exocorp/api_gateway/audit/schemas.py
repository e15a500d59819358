"""Request and response bodies of the audit API group (the OpenAPI schemas are generated from
these). Requests are strict (unknown fields are a 400); responses are camelCase.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from exocorp.model import (
    SpecModel,
    WireModel,
)
from exocorp.model.base import Rfc3339
from exocorp.store.pages import MAX_PAGE_SIZE

# -- audit ---------------------------------------------------------------------------------------

AuditOutcome = Literal["succeeded", "refused", "failed"]
ActorKindName = Literal["user", "operator_client", "system", "anonymous"]


class AuditActor(WireModel):
    kind: ActorKindName
    """``user`` (a person, platform owners included), ``operator_client`` (a coding agent),
    ``system`` (the platform itself: billing, the operator) or ``anonymous``."""
    id: str | None = None
    """User id, operator client id, or the system component."""
    name: str | None = None
    """E-mail address of a user, name of an agent, when the reader may see it."""
    platform_owner: bool = False
    """The user held the platform-owner role when read (admin actions show up like this)."""


class AuditEventView(WireModel):
    """One entry of the append-only audit trail."""

    id: int
    """Increases with every event; the trail is ordered by it."""
    at: str
    """When the event was recorded (RFC 3339, UTC)."""
    actor: AuditActor
    action: str
    """A lifecycle action (``provision`` ... ``destroy``) or ``<object>.<verb>`` (e.g.
    ``company.create``, ``draft.save``, ``agent.approve``, ``token.revoke``)."""
    company_id: str | None = None
    """The exocorp acted on, when there is one."""
    reason: str | None = None
    """Why, as the requester gave it."""
    outcome: AuditOutcome
    """``succeeded`` (accepted: it became desired state or was done), ``refused`` (a 4xx:
    validation, authorization, state conflict; nothing changed) or ``failed`` (a 5xx)."""
    error: str | None = None
    """Why it was refused or failed (the problem's detail)."""
    request_id: str | None = None
    """The X-Request-Id of the HTTP request that did it."""
    details: dict[str, Any] = {}
    """Action-specific facts: fromVersion, toVersion, targetRevision, fromPhase, via, ..."""


class AuditPage(WireModel):
    events: list[AuditEventView]
    next_cursor: str | None = None
    """Pass back as ``cursor`` for the next page; absent on the last page."""


_Limit = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
_Cursor = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,17}$")]
_Filter = Annotated[str, Field(min_length=1, max_length=128)]


class CompanyAuditQuery(SpecModel):
    """Filters of an exocorp's audit trail; every given filter must match."""

    actor: _Filter | None = None
    """Actor id (a user id or an operator client id)."""
    action: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """Exact action name, e.g. ``pause`` or ``draft.save``."""
    outcome: AuditOutcome | None = None
    since: Rfc3339 | None = None
    """Events at or after this instant."""
    until: Rfc3339 | None = None
    """Events before this instant."""
    cursor: _Cursor | None = None
    """``nextCursor`` of the previous page."""
    limit: _Limit = 50
    """Page size (at most 500)."""
    order: Literal["desc", "asc"] = "desc"
    """``desc``: newest first (default); ``asc``: oldest first."""


class AuditQuery(CompanyAuditQuery):
    """Filters of the whole platform's audit trail."""

    actor_kind: ActorKindName | None = None
    company: _Filter | None = None
    """Exocorp id."""
