"""Bodies of the operator-client API (coding agents: SPEC section 7) and of token management."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from exocorp.api_gateway.schemas import CompanyDetail, DisplayName, Slug
from exocorp.model import Draft, SpecModel, WireModel

AgentName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$",
                                 examples=["Claude Code"])]
HandoffStatus = Literal["pending", "approved", "redeemed", "denied", "expired"]


class AgentCompany(SpecModel):
    """The exocorp the agent proposes; the approving human may change both."""

    slug: Slug
    """Its id and DNS label: 3 to 40 lowercase letters, digits and dashes."""
    display_name: DisplayName


class AgentDraftRequest(SpecModel):
    """What an agent asks for. There is no field for an e-mail address or a password: an agent
    cannot create a user; a human signs up (or logs in) and approves the agent."""

    agent_name: AgentName
    """What the agent calls itself; shown to the human who approves it."""
    company: AgentCompany
    draft: Draft = Field(default_factory=Draft)
    """The configuration to provision once approved (as ``POST .../draft`` takes it)."""


class AgentDraftCreated(WireModel):
    """The draft access token is shown here once; only its hash is stored."""

    draft_id: str
    handoff_id: str
    handoff_url: str
    """Give this link to your human: they open it, sign up or log in, and approve you."""
    draft_token: str
    """Short-lived (see ``expiresAt``), scoped to this draft: ``Authorization: Bearer`` on
    ``GET /api/agents/draft`` and ``POST /api/agents/redeem`` only."""
    pairing_code: str
    """Show this code to your human (never send it anywhere else): they type it on the approval
    page, so the approval goes to them and not to whoever opens the link first. Shown once."""
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name)
    expires_at: str
    status: HandoffStatus = "pending"


class TokenScope(WireModel):
    """What an agent's bearer token reaches, as its human approved."""

    companies: list[str]
    """Exocorp ids: those named at approval and those the agent created with the token."""
    destroy: bool
    """It may destroy those exocorps."""
    provider_secrets: bool
    """It may add, rotate and delete its human's provider credentials (without this grant it
    may only list their metadata)."""


class HandoffView(WireModel):
    """What an agent asks for, and where its request stands."""

    handoff_id: str
    agent_name: str
    status: HandoffStatus
    """``pending`` (waiting for a human), ``approved`` (the agent may redeem), ``redeemed``
    (the agent holds its bearer token), ``denied`` or ``expired`` (the agent must start
    again)."""
    company: AgentCompany
    """The exocorp proposed (once approved: the one created)."""
    company_id: str | None = None
    """The exocorp created at approval."""
    draft: Draft
    created_at: str
    expires_at: str | None = None
    """When the draft access token (and so an unapproved request) expires."""
    approved_at: str | None = None
    approved_by_you: bool = False
    """The caller is the human who approved it."""


class AgentDraftStatus(HandoffView):
    """The agent's own view of its request (``GET /api/agents/draft``)."""

    handoff_url: str


class ApproveRequest(SpecModel):
    """The pairing code the agent shows its human, and what its token may do. Optional:
    another slug or display name than the agent proposed (e.g. when its slug is taken)."""

    pairing_code: Annotated[str, Field(min_length=1, max_length=32, examples=["K3QD-M2X9"])]
    """The code your agent shows you (case, spaces and dashes do not matter). After five wrong
    codes the request is denied."""
    slug: Slug | None = None
    display_name: DisplayName | None = None
    companies: Annotated[list[Slug], Field(max_length=50)] = []
    """Exocorps of yours the agent may reach besides the one created now (owner or member)."""
    allow_destroy: bool = False
    """Let the agent destroy the exocorps it reaches."""
    allow_provider_secrets: bool = False
    """Let the agent add, rotate and delete your provider credentials."""


class HandoffApproved(WireModel):
    handoff_id: str
    status: HandoffStatus
    company: CompanyDetail
    """The exocorp created for the agent, owned by you, with the agent's draft saved."""


class RedeemResponse(WireModel):
    """The trusted-client bearer token is shown here once; only its hash is stored."""

    token: str
    """Use as ``Authorization: Bearer <token>`` on the registry endpoints; it acts for the user
    who approved you, until they revoke it."""
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name)
    token_id: str
    """The id the user sees (and revokes) in ``GET /api/auth/tokens``."""
    client_id: str
    user_id: str
    company_id: str | None = None
    """The exocorp created at approval: provision it with
    ``POST /api/registry/companies/{companyId}/provision``."""
    expires_at: str
    """When it stops working unless your human renews it."""
    scope: TokenScope


class TokenView(WireModel):
    """An agent's bearer token, metadata only (the token itself is never shown again)."""

    id: str
    client_id: str
    agent_name: str
    status: Literal["active", "revoked", "expired"]
    created_at: str
    last_used_at: str | None = None
    expires_at: str | None = None
    """Renewable by the human (``POST /api/auth/tokens/{id}/renew``)."""
    revoked_at: str | None = None
    scope: TokenScope


class TokenList(WireModel):
    tokens: list[TokenView]
