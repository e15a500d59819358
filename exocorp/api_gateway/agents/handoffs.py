"""The state of an operator client's handoff (SPEC section 7), read from the platform records.

An agent's request is stored as an operator client (its name, its approver) with a draft of its
own. Until a human approves it, the draft is free-standing and holds the agent's whole request::

    {"kind": "exocorp.io/agent-request", "company": {"slug": ..., "displayName": ...},
     "draft": {...the Draft...}}

Approval creates the exocorp and, in the same transaction, rewrites that draft to the plain
Draft and binds it to the exocorp: from then on it is the exocorp's draft (what provision
applies), the one the agent's draft token was scoped to. The handoff id is the client's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.agents.schemas import AgentCompany, HandoffStatus, HandoffView
from exocorp.api_gateway.errors import not_found
from exocorp.api_gateway.views import timestamp
from exocorp.model import Draft as DraftModel
from exocorp.store import drafts, registry, tokens
from exocorp.store.errors import NotFound
from exocorp.store.schema import Draft, ExocorpRecord, OperatorClient, OperatorToken

__all__ = ["HANDOFF_ID", "REQUEST_KIND", "Handoff", "load_handoff", "request_config"]

REQUEST_KIND = "exocorp.io/agent-request"
HANDOFF_ID = re.compile(r"^cli_[0-9a-f]{26}$")
"""A handoff id (an operator client id); nothing else is ever looked up."""


def request_config(company: AgentCompany, draft: DraftModel) -> dict[str, Any]:
    """The free-standing draft's content while the request waits for a human."""
    return {"kind": REQUEST_KIND, "company": company.to_wire(), "draft": draft.to_wire()}


@dataclass(frozen=True)
class Handoff:
    client: OperatorClient
    draft: Draft
    token: OperatorToken | None
    """The draft access token."""
    record: ExocorpRecord | None
    """The exocorp created at approval."""

    @property
    def id(self) -> str:
        return self.client.id

    def status(self, now: datetime) -> HandoffStatus:
        token = self.token
        if self.client.revoked_at is not None:
            return "denied"
        if token is not None and token.redeemed_at is not None:
            return "redeemed"
        if self.client.approved_by is not None:
            return "approved"
        if token is None or token.revoked_at is not None or (
                token.expires_at is not None and now >= token.expires_at):
            return "expired"
        return "pending"

    @property
    def pending_request(self) -> bool:
        return self.draft.exocorp_id is None and self.draft.config.get("kind") == REQUEST_KIND

    def company(self) -> AgentCompany:
        if self.record is not None:
            return AgentCompany(slug=self.record.slug, display_name=self.record.display_name)
        return AgentCompany.model_validate(self.draft.config.get("company") or {})

    def proposed_draft(self) -> DraftModel:
        config = self.draft.config.get("draft") if self.pending_request else self.draft.config
        return DraftModel.model_validate(config or {})

    def view(self, now: datetime, caller: str | None) -> HandoffView:
        return HandoffView(
            handoff_id=self.id, agent_name=self.client.name, status=self.status(now),
            company=self.company(), company_id=self.record.id if self.record else None,
            draft=self.proposed_draft(), created_at=timestamp(self.client.created_at) or "",
            expires_at=timestamp(self.token.expires_at) if self.token else None,
            approved_at=timestamp(self.client.approved_at),
            approved_by_you=caller is not None and self.client.approved_by == caller)


async def load_handoff(session: AsyncSession, handoff_id: str) -> Handoff:
    """The handoff, or 404 (unknown id, malformed id, or a client without a draft)."""
    missing = not_found(f"handoff {handoff_id!r} not found; ask the agent for a new link")
    if not HANDOFF_ID.fullmatch(handoff_id):
        raise missing
    try:
        client = await tokens.get_client(session, handoff_id)
        if client.draft_id is None:
            raise missing
        draft = await drafts.get_draft(session, client.draft_id)
    except NotFound:
        raise missing from None
    token = await tokens.draft_access_token(session, client.id)
    record = None
    if draft.exocorp_id is not None:
        record = await registry.get_exocorp(session, draft.exocorp_id)
    return Handoff(client=client, draft=draft, token=token, record=record)
