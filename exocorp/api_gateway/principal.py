"""Who is calling: resolved once per request by the auth middleware (see ``access``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from exocorp.store.schema import ActorKind
from exocorp.store.tokens import AgentScope


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    """No credentials, or credentials that were refused (see ``credential_error``)."""
    USER = "user"
    """A logged-in user (session cookie, or the session token as a bearer token)."""
    OPERATOR_CLIENT = "operator_client"
    """A coding agent's trusted-client bearer token: acts for the user who approved it."""
    DRAFT_TOKEN = "draft_token"  # noqa: S105 (a name)
    """A coding agent's draft access token: scoped to one draft, acts for nobody."""


class Via(StrEnum):
    NONE = "none"
    COOKIE = "cookie"
    BEARER = "bearer"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    via: Via = Via.NONE
    user_id: str | None = None
    """The user acted for (USER and OPERATOR_CLIENT)."""
    email: str | None = None
    platform_owner: bool = False
    """The user holds the platform-owner role (admin API)."""
    session_token_hash: str | None = None
    """SHA-256 of the session token (USER via a session): what logout revokes."""
    password_change_required: bool = False
    """A session opened with the recovery kit: only :data:`PASSWORD_CHANGE_ROUTES` until the
    password is changed (see ``access.refuse_until_password_changed``)."""
    client_id: str | None = None
    """The operator client (OPERATOR_CLIENT, DRAFT_TOKEN)."""
    draft_id: str | None = None
    """The draft a draft access token is scoped to."""
    agent_scope: AgentScope | None = None
    """OPERATOR_CLIENT: the exocorps and grants its human approved."""
    credential_error: str | None = None
    """Why presented credentials were refused (the 401 detail); None when none were presented."""

    @property
    def authenticated(self) -> bool:
        return self.kind is not PrincipalKind.ANONYMOUS

    @property
    def acts_for_user(self) -> bool:
        return self.user_id is not None and self.kind in (PrincipalKind.USER,
                                                          PrincipalKind.OPERATOR_CLIENT)

    @property
    def actor(self) -> str:
        """The requester as recorded in an exocorp's lastAction and revisions."""
        if self.kind is PrincipalKind.USER:
            return f"user:{self.user_id}"
        if self.kind is PrincipalKind.OPERATOR_CLIENT:
            return f"client:{self.client_id}"
        if self.kind is PrincipalKind.DRAFT_TOKEN:
            return f"draft-token:{self.client_id}"
        return "anonymous"

    @property
    def audit_actor(self) -> tuple[ActorKind, str | None]:
        """(actor kind, actor id) for the audit trail."""
        if self.kind is PrincipalKind.USER:
            return ActorKind.USER, self.user_id
        if self.kind in (PrincipalKind.OPERATOR_CLIENT, PrincipalKind.DRAFT_TOKEN):
            return ActorKind.OPERATOR_CLIENT, self.client_id
        return ActorKind.ANONYMOUS, None


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)
